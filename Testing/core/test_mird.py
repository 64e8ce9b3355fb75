"""MIRD organ-level (sphere-model) method: analytic limits and the sphere absorbed-fraction table."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

import DeepDoseLib as dd
from DeepDoseLib.dose import MethodOptions
from DeepDoseLib.methods.mird import _af_table, mird_organ_dose_rates, organ_absorbed_energy_MeV, \
    photon_absorbed_fraction
from DeepDoseLib.physics import photon_mu_rho
from DeepDoseLib.units import MGY_PER_H_PER_BQ_PER_ML_MEV_PER_G_PER_CM3


def test_absorbed_fraction_table_behaves_physically():
    ln_e, ln_m, table = _af_table()
    assert np.all((table > 0) & (table < 1))
    assert np.all(np.diff(table, axis=0) > -0.01)  # grows with sphere mass (MC noise ≤ 0.5 %)
    assert table[-1, 0] > 0.9  # 15 keV photons stay in a 3 kg sphere


@pytest.mark.parametrize("energy_MeV,mass_g", [(0.511, 1000.0), (1.0, 300.0), (0.2, 3000.0)])
def test_absorbed_fraction_close_to_straight_ahead_estimate(energy_MeV, mass_g):
    """Independent estimate from the μ_en tables: φ ≈ 1 − exp(−μ_en · 3R/4) (mean chord from a uniform
    interior point; the 'straight-ahead' approximation, good to ~20 % for φ ≤ 0.4 because scattered photons
    partly escape and partly deposit more than μ_en assumes)."""
    mu_en = float(photon_mu_rho("soft_tissue", np.array([energy_MeV]), "energy_absorption")[0])
    radius_cm = (3 * mass_g / (4 * np.pi)) ** (1 / 3)
    estimate = 1 - np.exp(-mu_en * 0.75 * radius_cm)
    assert float(photon_absorbed_fraction(np.array([energy_MeV]), mass_g)[0]) == pytest.approx(estimate, rel=0.2)


def labelled_cube(activity=1e5, density=1.0):
    a = np.zeros((20, 20, 20), np.float32)
    labels = np.zeros(a.shape, np.uint8)
    a[5:15, 5:15, 5:15] = activity
    labels[5:15, 5:15, 5:15] = 1
    return a, np.full(a.shape, density, np.float32), labels


def test_pure_beta_emitter_is_activity_times_energy_over_mass():
    a, rho, labels = labelled_cube()
    y90 = dd.get_nuclide("Y90")
    rows, _ = mird_organ_dose_rates(a, rho, labels, {1: "organ"}, (4.0, 4.0, 4.0), y90)
    expected = 1e5 * y90.charged_energy_per_decay_MeV * MGY_PER_H_PER_BQ_PER_ML_MEV_PER_G_PER_CM3
    assert rows[0].dose_rate_mGy_per_h == pytest.approx(expected, rel=1e-3)  # Y-90 photons: 1e-6 MeV/decay
    assert rows[0].mass_g == pytest.approx(64.0)
    assert rows[0].activity_MBq == pytest.approx(1e5 * 64 * 1e-6)


def test_photons_add_their_absorbed_fraction():
    ga = dd.get_nuclide("Ga68")
    total, photon = organ_absorbed_energy_MeV(ga, 1000.0)
    assert total == pytest.approx(ga.charged_energy_per_decay_MeV + photon)
    assert 0.05 * ga.photon_energy_per_decay_MeV < photon < 0.3 * ga.photon_energy_per_decay_MeV


def test_method_through_the_api_and_refusal_without_labels(demo_case):
    inputs = dd.prepare_inputs(demo_case.ct, demo_case.pet)
    with pytest.raises(dd.DeepDoseInputError, match="label map"):
        dd.dose.run_dose_method(inputs, "Ga68", "mird")
    result = dd.dose.run_dose_method(inputs, "Ga68", "mird",
                                     MethodOptions(labels=demo_case.labels, label_names=demo_case.label_names))
    dose = sitk.GetArrayFromImage(result.dose_rate)
    labels = sitk.GetArrayFromImage(demo_case.labels)
    for value in np.unique(labels[labels > 0])[:5]:
        organ = dose[labels == value]
        assert np.allclose(organ, organ[0])  # uniform per organ
    assert np.all(dose[labels == 0] == 0)
    assert any("MIRD" in n for n in result.notes)
