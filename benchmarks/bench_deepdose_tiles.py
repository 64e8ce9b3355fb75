"""Deep-dose on the demo torso with the card's 96³ tiles (the default) and with one tile for the whole volume, in
the same run: one network pass and the default method (3 mirrored passes), beside its baseline vsv_scaled.

Prints each time and the ratio. One tile is faster (fewer voxels evaluated) but not the default: each tile is
normalised by its own scale, and a whole-torso tile moved low-uptake organs by up to +20 % on a held-out torso
(docs/models.md, "Tile size").

    python benchmarks/bench_deepdose_tiles.py [--model M.pt] [--nuclide Ga68] [--threads 2] [--repeats 2]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from DeepDoseLib.deepdose.inference import deepdose_dose_rate, model_tile_plan
from DeepDoseLib.deepdose.safety import safe_deepdose
from DeepDoseLib.deepdose_rule import SafetyRule
from DeepDoseLib.methods.scaled_vsv import scaled_vsv_dose_rate
from deepdose_demo_setup import add_arguments, best_of, demo_torso_and_model  # benchmarks/, the script's folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args()
    a, rho, spacing, model = demo_torso_and_model(args)
    whole = 4 * max(a.shape)  # one tile
    for tile in (None, whole):
        plan = model_tile_plan(model, a.shape, tile)
        print(f"tiles {'one' if tile else 'default'}: {len(plan.corners)} of {plan.tile_shape}, "
              f"{plan.evaluated_voxels / a.size:.2f}× the volume evaluated")
    warm = np.full((24, 24, 24), 1e3, np.float32)
    deepdose_dose_rate(warm, np.ones_like(warm), model.spacing_mm, model)  # TorchScript's first call
    baseline_s = best_of(lambda: scaled_vsv_dose_rate(a, rho, model.kernels, mode="source"), 1)[1]
    runs = {"one pass": lambda t: deepdose_dose_rate(a, rho, spacing, model, tile_size=t),
            "default (3 flips)": lambda t: safe_deepdose(a, rho, spacing, model, SafetyRule(flips=3), tile_size=t)}
    print(f"\n{model.path.name}, demo torso {a.shape[::-1]} voxels, {torch.get_num_threads()} thread(s)\n")
    print("| run | default tiles [s] | one tile [s] | ratio |\n|---|---|---|---|")
    for label, fn in runs.items():
        times = {tile: best_of(lambda: fn(tile), args.repeats)[1] for tile in (None, whole)}
        print(f"| {label} | {times[None]:.1f} | {times[whole]:.1f} | {times[None] / times[whole]:.2f} |", flush=True)
    print(f"\nits baseline, vsv_scaled with the model's kernels (no tiles): {baseline_s:.1f} s")


if __name__ == "__main__":
    main()
