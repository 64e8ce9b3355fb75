"""The `deepdose` command as a user runs it: subprocesses on real files."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

import DeepDoseLib as dd
from DeepDoseLib.geometry import same_grid

from conftest import REPO_ROOT, sha256_of_tree
from conftest import run_deepdose as deepdose

sys.path.insert(0, str(REPO_ROOT / "Testing" / "core"))
from dicom_factory import suv_tags, write_pet_series  # noqa: E402


def test_console_script_is_installed():
    exe = shutil.which("deepdose") or str(Path(sys.executable).with_name("deepdose"))
    if not Path(exe).exists():
        pytest.skip("package not installed with pip (run `pip install -e .`)")
    assert "DeepDose" in subprocess.run([exe, "--version"], capture_output=True, text=True).stdout


def test_dose_led_on_demo_files_keeps_pet_grid(demo_files, tmp_path):
    before = sha256_of_tree(demo_files["ct"]) | sha256_of_tree(demo_files["pet"])
    out = tmp_path / "dose.nrrd"
    proc = deepdose("dose", "--ct", demo_files["ct"], "--pet", demo_files["pet"], "--nuclide", "Ga68",
                    "--method", "led", "--out", out)
    assert "written" in proc.stderr
    dose = sitk.ReadImage(str(out))
    pet = sitk.ReadImage(str(demo_files["pet"]))
    assert dose.GetSize() == pet.GetSize()
    assert dose.GetOrigin() == pet.GetOrigin()  # exactly the PET grid
    assert dose.GetSpacing() == pet.GetSpacing() and dose.GetDirection() == pet.GetDirection()
    expected = dd.compute_dose_rate(dd.read_ct(demo_files["ct"]).image, dd.read_pet(demo_files["pet"]).image, "Ga68")
    np.testing.assert_allclose(sitk.GetArrayFromImage(dose), sitk.GetArrayFromImage(expected), rtol=1e-6)
    assert sha256_of_tree(demo_files["ct"]) | sha256_of_tree(demo_files["pet"]) == before


def test_dose_refuses_existing_output_and_input_overwrite(demo_files, tmp_path):
    before = sha256_of_tree(demo_files["pet"])
    proc = deepdose("dose", "--ct", demo_files["ct"], "--pet", demo_files["pet"], "--out", demo_files["pet"],
                    check=False)
    assert proc.returncode == 2 and "is the input" in proc.stderr  # identity is checked first
    proc = deepdose("dose", "--ct", demo_files["ct"], "--pet", demo_files["pet"], "--out", demo_files["pet"],
                    "--overwrite", check=False)
    assert proc.returncode == 2 and "input" in proc.stderr
    assert sha256_of_tree(demo_files["pet"]) == before


def test_bad_inputs_exit_2_with_a_message(tmp_path, demo_files):
    far = sitk.Image([5, 5, 5], sitk.sitkFloat32)
    far.SetOrigin((5000.0, 0.0, 0.0))
    sitk.WriteImage(far, str(tmp_path / "far_ct.nii.gz"))
    proc = deepdose("dose", "--ct", tmp_path / "far_ct.nii.gz", "--pet", demo_files["pet"], "--out",
                    tmp_path / "d.nii.gz", check=False)
    assert proc.returncode == 2 and "do not overlap" in proc.stderr
    proc = deepdose("dose", "--ct", demo_files["ct"], "--pet", demo_files["pet"], "--nuclide", "Xx1",
                    "--out", tmp_path / "d.nii.gz", check=False)
    assert proc.returncode == 2 and "Unknown radionuclide" in proc.stderr
    assert not (tmp_path / "d.nii.gz").exists()


def test_suv_dicom_pet_through_the_command(tmp_path):
    """A PET DICOM series in SUV is converted with its tags; the dose equals LED of the hand-converted activity."""
    stored = np.full((4, 6, 8), 100, dtype=np.int16)  # SUV 100 × slope 0.05 = 5
    pet_dir = tmp_path / "pet_dicom"
    write_pet_series(pet_dir, stored, slopes=[0.05] * 4, tags=suv_tags())  # 200 MBq, 60 min, 70 kg, Ga-68
    ct = sitk.Image([30, 30, 30], sitk.sitkFloat32)  # water-like CT around the PET
    ct.SetSpacing((2.0, 2.0, 2.0))
    ct.SetOrigin((-30.0, 20.0, 90.0))
    sitk.WriteImage(ct, str(tmp_path / "ct.nii.gz"))
    before = sha256_of_tree(pet_dir)
    deepdose("dose", "--ct", tmp_path / "ct.nii.gz", "--pet", pet_dir, "--out", tmp_path / "dose.nii.gz")
    activity = 5.0 * 200e6 * 2 ** (-3600 / 4062.6) / 70000.0  # hand calculation, Bq/mL
    rho = float(dd.tissue.hu_to_density(np.array([0.0]))[0])
    expected = activity * dd.get_nuclide("Ga68").charged_energy_per_decay_MeV * 5.76783588e-4 / rho
    dose = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "dose.nii.gz")))
    np.testing.assert_allclose(dose, expected, rtol=1e-5)
    assert sha256_of_tree(pet_dir) == before


def test_demo_command(tmp_path):
    proc = deepdose("demo", "--out", tmp_path / "demo", "--quiet")
    for name in ("ct.nii.gz", "pet.nii.gz", "labels.nii.gz", "dose_rate.nii.gz", "organ_dose_rate.tsv"):
        assert (tmp_path / "demo" / name).is_file()
    assert "kidney_left" in proc.stdout and "mGy" in proc.stdout
    # The demo runs the headline method and sets it beside its physics baseline, organ by organ.
    assert "-> Deep-dose dose rate for Ga68" in proc.stdout
    assert "mean_mGy_per_h[Deep-dose]\tmean_mGy_per_h[vsv_scaled]\tdifference_%" in proc.stdout
    liver = next(line.split("\t") for line in proc.stdout.splitlines() if line.startswith("liver\t"))
    deep, scaled, diff = float(liver[2]), float(liver[3]), float(liver[4])
    assert deep > 0 and scaled > 0 and diff == pytest.approx(100 * (deep - scaled) / scaled, abs=0.15)
    assert abs(diff) < 10  # Deep-dose corrects the baseline by a few % in soft tissue, not by factors
    dose = sitk.ReadImage(str(tmp_path / "demo" / "dose_rate.nii.gz"))
    assert same_grid(dose, sitk.ReadImage(str(tmp_path / "demo" / "pet.nii.gz")))


def test_nuclides_command():
    out = deepdose("nuclides").stdout
    assert "Ga68" in out and "Lu177" in out


def test_deepdose_outside_its_voxel_sizes_says_why_no_uncertainty_map(tmp_path):
    """A 1 mm grid is outside the model's 2–6 mm: the whole volume falls back to the baseline, the network does not
    run, and the command says so instead of claiming that Deep-dose has no uncertainty."""
    ct = sitk.GetImageFromArray(np.full((24, 24, 24), 40.0, np.float32))
    pet = sitk.GetImageFromArray(np.full((24, 24, 24), 5e3, np.float32))
    for image in (ct, pet):
        image.SetSpacing((1.0, 1.0, 1.0))
    sitk.WriteImage(ct, str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(pet, str(tmp_path / "pet.nii.gz"))
    out, unc = tmp_path / "dose.nii.gz", tmp_path / "unc.nii.gz"
    proc = deepdose("dose", "--ct", tmp_path / "ct.nii.gz", "--pet", tmp_path / "pet.nii.gz", "--nuclide", "Ga68",
                    "--method", "deepdose", "--deepdose-baseline-grid", "model", "--out", out, "--uncertainty", unc)
    assert out.exists() and not unc.exists()
    assert "Deep-dose not applied: voxel size" in proc.stderr
    assert "gave no uncertainty map for this input" in proc.stderr and "no statistical uncertainty" not in proc.stderr
    proc = deepdose("dose", "--ct", tmp_path / "ct.nii.gz", "--pet", tmp_path / "pet.nii.gz", "--nuclide", "Ga68",
                    "--method", "led", "--out", tmp_path / "led.nii.gz", "--uncertainty", tmp_path / "u2.nii.gz")
    assert "method led has no statistical uncertainty" in proc.stderr
