"""The bad-input campaign of issue 17 as a table: each case → exit code, message fragment, inputs unchanged
(SHA-256 of every input file), no output and no temporary file left behind, no traceback.

The command runs in-process (``DeepDoseLib.cli.main``: the same code as the console script, which only adds
``sys.exit``) on a small synthetic PET/CT written to real files, one fresh copy per case.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np
import pytest
import SimpleITK as sitk

from DeepDoseLib import cli

from conftest import REPO_ROOT, sha256_of_tree

N = 16
SPACING_mm = 4.0


def _image(array: np.ndarray, spacing: float = SPACING_mm, origin: float = -30.0) -> sitk.Image:
    image = sitk.GetImageFromArray(np.asarray(array, np.float32))
    image.SetSpacing((spacing,) * 3)
    image.SetOrigin((origin,) * 3)
    return image


def _body() -> np.ndarray:
    body = np.zeros((N, N, N), bool)
    body[2:-2, 2:-2, 2:-2] = True
    return body


def _write_nifti_raw(path: Path, array: np.ndarray, spacing=(SPACING_mm,) * 3) -> None:
    """A NIfTI-1 .nii written byte by byte (float32), so that NaN, zero spacing and so on are exactly as given."""
    a = np.asarray(array, "<f4")
    dims = a.shape[::-1]
    header = bytearray(352)
    struct.pack_into("<i", header, 0, 348)
    struct.pack_into("<8h", header, 40, len(dims), *dims, *([1] * (7 - len(dims))))
    struct.pack_into("<2h", header, 70, 16, 32)
    pix = list(spacing) + [1.0] * (7 - len(spacing))
    struct.pack_into("<8f", header, 76, 1.0, *pix[:7])
    struct.pack_into("<f", header, 108, 352.0)
    struct.pack_into("<f", header, 112, 1.0)
    struct.pack_into("<h", header, 252, 1)  # qform: identity rotation in RAS, offset so that it covers the CT
    struct.pack_into("<3f", header, 268, -30.0, -30.0, -30.0)
    header[344:348] = b"n+1\0"
    path.write_bytes(bytes(header) + np.ascontiguousarray(a).tobytes())  # (z, y, x) C order: x runs fastest


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> Path:
    """Input files of the campaign (copied for every case)."""
    root = tmp_path_factory.mktemp("campaign_inputs")
    body = _body()
    ct = np.where(body, 0.0, -1000.0)
    pet = np.where(body, 5.0e4, 0.0)  # 50 kBq/mL in 1.7 L: ~6 MBq
    pet[6:9, 6:9, 6:9] = 5.0e5
    sitk.WriteImage(_image(ct), str(root / "ct.nii.gz"))
    sitk.WriteImage(_image(pet), str(root / "pet.nii.gz"))
    sitk.WriteImage(_image(pet), str(root / "pet.nrrd"))
    sitk.WriteImage(_image(np.where(body, 1.0, 0.0012)), str(root / "density.nii.gz"))
    labels = np.zeros((N, N, N)); labels[2:8, 2:-2, 2:-2] = 1; labels[8:-2, 2:-2, 2:-2] = 2
    sitk.WriteImage(_image(labels), str(root / "labels.nii.gz"))
    (root / "names.json").write_text(json.dumps({"1": "upper", "2": "lower"}))
    sitk.WriteImage(_image(np.where(labels == 2, -3.0, labels)), str(root / "labels_neg.nii.gz"))
    sitk.WriteImage(_image(labels, origin=5000.0), str(root / "labels_far.nii.gz"))
    (root / "hu.csv").write_text("hu,density_g_per_cm3\n-1000,0.0012\n0,1.0\n3000,2.8\n")
    (root / "hu_empty.csv").write_text("")
    (root / "hu_nan.csv").write_text("hu,density_g_per_cm3\n-1000,nan\n0,1.0\n")
    rate = np.where(body, 2.0, 0.0)
    for t in (4, 24):
        sitk.WriteImage(_image(rate * np.exp(-0.01 * t)), str(root / f"rate_{t}h.nii.gz"))
    negative = rate.copy(); negative[5, 5, 5] = -1.0
    sitk.WriteImage(_image(negative), str(root / "rate_neg.nii.gz"))
    # files that SimpleITK would read without complaint
    full = (root / "pet.nii.gz").read_bytes()
    (root / "pet_trunc.nii.gz").write_bytes(full[: len(full) * 2 // 3])
    _write_nifti_raw(root / "pet_raw.nii", pet)
    raw = (root / "pet_raw.nii").read_bytes()
    (root / "pet_trunc.nii").write_bytes(raw[: len(raw) * 2 // 3])
    nan = pet.copy(); nan[7, 7, 7] = np.nan
    _write_nifti_raw(root / "pet_nan.nii", nan)
    inf = ct.copy(); inf[3, 3, 3] = np.inf
    _write_nifti_raw(root / "ct_inf.nii", inf)
    _write_nifti_raw(root / "pet_zero_spacing.nii", pet, spacing=(SPACING_mm, 0.0, SPACING_mm))
    _write_nifti_raw(root / "pet_2d.nii", pet[8])
    _write_nifti_raw(root / "pet_4d.nii", np.stack([pet, pet, pet]))
    sitk.WriteImage(_image(np.zeros_like(pet)), str(root / "pet_zero.nii.gz"))
    sitk.WriteImage(_image(np.where(body, 200.0, 0.0)), str(root / "pet_kBq.nii.gz"))  # kBq/mL numbers
    # a model whose card says torch.export: refused without being opened
    (root / "model.pt").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    (root / "model.json").write_text(json.dumps({"format": "deepdose-model-card/2", "nuclide": "Ga68",
                                                 "weights_format": "export", "weights_sha256": "0" * 64}))
    return root


@dataclass
class Case:
    """One row: ``argv`` with ``{in}`` (input copy) and ``{out}`` (output folder) placeholders."""

    name: str
    argv: List[str]
    code: int
    fragment: str
    before_work: bool = False  # refused before the progress bar (no computation started)
    prepare: Optional[Callable[[Path], None]] = None
    outputs_left: List[str] = field(default_factory=list)  # files expected under {out} (exit 0 cases)


def _hardlink_pet(inp: Path) -> None:
    os.link(inp / "pet.nii.gz", inp.parent / "out" / "link.nii.gz")


DOSE = ["dose", "--ct", "{in}/ct.nii.gz", "--pet", "{in}/pet.nii.gz", "--nuclide", "Ga68"]
MC = ["mc", "--ct", "{in}/ct.nii.gz", "--activity", "{in}/pet.nii.gz", "--nuclide", "Ga68", "--device", "cpu"]
INTEGRATE = ["integrate", "--dose-rate", "{in}/rate_4h.nii.gz", "--time-h", "4", "--dose-rate", "{in}/rate_24h.nii.gz",
             "--time-h", "24", "--nuclide", "Lu177"]


def _pet(name: str) -> List[str]:
    return ["dose", "--ct", "{in}/ct.nii.gz", "--pet", "{in}/" + name, "--nuclide", "Ga68"]


CASES = [
    # 1. model files: torch.export refused before loading
    Case("model_card_export", DOSE + ["--method", "deepdose", "--model", "{in}/model.pt", "--out", "{out}/d.nii.gz"],
         2, "torch.export"),
    Case("model_pt2_suffix", DOSE + ["--method", "deepdose", "--model", "{in}/model.pt2", "--out", "{out}/d.nii.gz"],
         2, "TorchScript model file (.pt)", before_work=True,
         prepare=lambda inp: shutil.copy(inp / "model.pt", inp / "model.pt2")),
    # 2. inputs overwritten with --overwrite
    Case("dose_out_is_labels", DOSE + ["--labels", "{in}/labels.nii.gz", "--out", "{in}/labels.nii.gz", "--overwrite"],
         2, "is the input", before_work=True),
    Case("integrate_out_is_labels", INTEGRATE + ["--labels", "{in}/labels.nii.gz", "--out", "{in}/labels.nii.gz",
                                                 "--overwrite"], 2, "is the input", before_work=True),
    Case("organ_table_is_hu_table", DOSE + ["--labels", "{in}/labels.nii.gz", "--hu-density-table", "{in}/hu.csv",
                                            "--organ-table", "{in}/hu.csv", "--out", "{out}/d.nii.gz", "--overwrite"],
         2, "is the input", before_work=True),
    Case("out_hard_link_to_pet", DOSE + ["--out", "{out}/link.nii.gz", "--overwrite"], 2, "a link to it",
         before_work=True, prepare=_hardlink_pet, outputs_left=["link.nii.gz"]),
    Case("out_symlink_to_pet", DOSE + ["--out", "{out}/sym.nii.gz", "--overwrite"], 2, "is the input",
         before_work=True, prepare=lambda inp: os.symlink(inp / "pet.nii.gz", inp.parent / "out" / "sym.nii.gz"),
         outputs_left=["sym.nii.gz"]),
    # 3. two outputs on one path
    Case("uncertainty_is_out", MC + ["--decays", "1e4", "--out", "{out}/d.nii.gz", "--uncertainty", "{out}/d.nii.gz"],
         2, "same path", before_work=True),
    Case("r_squared_is_out", INTEGRATE + ["--model", "mono", "--out", "{out}/d.nii.gz", "--r-squared-out",
                                          "{out}/d.nii.gz"], 2, "same path", before_work=True),
    # 4. truncated images
    Case("truncated_nii_gz_pet", _pet("pet_trunc.nii.gz") + ["--out", "{out}/d.nii.gz"], 2, "truncated"),
    Case("truncated_nii_pet", _pet("pet_trunc.nii") + ["--out", "{out}/d.nii.gz"], 2, "truncated"),
    # 5. NaN / Inf in NIfTI
    Case("nan_in_nifti_pet", _pet("pet_nan.nii") + ["--out", "{out}/d.nii.gz"], 2, "NaN or infinite"),
    Case("inf_in_nifti_ct", ["dose", "--ct", "{in}/ct_inf.nii", "--pet", "{in}/pet.nii.gz", "--out", "{out}/d.nii.gz"],
         2, "NaN or infinite"),
    # 6. 2D and 4D images
    Case("pet_2d", _pet("pet_2d.nii") + ["--out", "{out}/d.nii.gz"], 2, "2D image"),
    Case("pet_4d", _pet("pet_4d.nii") + ["--out", "{out}/d.nii.gz"], 2, "4D image"),
    # 7. unwritable outputs, checked before the work
    Case("out_in_proc", MC + ["--decays", "1e4", "--out", "/proc/deepdose_test.nii.gz"], 2, "cannot write",
         before_work=True),
    Case("out_under_a_file", DOSE + ["--out", "{in}/ct.nii.gz/d.nii.gz"], 2, "is a file", before_work=True),
    # 9. decays not finite
    Case("decays_nan", MC + ["--decays", "nan", "--out", "{out}/d.nii.gz"], 2, "--decays", before_work=True),
    Case("decays_inf", DOSE + ["--method", "mc", "--decays", "inf", "--out", "{out}/d.nii.gz"], 2, "--decays",
         before_work=True),
    # 10. labels
    Case("labels_miss_dose_grid", DOSE + ["--labels", "{in}/labels_far.nii.gz", "--organ-table", "{out}/t.tsv",
                                          "--out", "{out}/d.nii.gz"], 2, "no labelled voxel lies on the dose grid",
         before_work=True),
    Case("negative_labels", DOSE + ["--labels", "{in}/labels_neg.nii.gz", "--organ-table", "{out}/t.tsv",
                                    "--out", "{out}/d.nii.gz"], 2, "negative values", before_work=True),
    # 11. a PET in kBq/mL read as Bq/mL: warned on the total activity (max 200, which the old rule let pass)
    Case("kBq_read_as_Bq", _pet("pet_kBq.nii.gz") + ["--out", "{out}/d.nii.gz", "--quiet"], 0, "kBq/mL",
         outputs_left=["d.nii.gz"]),
    # 12. an all-zero PET: one rule for every method
    *[Case(f"zero_pet_{m}", _pet("pet_zero.nii.gz") + ["--method", m, "--out", "{out}/d.nii.gz"], 2,
           "zero everywhere") for m in ("led", "vsv", "vsv_scaled", "deepdose", "mc")],
    Case("zero_pet_mc_command", ["mc", "--ct", "{in}/ct.nii.gz", "--activity", "{in}/pet_zero.nii.gz", "--nuclide",
                                 "Ga68", "--decays", "1e4", "--out", "{out}/d.nii.gz"], 2, "zero everywhere"),
    # 13. zero spacing
    Case("zero_spacing_nifti", _pet("pet_zero_spacing.nii") + ["--out", "{out}/d.nii.gz"], 2, "pixdim"),
    Case("raw_nifti_is_fine", _pet("pet_raw.nii") + ["--out", "{out}/d.nii.gz", "--quiet"], 0, "written",
         outputs_left=["d.nii.gz"]),  # the hand-written NIfTI of the cases above is otherwise valid
    # 14. a Monte Carlo run of 1e20 decays: estimated from a calibration, refused without --yes
    Case("decays_1e20", MC + ["--decays", "1e20", "--out", "{out}/d.nii.gz"], 2, "--yes"),
    Case("decays_1e20_dose_mc", DOSE + ["--method", "mc", "--device", "cpu", "--decays", "1e20", "--out",
                                        "{out}/d.nii.gz"], 2, "expected run time"),
    # 15. kernel radius
    Case("kernel_radius_negative", DOSE + ["--method", "vsv", "--kernel-radius-mm", "-5", "--out", "{out}/d.nii.gz"],
         2, "--kernel-radius-mm", before_work=True),
    # 16. negative dose rates in integrate
    Case("integrate_negative_rate", ["integrate", "--dose-rate", "{in}/rate_4h.nii.gz", "--time-h", "4",
                                     "--dose-rate", "{in}/rate_neg.nii.gz", "--time-h", "24", "--nuclide", "Lu177",
                                     "--out", "{out}/d.nii.gz"], 2, "negative"),
    # refusals that used to come only after the dose was computed and written
    Case("unsupported_out_suffix", DOSE + ["--out", "{out}/d.png"], 2, "suffixes", before_work=True),
    Case("organ_table_suffix", DOSE + ["--labels", "{in}/labels.nii.gz", "--organ-table", "{out}/t.xlsx",
                                       "--out", "{out}/d.nii.gz"], 2, "suffixes", before_work=True),
    Case("report_focus_missing_label", DOSE + ["--labels", "{in}/labels.nii.gz", "--report", "{out}/rep",
                                               "--report-focus", "7", "--out", "{out}/d.nii.gz"], 2, "no label 7",
         before_work=True),
    Case("uncertainty_clash_dose_mc", DOSE + ["--method", "mc", "--decays", "1e4", "--out", "{out}/d.nii.gz",
                                              "--uncertainty", "{out}/d.nii.gz"], 2, "same path", before_work=True),
    Case("integrate_time_nan", INTEGRATE[:4] + ["nan"] + INTEGRATE[5:] + ["--out", "{out}/d.nii.gz"], 2, "--time-h",
         before_work=True),
    Case("hu_table_empty", DOSE + ["--hu-density-table", "{in}/hu_empty.csv", "--out", "{out}/d.nii.gz"], 2,
         "is empty", before_work=True),
    Case("hu_table_nan", DOSE + ["--hu-density-table", "{in}/hu_nan.csv", "--out", "{out}/d.nii.gz"], 2,
         "NaN or infinite", before_work=True),
    Case("dataset_decays_nan", ["dataset", "--n", "1", "--decays", "nan", "--out", "{out}/ds"], 2, "--decays",
         before_work=True),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_campaign(case: Case, originals: Path, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("DEEPDOSE_CACHE_DIR", str(tmp_path / "cache"))  # nothing computed may land in ~/.cache
    inp, out = tmp_path / "in", tmp_path / "out"
    shutil.copytree(originals, inp)
    out.mkdir()
    if case.prepare is not None:
        case.prepare(inp)
    before = sha256_of_tree(inp)
    argv = [a.replace("{in}", str(inp)).replace("{out}", str(out)) for a in case.argv]
    code = cli.main(argv)  # an exception here (a traceback for the user) fails the test
    err = capsys.readouterr().err
    assert code == case.code, err
    assert case.fragment in err, err
    assert "Traceback" not in err
    if case.before_work:
        assert "%|" not in err, "refused only after the computation started"
    assert sha256_of_tree(inp) == before  # inputs unchanged, byte for byte
    left = sorted(p.name for p in out.rglob("*"))
    assert left == sorted(case.outputs_left), left  # no partial output, no temporary file
    assert not list(inp.rglob(".*tmp*"))


def test_a_long_monte_carlo_run_needs_yes(originals, tmp_path, capsys, monkeypatch):
    """The calibration estimate and --yes, with the thresholds scaled down so that the run itself is short."""
    from DeepDoseLib import cli_checks

    monkeypatch.setattr(cli_checks, "MC_CALIBRATION_DECAYS", 200)  # calibrate runs of > 10 000 decays
    monkeypatch.setattr(cli_checks, "MC_CONFIRM_ABOVE_s", 1e-6)  # every run counts as "long"
    argv = ["mc", "--ct", str(originals / "ct.nii.gz"), "--activity", str(originals / "pet.nii.gz"), "--nuclide",
            "Ga68", "--decays", "2e4", "--device", "cpu", "--quiet", "--out", str(tmp_path / "d.nii.gz")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "expected run time" in err and "--yes" in err and not (tmp_path / "d.nii.gz").exists()
    assert cli.main(argv + ["--yes"]) == 0
    assert "expected run time" in capsys.readouterr().err and (tmp_path / "d.nii.gz").is_file()


def test_slicer_cli_module_refuses_an_input_as_output(originals, tmp_path, capsys):
    """DeepDoseCLI (the Slicer CLI module) uses the same output checks: exit 2, nothing written."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("DeepDoseCLI", REPO_ROOT / "DeepDoseCLI" / "DeepDoseCLI.py")
    DeepDoseCLI = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(DeepDoseCLI)
    inp = tmp_path / "in"
    shutil.copytree(originals, inp)
    before = sha256_of_tree(inp)
    code = DeepDoseCLI.main([str(inp / "ct.nii.gz"), str(inp / "pet.nii.gz"), str(inp / "pet.nii.gz")])
    assert code == 2 and "is the input" in capsys.readouterr().err
    code = DeepDoseCLI.main([str(inp / "ct.nii.gz"), str(inp / "pet.nii.gz"), str(tmp_path / "d.nii.gz"),
                             "--uncertaintyVolume", str(tmp_path / "d.nii.gz"), "--method", "mc"])
    assert code == 2 and "same path" in capsys.readouterr().err
    assert sha256_of_tree(inp) == before and not (tmp_path / "d.nii.gz").exists()
