"""DeepDoseCLI.py as a subprocess with the Monte Carlo method: progress, dose and uncertainty outputs."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

import DeepDoseLib as dd
from DeepDoseLib.dose import prepare_inputs

from conftest import REPO_ROOT, filter_progress_fractions

CLI = REPO_ROOT / "DeepDoseCLI" / "DeepDoseCLI.py"


@pytest.mark.slow
def test_monte_carlo_run_writes_dose_and_uncertainty(demo_files, tmp_path):
    dose_path, sigma_path = tmp_path / "dose.nrrd", tmp_path / "sigma.nrrd"
    proc = subprocess.run([sys.executable, str(CLI), "--method", "mc", "--decays", "2000", "--seed", "7",
                           "--device", "cpu", "--nuclide", "Ga68", "--uncertaintyVolume", str(sigma_path),
                           str(demo_files["ct"]), str(demo_files["pet"]), str(dose_path)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "<filter-start>" in proc.stdout and "<filter-end>" in proc.stdout
    fractions = filter_progress_fractions(proc.stdout)
    assert len(fractions) > 3 and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert "2,000 decays, seed 7" in proc.stdout

    pet = dd.read_pet(demo_files["pet"]).image
    dose, sigma = sitk.ReadImage(str(dose_path)), sitk.ReadImage(str(sigma_path))
    for image in (dose, sigma):  # both on the PET grid
        assert image.GetSize() == pet.GetSize()
        np.testing.assert_allclose(image.GetOrigin(), pet.GetOrigin(), atol=1e-6)
        np.testing.assert_allclose(image.GetSpacing(), pet.GetSpacing(), atol=1e-6)
    dose_zyx, sigma_zyx = sitk.GetArrayFromImage(dose), sitk.GetArrayFromImage(sigma)
    assert np.all(np.isfinite(dose_zyx)) and dose_zyx.min() >= 0 and dose_zyx.max() > 0
    scored = dose_zyx > 0
    assert np.all(np.isfinite(sigma_zyx[scored])) and sigma_zyx[scored].min() >= 0

    # Energy balance: deposited power = Σ dose rate × mass. The Monte Carlo deposits the positron
    # energy (as LED does; < 1 % escapes the body) plus the part of the photon energy absorbed in
    # the body, so its total lies between LED without photons and LED with all photon energy
    # absorbed. 2000 decays give a few % statistical spread on the total: bounds widened by 10 % / 5 %.
    ct = dd.read_ct(demo_files["ct"]).image
    mass = prepare_inputs(ct, pet).density_g_per_cm3.astype(np.float64)

    def power(dose_rate_zyx):
        return float(np.sum(dose_rate_zyx * mass))

    charged = power(sitk.GetArrayFromImage(dd.compute_dose_rate(ct, pet, "Ga68", "led")))
    everything = power(sitk.GetArrayFromImage(dd.compute_dose_rate(ct, pet, "Ga68", "led", include_photons=True)))
    assert 0.9 * charged < power(dose_zyx) < 1.05 * everything, (power(dose_zyx), charged, everything)
