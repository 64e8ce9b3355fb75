"""Time integration of dose-rate curves and maps against analytic integrals."""
from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from DeepDoseLib.analysis.time_integration import (fit_exponential, integrate_curves, integrate_physical_decay,
                                                   integrate_single_time_point, integrate_trapezoid, integrate_voxels,
                                                   mGy_to_Gy)
from DeepDoseLib.analysis.time_integration_maps import (format_organ_time_table, integrate_maps, integrate_organs)
from DeepDoseLib.errors import DeepDoseInputError
from DeepDoseLib.nuclides import get_nuclide

LU177_HALF_LIFE_H = get_nuclide("Lu177").half_life_s / 3600.0
LAMBDA_LU177 = math.log(2.0) / LU177_HALF_LIFE_H
TIMES_H = np.array([4.0, 24.0, 48.0, 96.0])  # a common Lu-177 imaging schedule


def uptake_washout(t, amplitude, washout_half_life_h, uptake_half_life_h):
    lw, lu = math.log(2) / washout_half_life_h, math.log(2) / uptake_half_life_h
    return amplitude * (np.exp(-lw * t) - np.exp(-lu * t)), amplitude * (1 / lw - 1 / lu)


def test_lu177_half_life_is_icrp107():
    # ICRP-107: Lu-177 T½ = 6.647 d; the physical tail and decay corrections depend on it
    assert LU177_HALF_LIFE_H == pytest.approx(6.647 * 24, rel=1e-4)


@pytest.mark.parametrize("teff_h", [20.0, 50.0, 120.0])
def test_mono_exponential_within_half_percent(teff_h):
    amplitude = 3.7  # mGy/h at t = 0
    values = amplitude * np.exp(-math.log(2) / teff_h * TIMES_H)
    result = integrate_curves(TIMES_H, values, "mono", LAMBDA_LU177)
    analytic = amplitude * teff_h / math.log(2)
    # acceptance: 0.5 %; noise-free data, so the fit should reproduce it to round-off (measured ~1e-15)
    assert result.integral[0] == pytest.approx(analytic, rel=5e-3)
    assert abs(result.integral[0] / analytic - 1) < 1e-8
    assert result.parameters["half_life_h"][0] == pytest.approx(teff_h, rel=1e-6)
    assert result.r_squared[0] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("washout_h, uptake_h", [(45.0, 2.0), (30.0, 8.0), (90.0, 1.0)])
def test_bi_exponential_at_four_time_points_within_two_percent(washout_h, uptake_h):
    values, analytic = uptake_washout(TIMES_H, 12.0, washout_h, uptake_h)
    result = integrate_curves(TIMES_H, values, "bi", LAMBDA_LU177)
    # acceptance: 2 %; 3 parameters from 4 exact points: the fit recovers the curve (measured < 1e-9)
    assert result.integral[0] == pytest.approx(analytic, rel=0.02)
    assert abs(result.integral[0] / analytic - 1) < 1e-6
    assert result.parameters["half_life_washout_h"][0] == pytest.approx(washout_h, rel=1e-4)
    assert result.parameters["half_life_uptake_h"][0] == pytest.approx(uptake_h, rel=1e-3)
    assert result.converged[0]


def test_bi_exponential_is_unbiased_with_noise():
    rng = np.random.default_rng(7)
    values, analytic = uptake_washout(TIMES_H, 12.0, 45.0, 2.0)
    noisy = values[None, :] * (1.0 + 0.05 * rng.normal(size=(2000, 4)))  # 5 % noise per point
    result = integrate_curves(TIMES_H, noisy, "bi", LAMBDA_LU177)
    errors = result.integral / analytic - 1
    # least squares is near-unbiased; 2000 curves with ~4 % spread give a standard error of ~0.1 % on the mean
    assert abs(errors.mean()) < 0.01
    assert 0.01 < errors.std() < 0.1  # the noise propagates: a fit that ignored the data would fail this
    assert np.all(np.isfinite(result.r_squared)) and result.converged.mean() > 0.99


def test_two_phase_washout_recovers_both_phases():
    t = np.array([1.0, 4.0, 24.0, 48.0, 96.0])
    values = 5.0 * np.exp(-math.log(2) / 5 * t) + 3.0 * np.exp(-math.log(2) / 60 * t)
    analytic = 5.0 * 5 / math.log(2) + 3.0 * 60 / math.log(2)
    result = integrate_curves(t, values, "bi-washout", LAMBDA_LU177)
    assert result.integral[0] == pytest.approx(analytic, rel=1e-6)
    assert result.parameters["half_life_fast_h"][0] == pytest.approx(5.0, rel=1e-4)
    assert result.parameters["half_life_slow_h"][0] == pytest.approx(60.0, rel=1e-4)


def test_fit_quality_prefers_the_true_model():
    values, _ = uptake_washout(np.array([1.0, 4.0, 24.0, 48.0, 96.0]), 12.0, 45.0, 4.0)
    t = np.array([1.0, 4.0, 24.0, 48.0, 96.0])
    mono = integrate_curves(t, values, "mono", LAMBDA_LU177)
    bi = integrate_curves(t, values, "bi", LAMBDA_LU177)
    assert bi.r_squared[0] > 0.999999 > mono.r_squared[0]
    assert bi.aicc[0] < mono.aicc[0]  # AICc penalises the extra parameter, but the data demand it
    np.testing.assert_allclose(mono.residuals[0], values - mono.parameters["A"][0] *
                               np.exp(-mono.parameters["lambda_per_h"][0] * t), atol=1e-9)


def test_physical_bound_on_decay_constants():
    # a clearance slower than physical decay is unphysical: with the bound, the fit stops at λ_phys
    values = 2.0 * np.exp(-math.log(2) / 400.0 * TIMES_H)
    bounded = fit_exponential(TIMES_H, values, "mono", LAMBDA_LU177)
    free = fit_exponential(TIMES_H, values, "mono", 0.0)
    assert bounded.parameters["lambda_per_h"][0] >= LAMBDA_LU177 * (1 - 1e-9)
    assert bounded.parameters["lambda_per_h"][0] == pytest.approx(LAMBDA_LU177, rel=1e-3)
    assert free.parameters["half_life_h"][0] == pytest.approx(400.0, rel=1e-6)


def test_trapezoid_parts_by_hand():
    values = np.array([2.0, 4.0, 3.0, 1.0])  # mGy/h
    result = integrate_trapezoid(TIMES_H, values, LAMBDA_LU177)
    head = 0.5 * 2.0 * 4.0
    body = 0.5 * (2 + 4) * 20 + 0.5 * (4 + 3) * 24 + 0.5 * (3 + 1) * 48
    tail = 1.0 / LAMBDA_LU177
    assert result.parameters["head"][0] == pytest.approx(head)
    assert result.parameters["body"][0] == pytest.approx(body)
    assert result.parameters["tail"][0] == pytest.approx(tail)
    assert result.integral[0] == pytest.approx(head + body + tail)
    constant = integrate_trapezoid(TIMES_H, values, LAMBDA_LU177, head="constant")
    assert constant.integral[0] - result.integral[0] == pytest.approx(0.5 * 2.0 * 4.0)


def test_trapezoid_fitted_tail_is_exact_for_mono_exponential_tail():
    teff = 40.0
    values = 5.0 * np.exp(-math.log(2) / teff * TIMES_H)
    result = integrate_trapezoid(TIMES_H, values, LAMBDA_LU177, tail="fit")
    assert result.parameters["tail"][0] == pytest.approx(values[-1] * teff / math.log(2), rel=1e-9)
    physical = integrate_trapezoid(TIMES_H, values, LAMBDA_LU177)
    assert physical.parameters["tail"][0] == pytest.approx(values[-1] * LU177_HALF_LIFE_H / math.log(2))
    # the physical tail overestimates (no washout), the fitted one does not
    analytic = 5.0 * teff / math.log(2)
    assert physical.integral[0] > analytic
    assert result.integral[0] == pytest.approx(analytic, rel=0.05)  # trapezoid body error on a convex curve


def test_physical_decay_only_lu177():
    dose_rate_0 = 2.5  # mGy/h at the reference time
    result = integrate_physical_decay(dose_rate_0, LAMBDA_LU177)
    assert result.integral[0] == pytest.approx(dose_rate_0 * LU177_HALF_LIFE_H / math.log(2), rel=1e-12)
    assert mGy_to_Gy(result.integral[0]) == pytest.approx(2.5 * 6.647 * 24 / math.log(2) / 1000, rel=1e-4)
    # a map measured 24 h after injection: decay-corrected back to the injection it gives the same total
    later = dose_rate_0 * math.exp(-LAMBDA_LU177 * 24.0)
    from_injection = integrate_physical_decay(later, LAMBDA_LU177, reference_time_h=24.0)
    assert from_injection.integral[0] == pytest.approx(result.integral[0], rel=1e-12)
    from_reference = integrate_physical_decay(later, LAMBDA_LU177, reference_time_h=24.0, integrate_from="reference")
    assert from_reference.integral[0] == pytest.approx(later / LAMBDA_LU177, rel=1e-12)
    assert integrate_curves([24.0], [later], "physical", LAMBDA_LU177).integral[0] == \
        pytest.approx(result.integral[0], rel=1e-12)


@pytest.mark.parametrize("ratio", [0.5, 0.75, 1.0, 1.5, 2.0])
def test_hanscheid_single_time_point(ratio):
    teff, amplitude = 50.0, 4.0
    t = ratio * teff
    value = amplitude * math.exp(-math.log(2) / teff * t)
    estimate = integrate_single_time_point(t, value).integral[0]
    truth = amplitude * teff / math.log(2)
    # Hänscheid 2018: y(t)·2t/ln2, exact at t = T_eff; for a mono-exponential the ratio is 2x·2^(−x), x = t/T_eff
    assert estimate / truth == pytest.approx(2 * ratio * 2 ** (-ratio), rel=1e-12)
    if ratio == 1.0:
        assert estimate == pytest.approx(truth, rel=1e-12)
    with_teff = integrate_single_time_point(t, value, effective_half_life_h=teff).integral[0]
    assert with_teff == pytest.approx(truth, rel=1e-12)


def test_inputs_are_checked():
    with pytest.raises(DeepDoseInputError, match="increasing"):
        integrate_curves([24.0, 4.0], [1.0, 2.0], "trapezoid", LAMBDA_LU177)
    with pytest.raises(DeepDoseInputError, match="> 0 h"):
        integrate_curves([0.0, 4.0], [1.0, 2.0], "trapezoid", LAMBDA_LU177)
    with pytest.raises(DeepDoseInputError, match="at least 3"):
        integrate_curves([4.0, 24.0], [1.0, 2.0], "bi", LAMBDA_LU177)
    with pytest.raises(DeepDoseInputError, match="exactly one"):
        integrate_curves([4.0, 24.0], [1.0, 2.0], "stp", LAMBDA_LU177)
    with pytest.raises(DeepDoseInputError, match="Unknown"):
        integrate_curves([4.0], [1.0], "gamma-variate", LAMBDA_LU177)
    with pytest.raises(DeepDoseInputError, match="NaN"):
        integrate_curves(TIMES_H, [1.0, np.nan, 1.0, 1.0], "mono", LAMBDA_LU177)


def test_batch_equals_single_curves():
    rng = np.random.default_rng(3)
    batch = np.stack([uptake_washout(TIMES_H, a, w, u)[0] for a, w, u in
                      zip(rng.uniform(1, 10, 5), rng.uniform(20, 100, 5), rng.uniform(1, 6, 5))])
    together = integrate_curves(TIMES_H, batch, "bi", LAMBDA_LU177).integral
    alone = [integrate_curves(TIMES_H, row, "bi", LAMBDA_LU177).integral[0] for row in batch]
    np.testing.assert_allclose(together, alone, rtol=1e-9)


def _maps(shape=(4, 5, 6), spacing=(2.0, 2.0, 3.0), times=TIMES_H, seed=0):
    rng = np.random.default_rng(seed)
    amplitude = rng.uniform(0.5, 5.0, shape)
    washout = rng.uniform(20.0, 100.0, shape)
    amplitude[0, 0, :] = 0.0  # voxels without activity
    images = []
    for t in times:
        image = sitk.GetImageFromArray((amplitude * np.exp(-math.log(2) / washout * t)).astype(np.float32))
        image.SetSpacing(spacing)
        image.SetOrigin((-5.0, 3.0, 7.0))
        images.append(image)
    return images, amplitude * washout / math.log(2)


def test_voxel_maps_mono_match_analytic_and_carry_units():
    images, analytic_mGy = _maps()
    shuffled = [images[i] for i in (2, 0, 3, 1)]  # order of the inputs does not matter
    result = integrate_maps(shuffled, list(TIMES_H[[2, 0, 3, 1]]), "Lu177", "mono", device="cpu")
    dose_Gy = sitk.GetArrayFromImage(result.image)
    # float32 maps: ~1e-6 relative input precision; 1e-4 leaves room for the fit's tolerance
    np.testing.assert_allclose(dose_Gy, analytic_mGy / 1000.0, rtol=1e-4, atol=1e-12)
    assert np.all(dose_Gy[0, 0, :] == 0)
    assert result.unit == "Gy" and result.image.GetMetaData("DeepDose.units") == "Gy"
    assert result.image.GetSpacing() == images[0].GetSpacing() and result.image.GetOrigin() == images[0].GetOrigin()
    r2 = sitk.GetArrayFromImage(result.r_squared)
    assert np.nanmin(r2) > 0.9999 and np.all(np.isnan(r2[0, 0, :]))


def test_voxel_trapezoid_equals_curve_trapezoid_and_chunks_do_not_matter():
    images, _ = _maps()
    arrays = [sitk.GetArrayFromImage(im) for im in images]
    whole = integrate_voxels(TIMES_H, arrays, "trapezoid", LAMBDA_LU177)
    chunked = integrate_voxels(TIMES_H, arrays, "trapezoid", LAMBDA_LU177, chunk_voxels=7)
    np.testing.assert_allclose(whole["integral"], chunked["integral"], rtol=1e-12)
    voxel = (2, 3, 4)
    single = integrate_trapezoid(TIMES_H, [a[voxel] for a in arrays], LAMBDA_LU177).integral[0]
    assert whole["integral"][voxel] == pytest.approx(single, rel=1e-12)


def test_failed_voxel_fits_fall_back_to_trapezoid():
    t = TIMES_H
    arrays = [np.array([[[1.0, 2.0]]]) * v for v in (1.0, 0.0, 0.0, 1.0)]  # oscillating: no exponential fits
    arrays[0][0, 0, 1] = 2.0
    result = integrate_voxels(t, arrays, "mono", LAMBDA_LU177)
    fell_back = result["fallback"]
    assert fell_back.any() and any("fit failed" in n for n in result["notes"])
    trap = integrate_trapezoid(t, np.stack([a.ravel() for a in arrays], 1), LAMBDA_LU177).integral
    np.testing.assert_allclose(result["integral"].ravel()[fell_back.ravel()], trap[fell_back.ravel()])


def test_maps_on_different_grids_are_refused_by_name():
    images, _ = _maps()
    images[2].SetSpacing((2.0, 2.0, 3.5))
    with pytest.raises(DeepDoseInputError, match="day2.nii.gz"):
        integrate_maps(images, TIMES_H, "Lu177", "trapezoid", names=["day0", "day1", "day2.nii.gz", "day4"])
    with pytest.raises(DeepDoseInputError, match="one time per map"):
        integrate_maps(images[:3], TIMES_H, "Lu177", "trapezoid")


def test_organ_curves_and_table():
    images, _ = _maps()
    labels = sitk.Image(images[0].GetSize(), sitk.sitkUInt8)
    labels.CopyInformation(images[0])
    lab = np.zeros(sitk.GetArrayViewFromImage(images[0]).shape, np.uint8)
    lab[1:3, 1:4, 1:5] = 1
    lab[3, :, :] = 2
    labels = sitk.GetImageFromArray(lab)
    labels.CopyInformation(images[0])
    voxel_map = integrate_maps(images, TIMES_H, "Lu177", "trapezoid")
    rows = integrate_organs(images, TIMES_H, labels, {1: "liver", 2: "kidney"}, "Lu177", "trapezoid",
                            voxel_map=voxel_map)
    assert [r.name for r in rows] == ["liver", "kidney"]
    arrays = [sitk.GetArrayFromImage(im).astype(np.float64) for im in images]
    liver_curve = [a[lab == 1].mean() for a in arrays]
    assert rows[0].values == pytest.approx(liver_curve, rel=1e-6)
    expected = integrate_trapezoid(TIMES_H, liver_curve, LAMBDA_LU177).integral[0] / 1000.0
    assert rows[0].integral == pytest.approx(expected, rel=1e-6) and rows[0].unit == "Gy"
    # the trapezoid is linear in the data: the organ mean of the voxel map equals the organ-curve integral
    assert rows[0].voxel_map_mean == pytest.approx(rows[0].integral, rel=1e-5)
    table = format_organ_time_table(rows).splitlines()
    assert table[0].split("\t")[:4] == ["organ", "label", "model", "mGy_per_h_at_4h"]
    assert "absorbed_dose_Gy" in table[0] and len(table) == 3


def test_activity_maps_give_time_integrated_activity():
    images, analytic = _maps()  # read as Bq/mL this time: mono-exponential, T_eff per voxel
    result = integrate_maps(images, TIMES_H, "Lu177", "mono", quantity="activity", device="cpu")
    assert result.unit == "Bq·h/mL"
    np.testing.assert_allclose(sitk.GetArrayFromImage(result.image), analytic, rtol=1e-4, atol=1e-9)
    lab = np.ones(analytic.shape, np.uint8)
    labels = sitk.GetImageFromArray(lab)
    labels.CopyInformation(images[0])
    rows = integrate_organs(images, TIMES_H, labels, {1: "body"}, "Lu177", "trapezoid", quantity="activity",
                            voxel_map=integrate_maps(images, TIMES_H, "Lu177", "trapezoid", quantity="activity"))
    voxel_mL = 2.0 * 2.0 * 3.0 / 1000.0
    total_MBq = [float(sitk.GetArrayViewFromImage(im).astype(np.float64).sum()) * voxel_mL * 1e-6 for im in images]
    assert rows[0].values == pytest.approx(total_MBq, rel=1e-6) and rows[0].value_unit == "MBq"
    assert rows[0].unit == "MBq·h"
    assert rows[0].integral == pytest.approx(integrate_trapezoid(TIMES_H, total_MBq, LAMBDA_LU177).integral[0],
                                             rel=1e-6)
    assert rows[0].voxel_map_mean == pytest.approx(rows[0].integral, rel=1e-5)
