"""Local energy deposition against the analytic value (issue acceptance)."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

import DeepDoseLib as dd
from DeepDoseLib.methods import led_dose_rate
from DeepDoseLib.tissue import hu_to_density
from DeepDoseLib.units import MGY_PER_H_PER_BQ_PER_ML_MEV_PER_G_PER_CM3


def uniform_images(hu: float, activity_Bq_per_mL: float, size=(12, 10, 8), spacing=(3.0, 3.0, 4.0)):
    ct = sitk.Image(list(size), sitk.sitkFloat32) + float(hu)
    ct.SetSpacing(spacing)
    pet = sitk.Image(list(size), sitk.sitkFloat32) + float(activity_Bq_per_mL)
    pet.SetSpacing(spacing)
    return ct, pet


def test_conversion_constant():
    # 1 Bq/mL × 1 MeV into 1 g/cm³: 1.602176634e-13 J / 1e-3 kg × 3600 s/h × 1000 mGy/Gy
    assert MGY_PER_H_PER_BQ_PER_ML_MEV_PER_G_PER_CM3 == pytest.approx(5.76783588e-4, rel=1e-8)


def test_ga68_positron_only_analytic():
    """1 MBq/mL Ga-68, positron energy only, at 1 g/cm³: 0.7374 MeV × 5.768e-4 × 1e6 ≈ 425.3 mGy/h."""
    dose = led_dose_rate(np.full((4, 4, 4), 1e6), np.ones((4, 4, 4)), dd.get_nuclide("Ga68"), kinds=["beta+"])
    assert dose[2, 2, 2] == pytest.approx(425.3, rel=1e-3)


@pytest.mark.parametrize("hu", [0.0, 40.0, -700.0, 1000.0])
def test_soft_tissue_cube_through_the_api(hu):
    """End to end through compute_dose_rate: analytic value / density, to 0.1 %."""
    ct, pet = uniform_images(hu, 1e6)
    dose = sitk.GetArrayFromImage(dd.compute_dose_rate(ct, pet, "Ga68", "led"))
    rho = float(hu_to_density(np.array([hu]))[0])
    charged = dd.get_nuclide("Ga68").charged_energy_per_decay_MeV  # positrons + conversion/Auger electrons
    expected = 1e6 * charged * MGY_PER_H_PER_BQ_PER_ML_MEV_PER_G_PER_CM3 / rho
    np.testing.assert_allclose(dose, expected, rtol=1e-5)
    # the figure: about 425 mGy/h at 1 g/cm³ for the positrons, scaled by 1/density
    assert dose.mean() * rho == pytest.approx(425.3, rel=1e-3)


def test_photons_option_adds_photon_energy():
    ct, pet = uniform_images(0.0, 1e6)
    without = sitk.GetArrayFromImage(dd.compute_dose_rate(ct, pet, "Lu177"))
    with_ph = sitk.GetArrayFromImage(dd.compute_dose_rate(ct, pet, "Lu177", include_photons=True))
    lu = dd.get_nuclide("Lu177")
    ratio = (lu.charged_energy_per_decay_MeV + lu.photon_energy_per_decay_MeV) / lu.charged_energy_per_decay_MeV
    np.testing.assert_allclose(with_ph / without, ratio, rtol=1e-6)


def test_linear_in_activity_and_zero_without_activity():
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 1e5, (5, 6, 7))
    a[0] = 0
    rho = rng.uniform(0.2, 1.9, a.shape)
    d1 = led_dose_rate(a, rho, dd.get_nuclide("Y90"))
    d2 = led_dose_rate(3 * a, rho, dd.get_nuclide("Y90"))
    np.testing.assert_allclose(d2, 3 * d1, rtol=1e-6)
    assert np.all(d1[0] == 0)


def test_output_on_pet_grid_with_metadata():
    ct, pet = uniform_images(0.0, 1e4)
    pet.SetOrigin((10.0, -20.0, 5.0))
    ct.SetOrigin((10.0, -20.0, 5.0))
    dose = dd.compute_dose_rate(ct, pet, "F18")
    assert dose.GetOrigin() == pet.GetOrigin() and dose.GetSpacing() == pet.GetSpacing()
    assert dose.GetMetaData("DeepDose.units") == "mGy/h"
    assert dose.GetPixelID() == sitk.sitkFloat32


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_equals_cpu():
    rng = np.random.default_rng(2)
    a, rho = rng.uniform(0, 1e5, (8, 8, 8)), rng.uniform(0.2, 2, (8, 8, 8))
    np.testing.assert_allclose(led_dose_rate(a, rho, dd.get_nuclide("Ga68"), device="cuda"),
                               led_dose_rate(a, rho, dd.get_nuclide("Ga68")), rtol=1e-6)


def test_unknown_methods_are_refused_clearly():
    ct, pet = uniform_images(0.0, 1e4)
    with pytest.raises(dd.DeepDoseInputError, match="Unknown method"):
        dd.compute_dose_rate(ct, pet, "Ga68", "magic")
