"""A model file never runs code: crafted torch.export archives whose payload would create a marker file are
refused before any loader sees them (the card's SHA-256 matches: an attacker ships both)."""
from __future__ import annotations

import json
import pickle
import re
import zipfile
from pathlib import Path

import pytest
import torch

from deepdose_helpers import card, local_kernels
from deepdose_helpers import net as _net

from DeepDoseLib.deepdose.model_io import card_path, export_model, load_model, sha256_file
from DeepDoseLib.errors import DeepDoseInputError


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)

    def forward(self, x):
        return self.lin(x) * 2


class _Touch:
    """Unpickling this object opens (creates) ``marker``: the stand-in for any code an attacker would run."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


def _rewrite(src: Path, dst: Path, edit) -> None:
    with zipfile.ZipFile(src) as archive, zipfile.ZipFile(dst, "w") as out:
        for info in archive.infolist():
            out.writestr(info, edit(info.filename, archive.read(info.filename)))


def _pickled_weight_archive(tmp_path: Path, marker: Path, suffix: str) -> Path:
    """A torch.export archive whose first weight is marked ``use_pickle`` and holds a hostile pickle."""
    program = torch.export.export(_Tiny(), (torch.ones(1, 3),))
    plain = tmp_path / "plain.pt2"
    torch.export.save(program, str(plain))

    def edit(name: str, data: bytes) -> bytes:
        if name.endswith("_weights_config.json"):
            config = json.loads(data)
            first = next(iter(config["config"].values()))
            first["use_pickle"] = True
            return json.dumps(config).encode()
        if name.endswith("/data/weights/weight_0"):
            return pickle.dumps(_Touch(str(marker)), protocol=2)
        return data

    evil = tmp_path / f"evil{suffix}"
    _rewrite(plain, evil, edit)
    return evil


def _sympy_archive(tmp_path: Path, marker: Path) -> Path:
    """A torch.export archive without any pickle whose symbolic shape expression is Python code."""
    program = torch.export.export(_Tiny(), (torch.ones(2, 3),),
                                  dynamic_shapes=({0: torch.export.Dim("n", min=1, max=64)},))
    program._example_inputs = None  # no pickled sample inputs either
    plain = tmp_path / "dyn.pt2"
    torch.export.save(program, str(plain))

    def edit(name: str, data: bytes) -> bytes:
        if name.endswith("/models/model.json"):
            text = data.decode()
            symbol = re.search(r'"expr_str": "([^"]+)"', text).group(1)
            code = f"__import__('pathlib').Path('{marker}').touch() or {symbol}"
            return text.replace(f'"expr_str": "{symbol}"', f'"expr_str": "{code}"', 1).encode()
        return data

    evil = tmp_path / "evil_sym.pt2"
    _rewrite(plain, evil, edit)
    return evil


def _card_for(path: Path, weights_format: str) -> None:
    meta = dict(card(), format="deepdose-model-card/2", weights_file=path.name, weights_format=weights_format,
                weights_sha256=sha256_file(path), inputs={"kernel_decays": 1})
    card_path(path).write_text(json.dumps(meta))


@pytest.mark.parametrize("suffix,weights_format", [(".pt2", "export"), (".pt", "export"), (".pt", "torchscript")])
def test_pickled_payload_in_a_model_never_runs(tmp_path, suffix, weights_format):
    marker = tmp_path / "PWNED"
    evil = _pickled_weight_archive(tmp_path, marker, suffix)
    _card_for(evil, weights_format)
    with pytest.raises(DeepDoseInputError, match="torch.export|TorchScript archive"):
        load_model(evil)
    assert not marker.exists()
    # the archive is really hostile: torch's own loader runs the payload (so the test above can fail)
    try:
        torch.export.load(str(evil))
    except Exception:
        pass
    assert marker.exists()


def test_pickle_free_export_archive_still_runs_code_so_the_format_is_refused(tmp_path):
    """Why .pt2 is refused rather than inspected for pickles: torch.export.load evaluates the graph's symbolic
    expressions with sympy.sympify (eval)."""
    marker = tmp_path / "PWNED_SYMPY"
    evil = _sympy_archive(tmp_path, marker)
    with zipfile.ZipFile(evil) as archive:
        assert not any(archive.read(n)[:2] == b"\x80\x02" for n in archive.namelist())  # no pickle at all
    _card_for(evil, "export")
    with pytest.raises(DeepDoseInputError, match="torch.export"):
        load_model(evil)
    assert not marker.exists()
    try:
        torch.export.load(str(evil))
    except Exception:
        pass
    assert marker.exists()


def test_export_format_is_no_longer_written(tmp_path):
    with pytest.raises(ValueError, match="torch.export"):
        export_model(_net(head=True), local_kernels(), tmp_path / "m.pt2", card(), fmt="export")
    assert not (tmp_path / "m.pt2").exists()
