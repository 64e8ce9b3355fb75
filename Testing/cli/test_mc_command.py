"""`deepdose mc` and `deepdose dose --method mc|vsv` as a user runs them (small decay numbers)."""
from __future__ import annotations


import numpy as np
import pytest
import SimpleITK as sitk

from conftest import run_deepdose, sha256_of_tree


def deepdose(*args, env=None):
    """The command's exit status is checked by each test itself."""
    return run_deepdose(*args, check=False, env=env)


def test_mc_command_with_ct_writes_dose_and_uncertainty(demo_files, tmp_path):
    before = sha256_of_tree(demo_files["ct"]) | sha256_of_tree(demo_files["pet"])
    proc = deepdose("mc", "--ct", demo_files["ct"], "--activity", demo_files["pet"], "--nuclide", "Ga68",
                    "--decays", "2e4", "--seed", "3", "--out", tmp_path / "mc.nii.gz", "--uncertainty",
                    tmp_path / "unc.nii.gz", "--quiet")
    assert proc.returncode == 0, proc.stderr
    dose = sitk.ReadImage(str(tmp_path / "mc.nii.gz"))
    unc = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "unc.nii.gz")))
    pet = sitk.ReadImage(str(demo_files["pet"]))
    assert dose.GetSize() == pet.GetSize() and dose.GetOrigin() == pet.GetOrigin()
    assert np.nanmax(unc) > 0 and "decays/s" in proc.stderr
    assert sha256_of_tree(demo_files["ct"]) | sha256_of_tree(demo_files["pet"]) == before


def test_mc_command_with_density_map(tmp_path):
    rho = sitk.Image([10, 10, 10], sitk.sitkFloat32) + 1.0
    rho.SetSpacing((4.0, 4.0, 4.0))
    act = sitk.Image([10, 10, 10], sitk.sitkFloat32) + 1e4
    act.SetSpacing((4.0, 4.0, 4.0))
    sitk.WriteImage(rho, str(tmp_path / "rho.nii.gz"))
    sitk.WriteImage(act, str(tmp_path / "act.nii.gz"))
    proc = deepdose("mc", "--density", tmp_path / "rho.nii.gz", "--activity", tmp_path / "act.nii.gz", "--nuclide",
                    "Y90", "--decays", "5000", "--out", tmp_path / "d.nii.gz", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "materials assigned from density" in proc.stderr


def test_mc_command_refuses_bad_input(tmp_path, demo_files):
    proc = deepdose("mc", "--ct", demo_files["ct"], "--activity", demo_files["pet"], "--nuclide", "Ga68",
                    "--decays", "0", "--out", tmp_path / "x.nii.gz")
    assert proc.returncode == 2 and "--decays" in proc.stderr
    assert not (tmp_path / "x.nii.gz").exists()


def test_dose_vsv_method(demo_files, tmp_path):
    env = dict(**__import__("os").environ, DEEPDOSE_CACHE_DIR=str(tmp_path / "cache"))
    proc = deepdose("dose", "--ct", demo_files["ct"], "--pet", demo_files["pet"], "--nuclide", "Ga68", "--method",
                    "vsv", "--kernel-decays", "5000", "--kernel-radius-mm", "20", "--vsv-density-correction",
                    "--out", tmp_path / "vsv.nii.gz", "--quiet", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "density-corrected" in proc.stderr
    assert list((tmp_path / "cache" / "vsv").glob("*.npz"))


def test_dose_vsv_scaled_method(demo_files, tmp_path):
    env = dict(**__import__("os").environ, DEEPDOSE_CACHE_DIR=str(tmp_path / "cache"))
    out = {}
    for method in ("vsv", "vsv_scaled"):
        proc = deepdose("dose", "--ct", demo_files["ct"], "--pet", demo_files["pet"], "--nuclide", "Ga68", "--method",
                        method, "--kernel-decays", "20000", "--out", tmp_path / f"{method}.nii.gz", "--quiet", env=env)
        assert proc.returncode == 0, proc.stderr
        out[method] = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / f"{method}.nii.gz")))
    assert "density-scaled VSV" in proc.stderr and "chosen by the source voxel" in proc.stderr
    ct = sitk.GetArrayFromImage(sitk.ReadImage(str(demo_files["ct"])))
    lung = ct < -500  # lung (and air): the scaled method differs there, soft tissue stays close to plain VSV
    soft = (ct > 0) & (ct < 100) & (out["vsv"] > 0.1 * out["vsv"].max())
    assert np.median(out["vsv_scaled"][soft] / out["vsv"][soft]) == pytest.approx(1.0, abs=0.05)
    assert out["vsv_scaled"][lung].mean() > 1.5 * out["vsv"][lung].mean()


def test_dose_mird_method_with_labels(demo_files, tmp_path):
    proc = deepdose("dose", "--ct", demo_files["ct"], "--pet", demo_files["pet"], "--nuclide", "Ga68", "--method",
                    "mird", "--labels", demo_files["labels"], "--label-names", demo_files["label_names"],
                    "--out", tmp_path / "mird.nii.gz", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "MIRD" in proc.stderr
    proc = deepdose("dose", "--ct", demo_files["ct"], "--pet", demo_files["pet"], "--method", "mird",
                    "--out", tmp_path / "mird2.nii.gz", "--quiet")
    assert proc.returncode == 2 and "label map" in proc.stderr


def write_uniform_density_and_activity(folder, n):
    """rho.nii.gz (1 g/cm³) and act.nii.gz (1e4 Bq/mL), n³ voxels of 4 mm, in ``folder``."""
    for name, value in (("rho", 1.0), ("act", 1e4)):
        image = sitk.Image([n, n, n], sitk.sitkFloat32) + value
        image.SetSpacing((4.0, 4.0, 4.0))
        sitk.WriteImage(image, str(folder / f"{name}.nii.gz"))


def test_mc_command_target_uncertainty_and_engine_choice(tmp_path):
    """--target-uncertainty 5% simulates past --decays until the hot-tissue median reaches 5 %; --engine torch
    refuses it (exit 2); a bad percentage is refused before anything runs."""
    write_uniform_density_and_activity(tmp_path, 8)
    common = ("mc", "--density", tmp_path / "rho.nii.gz", "--activity", tmp_path / "act.nii.gz", "--nuclide", "Y90",
              "--decays", "2000", "--quiet")
    proc = deepdose(*common, "--target-uncertainty", "5%", "--out", tmp_path / "d.nii.gz", "--uncertainty",
                    tmp_path / "u.nii.gz")
    assert proc.returncode == 0, proc.stderr
    assert "target uncertainty 5 % reached" in proc.stderr
    unc = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "u.nii.gz")))
    dose = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "d.nii.gz")))
    assert np.median(unc[dose > 0.5 * dose.max()]) <= 0.05
    refused = deepdose(*common, "--engine", "torch", "--target-uncertainty", "2%", "--out", tmp_path / "t.nii.gz")
    assert refused.returncode == 2 and "--engine kernel" in refused.stderr
    bad = deepdose(*common, "--target-uncertainty", "two", "--out", tmp_path / "b.nii.gz")
    assert bad.returncode == 2 and "percentage" in bad.stderr and not (tmp_path / "b.nii.gz").exists()


def test_mc_command_source_sampling(tmp_path):
    """The notes say how decay positions were drawn; stratified sampling with the torch engine is refused (exit 2)
    before anything is written."""
    write_uniform_density_and_activity(tmp_path, 6)
    common = ("mc", "--density", tmp_path / "rho.nii.gz", "--activity", tmp_path / "act.nii.gz", "--nuclide", "Lu177",
              "--decays", "2000")
    default = deepdose(*common, "--out", tmp_path / "d.nii.gz")
    assert default.returncode == 0, default.stderr
    assert "decay positions stratified per batch" in default.stderr + default.stdout
    plain = deepdose(*common, "--source-sampling", "independent", "--out", tmp_path / "p.nii.gz")
    assert plain.returncode == 0, plain.stderr
    assert "decay positions drawn independently" in plain.stderr + plain.stdout
    torch_engine = deepdose(*common, "--engine", "torch", "--out", tmp_path / "e.nii.gz")
    assert torch_engine.returncode == 0, torch_engine.stderr
    assert "decay positions drawn independently" in torch_engine.stderr + torch_engine.stdout
    refused = deepdose(*common, "--engine", "torch", "--source-sampling", "stratified", "--out", tmp_path / "t.nii.gz")
    assert refused.returncode == 2 and "--engine kernel" in refused.stderr
    assert not (tmp_path / "t.nii.gz").exists()
