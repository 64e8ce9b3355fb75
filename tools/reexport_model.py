"""Re-export a Deep-dose TorchScript model with the current code: same weights and card, new file and hash.

Used when the way the network is scripted changes but not what it computes (e.g. the U-Net's upsampling
written without ``F.interpolate`` so that models load in older torch releases). The outputs of the old
and new file are compared on a random batch before the new file replaces anything.

    python tools/reexport_model.py DeepDose/Resources/Models/deepdose_Ga68.pt [--out NEW.pt]
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import torch

from DeepDoseLib.deepdose.channels import N_CHANNELS
from DeepDoseLib.deepdose.model_io import card_path, load_model, reexport_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--out", type=Path, help="default: replace the model and its card")
    args = parser.parse_args()
    out = args.out or args.model
    with tempfile.TemporaryDirectory() as tmp:
        new = reexport_model(args.model, Path(tmp) / out.name)
        old_module, new_module = load_model(args.model).module, load_model(new).module
        x = torch.rand(2, N_CHANNELS, 32, 32, 32, generator=torch.Generator().manual_seed(0)) * 1e4
        with torch.no_grad():
            if not torch.equal(old_module(x), new_module(x)):
                raise SystemExit("re-exported model computes something else: nothing written")
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(new, out)
        shutil.copyfile(card_path(new), card_path(out))
    print(f"{args.model} → {out}: identical outputs, new SHA-256 {load_model(out).card['weights_sha256'][:16]}…")


if __name__ == "__main__":
    main()
