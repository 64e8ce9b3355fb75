"""Therapy pipeline against analytic absorbed doses: a uniform sphere with a mono-exponential clearance, as
given, with one scan moved (registration on and off), and from count images with a calibration factor.

Analytic dose (local energy deposition is exact inside a uniform source far larger than the Lu-177 β range
(< 2 mm): every voxel of the sphere's core receives the charged-particle energy emitted in it):

    Ḋ(t) [Gy/h] = C(t) [Bq/mL] · E [MeV] · 1.602176634×10⁻¹³ J/MeV · 3600 s/h / (ρ [g/mL] · 10⁻³ kg/g)
    D [Gy] = ∫₀^∞ Ḋ dt = Ḋ(0)/λ_eff,   C(t) = C₀ e^(−λ_eff t)

with E the mean charged-particle energy per decay (ICRP-107) and ρ the density of the water-like sphere (20 HU).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from DeepDoseLib.errors import DeepDoseInputError
from DeepDoseLib.nuclides import get_nuclide
from DeepDoseLib.therapy.study import TherapyOptions, run_therapy_study
from DeepDoseLib.therapy.synthetic import rigid_motion, sphere_study
from DeepDoseLib.tissue import hu_to_density

J_PER_MEV = 1.602176634e-13


def analytic_dose_Gy(study) -> float:
    c0, lam = study.kinetics[1]
    rho = float(hu_to_density(np.array([20.0], np.float32))[0])
    rate0_Gy_per_h = c0 * get_nuclide("Lu177").charged_energy_per_decay_MeV * J_PER_MEV * 3600.0 / (rho * 1e-3)
    return rate0_Gy_per_h / lam


def _run(study, **options):
    return run_therapy_study(study.time_points, TherapyOptions(nuclide="Lu177", method="led", **options),
                             labels=study.labels, label_names=study.label_names)


def test_uniform_sphere_three_time_points_gives_the_analytic_dose():
    # 3 scans (24, 72, 168 h) of C₀ e^(−λt), T_eff = 50 h; registration runs (the scans are aligned: identity).
    study = sphere_study()
    expected = analytic_dose_Gy(study)
    result = _run(study)
    core = result.structures[0]
    assert core.dose_rate_fit.model == "mono"  # 3 points: AICc undefined, mono used
    assert core.mean_Gy == pytest.approx(expected, rel=0.01)  # the 1 %
    assert core.voxel_mean_Gy == pytest.approx(expected, rel=0.01)  # voxel-wise fits agree
    assert core.effective_half_life_h == pytest.approx(50.0, rel=0.01)
    # BED of the mean: G = λ/(λ+μ) of the fitted mono-exponential, default α/β 3 Gy, T_rep 1.5 h for "sphere_core"
    lam, mu = math.log(2) / 50.0, math.log(2) / 1.5
    assert core.bed_Gy == pytest.approx(core.mean_Gy * (1 + lam / (lam + mu) * core.mean_Gy / 3.0), rel=1e-3)
    for tp in result.time_points[1:]:
        assert tp.quality.body_dice_after > 0.99


def test_moved_time_point_needs_registration():
    # Scan 2 (72 h) taken with the patient moved by 8 mm and rotated by 3°: with registration the dose is within 3 %
    # of the analytic one, without it the sphere's core partly misses the activity of that scan and it is not.
    study = sphere_study(moved={1: rigid_motion((8.0, 0.0, 0.0), 3.0, centre_mm=(0.0, -10.0, 0.0))})
    expected = analytic_dose_Gy(study)
    with_registration = _run(study)
    registered = with_registration.structures[0].mean_Gy
    unregistered = _run(study, register=False).structures[0].mean_Gy
    assert registered == pytest.approx(expected, rel=0.03)  # measured: −0.13 %
    assert abs(unregistered / expected - 1.0) > 0.03  # measured: −6.4 %
    quality = with_registration.time_points[1].quality
    assert quality.body_dice_after > quality.body_dice_before
    assert quality.rotation_deg[2] == pytest.approx(3.0, abs=0.5)  # measured 2.85–3.07
    # organ-mask overlap: the scan's own segmentation of the core against the reference one
    assert quality.label_dice_before["sphere_core"] < 0.8 < 0.95 < quality.label_dice_after["sphere_core"]


def test_count_images_with_calibration_factor():
    # Counts per voxel N = A [MBq per voxel] · F [cps/MBq] · T [s]; converted back, the dose is the analytic one.
    study = sphere_study(times_h=(24.0, 96.0, 168.0))
    factor_cps_per_MBq, duration_s = 12.5, 900.0
    voxel_mL = 4.0 ** 3 / 1000.0
    for tp in study.time_points:
        tp.activity = tp.activity * (voxel_mL * 1e-6 * factor_cps_per_MBq * duration_s)
        tp.activity_unit, tp.frame_duration_s = "counts", duration_s
    with pytest.raises(DeepDoseInputError, match="calibration factor"):
        _run(study, register=False)
    result = _run(study, register=False, calibration_cps_per_MBq=factor_cps_per_MBq,
                  calibration_relative_uncertainty=0.04)
    core = result.structures[0]
    assert core.mean_Gy == pytest.approx(analytic_dose_Gy(study), rel=0.01)
    assert core.uncertainty.components["calibration"] == 0.04
    assert core.u_mean_Gy >= 0.04 * core.mean_Gy


def test_bad_study_inputs_are_refused():
    study = sphere_study(times_h=(24.0, 72.0))
    with pytest.raises(DeepDoseInputError, match="reference time point 3"):
        _run(study, reference_index=2)
    study.time_points[1].time_h = 24.0
    with pytest.raises(DeepDoseInputError, match="distinct"):
        _run(study)


@pytest.mark.slow
def test_moved_time_point_with_deformable_refinement():
    # Rigid + B-spline on the same moved scan: the B-spline stage must not spoil a rigid motion (dose within 3 %,
    # body Dice after ≥ 0.98) and the rigid part it starts from is still reported. ~20 s on two loaded cores.
    from DeepDoseLib.therapy.registration import RegistrationSettings

    study = sphere_study(moved={1: rigid_motion((8.0, 0.0, 0.0), 3.0, centre_mm=(0.0, -10.0, 0.0))})
    result = _run(study, registration=RegistrationSettings(deformable=True))
    assert result.structures[0].mean_Gy == pytest.approx(analytic_dose_Gy(study), rel=0.03)  # measured −0.2 %
    quality = result.time_points[1].quality
    assert quality.deformable and quality.body_dice_after > 0.98
    assert quality.rotation_deg[2] == pytest.approx(3.0, abs=0.5)  # measured 2.85–3.07


def test_single_time_point_at_the_effective_half_life_is_exact():
    # Hänscheid et al. 2018: D ≈ Ḋ(t)·2t/ln 2, exact for a mono-exponential when t = T_eff:
    # Ḋ(t)·2t/ln2 = Ḋ(0)·e^(−ln2)·2·T_eff/ln 2 = Ḋ(0)·T_eff/ln 2 = Ḋ(0)/λ. One scan at 50 h of the T_eff = 50 h sphere.
    study = sphere_study(times_h=(50.0,))
    core = _run(study).structures[0]
    assert core.dose_rate_fit.model == "stp"
    assert core.mean_Gy == pytest.approx(analytic_dose_Gy(study), rel=1e-3)
    # with a population effective half-life instead (the true 50 h) at another scan time (96 h): exact again,
    # D = Ḋ(96 h)·e^(λ·96)/λ = Ḋ(0)/λ
    late = sphere_study(times_h=(96.0,))
    core = _run(late, population_half_life_h=50.0).structures[0]
    assert core.mean_Gy == pytest.approx(analytic_dose_Gy(late), rel=1e-3)
