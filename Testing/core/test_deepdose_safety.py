"""Deep-dose never silently worse than its physics baseline: bounded correction, mirrored-pass uncertainty,
fallback to the density-scaled VSV baseline out of the training range (DeepDoseLib.deepdose.safety)."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from deepdose_helpers import local_kernels, net

from DeepDoseLib.deepdose.inference import deepdose_dose_rate
from DeepDoseLib.deepdose.model_io import export_model, load_model
from DeepDoseLib.deepdose.safety import safe_deepdose
from DeepDoseLib.deepdose_rule import SafetyRule
from DeepDoseLib.methods.photon_heterogeneity import primary_excess_dose_rate, primary_terms
from DeepDoseLib.methods.scaled_vsv import scaled_vsv_dose_rate
from DeepDoseLib.nuclides import get_nuclide


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # Testing/conftest.py


def _card():
    return {"nuclide": "Ga68", "voxel_size_mm": [4.0, 4.0, 4.0], "architecture": {"base_channels": 4},
            "grid": {"tile_size_voxels": 16, "inference_tile_voxels": 32, "margin_voxels": 8, "overlap_voxels": 4,
                     "size_multiple": 2}}


@pytest.fixture(scope="module")
def random_model(tmp_path_factory):
    """A tiny U-Net with a random head: corrections far from the baseline, not mirror-symmetric."""
    path = tmp_path_factory.mktemp("m") / "m.pt"
    return load_model(export_model(net(True), local_kernels(photon_fraction=0.3), path, _card()))


def _body(shape, seed=0):
    rng = np.random.default_rng(seed)
    rho = np.full(shape, 1.0, np.float32)
    rho[:, :, : shape[2] // 3] = 0.3  # a "lung"
    a = (1e3 * (1 + rng.random(shape))).astype(np.float32)
    a[:, :, : shape[2] // 3] = 0.0
    return a, rho


def test_baseline_is_the_density_scaled_vsv_and_the_bound_holds(random_model):
    a, rho = _body((20, 24, 28))
    a[8:12, 10:14, 15:19] = 2e4  # a small lesion
    b = 0.3
    # the bound is relative to B; "none" keeps the (inactive-lung) fallback at B too, so that B = 0 stays 0
    rule = SafetyRule(max_correction=b, flips=0, fallback_photon_heterogeneity="none")
    result = safe_deepdose(a, rho, (4.0, 4.0, 4.0), random_model, rule)
    assert np.array_equal(result.physics_mGy_per_h, result.baseline_mGy_per_h)
    # the returned baseline is the physics method itself, computed independently
    np.testing.assert_allclose(result.baseline_mGy_per_h, scaled_vsv_dose_rate(a, rho, random_model.kernels),
                               rtol=2e-4, atol=1e-6 * float(result.baseline_mGy_per_h.max()))
    # the unflipped pass is the plain Deep-dose inference
    np.testing.assert_allclose(result.network_mGy_per_h, deepdose_dose_rate(a, rho, (4.0, 4.0, 4.0), random_model),
                               rtol=1e-5, atol=1e-7)
    pos = result.baseline_mGy_per_h > 0
    base = result.baseline_mGy_per_h[pos]
    ratio_net = result.network_mGy_per_h[pos] / base
    assert (np.abs(ratio_net - 1) > b).any(), "the random network must exceed the bound somewhere for this test"
    ratio = result.dose_rate_mGy_per_h[pos] / base
    assert ratio.min() >= 1 - b - 1e-5 and ratio.max() <= 1 + b + 1e-5
    assert (result.dose_rate_mGy_per_h[~pos] == 0).all()
    inside = np.zeros(pos.shape, bool)
    inside[pos] = np.abs(ratio_net - 1) < b - 1e-3
    np.testing.assert_allclose(result.dose_rate_mGy_per_h[inside & ~result.fallback],
                               result.network_mGy_per_h[inside & ~result.fallback], rtol=1e-5)
    assert any("bounded" in n for n in result.notes)


def test_fallback_on_a_100_mm_lesion_at_1000x_contrast(random_model):
    shape = (40, 40, 48)
    a = np.full(shape, 1e3, np.float32)
    rho = np.ones(shape, np.float32)
    z, y, x = np.ogrid[:40, :40, :48]
    lesion = ((z - 20) ** 2 + (y - 20) ** 2 + (x - 18) ** 2) * 16.0 <= 50.0 ** 2  # 100 mm diameter, 524 mL
    a[lesion] = 1e6
    # the input-range rule alone: the tile-scale rule would also send the 1000× weaker body back (tested below)
    rule = SafetyRule(max_correction=0.5, flips=0, min_tile_scale_fraction=0.0)
    result = safe_deepdose(a, rho, (4.0, 4.0, 4.0), random_model, rule)
    assert result.fallback[lesion].all()
    assert np.array_equal(result.dose_rate_mGy_per_h[result.fallback], result.physics_mGy_per_h[result.fallback])
    # uniform soft tissue: the photon heterogeneity correction is exactly zero, the fallback is B itself
    assert np.array_equal(result.physics_mGy_per_h, result.baseline_mGy_per_h)
    # elsewhere (beyond the lesion + margin) the network still acts
    assert (~result.fallback).any()
    far = ~result.fallback
    assert not np.allclose(result.dose_rate_mGy_per_h[far], result.baseline_mGy_per_h[far], rtol=1e-3)
    text = " ".join(result.notes)
    assert "1000×" in text and "hot region" in text and "fell back" in text and "% of the activity" in text


def test_lung_activity_ratio_and_the_training_range():
    """The lung activity ratio is the lung median over the median active body voxel; the card's training range
    turns it into a flag of the lung voxels only when the lungs are less active than in every training case."""
    from DeepDoseLib.deepdose.safety import input_range_flags
    from DeepDoseLib.deepdose.training_range import lung_activity_ratio, training_range

    a, rho = _body((20, 24, 28))  # inactive lungs: ratio 0
    spacing = (4.0, 4.0, 4.0)
    assert lung_activity_ratio(a, rho, spacing) == 0.0
    warm = a.copy()
    warm[rho < 0.6] = 0.5 * float(np.median(a[rho >= 0.6]))
    expected = float(np.median(warm[rho < 0.6])) / float(np.median(warm[warm > 0]))  # the body median: lungs too
    assert 0.4 < expected < 0.7 and lung_activity_ratio(warm, rho, spacing) == pytest.approx(expected, rel=1e-6)
    assert lung_activity_ratio(a, np.ones_like(rho), spacing) is None  # no lung

    class Case:  # a training case as training_range reads it
        def __init__(self, activity, density):
            self.activity_Bq_per_mL, self.density_g_per_cm3, self.spacing_mm = activity, density, spacing

    seen = training_range([Case(warm, rho), Case(2 * warm, rho), Case(a[:, :, 10:], rho[:, :, 10:])])  # no lung
    assert seen["lung_activity_ratio_min"] == pytest.approx(expected, rel=1e-6) and seen["cases_with_lungs"] == 2
    rule = SafetyRule()
    flags, reasons = input_range_flags(a, rho, spacing, rule, seen)
    assert np.array_equal(flags, rho < 0.6) and "less than in any training case" in reasons[0]
    for training in (None, {}, {"lung_activity_ratio_min": 0.0}, seen):
        flags, reasons = input_range_flags(warm if training is seen else a, rho, spacing, rule, training)
        assert not flags.any() and not reasons


def test_inactive_lungs_outside_the_training_range_fall_back(tmp_path):
    """A model trained only on cases with active lungs: a case with inactive lungs gets the baseline in its lungs
    (grown by the margin) and a note; the rest stays the network's."""
    card = dict(_card(), training_range={"lung_activity_ratio_min": 0.4, "cases_with_lungs": 3})
    model = load_model(export_model(net(True), local_kernels(photon_fraction=0.3), tmp_path / "m.pt", card))
    a, rho = _body((24, 24, 40))
    result = safe_deepdose(a, rho, (4.0, 4.0, 4.0), model, SafetyRule(max_correction=0.5, flips=0))
    lungs = rho < 0.6
    assert result.fallback[lungs].all() and (~result.fallback).any()
    assert np.array_equal(result.dose_rate_mGy_per_h[lungs], result.physics_mGy_per_h[lungs])
    # the fallback physics: B plus the unscattered photons that cross the lung by its density (more dose, never less)
    excess = primary_excess_dose_rate(a, rho, (4.0, 4.0, 4.0), primary_terms(get_nuclide(model.kernels.nuclide)))
    np.testing.assert_allclose(result.physics_mGy_per_h, np.maximum(result.baseline_mGy_per_h + excess, 0), rtol=1e-6)
    assert (excess[lungs] > 0).all() and any("unscattered photons" in n for n in result.notes)
    far = ~result.fallback
    assert not np.allclose(result.dose_rate_mGy_per_h[far], result.baseline_mGy_per_h[far], rtol=1e-3)
    assert any("lungs" in n and "training case" in n for n in result.notes)


def test_one_mm_grid_falls_back_to_the_baseline_everywhere(random_model):
    shape = (24, 28, 28)
    a, rho = _body(shape)
    result = safe_deepdose(a, rho, (1.0, 1.0, 1.0), random_model)
    assert result.fallback.all() and result.relative_uncertainty is None
    assert np.array_equal(result.dose_rate_mGy_per_h, result.physics_mGy_per_h)
    assert any("voxel size 1×1×1 mm outside" in n for n in result.notes)


def test_mirrored_passes_give_the_uncertainty_and_its_fallback(random_model):
    a, rho = _body((20, 24, 28), seed=2)
    result = safe_deepdose(a, rho, (4.0, 4.0, 4.0), random_model, SafetyRule(flips=3, max_relative_uncertainty=10.0,
                                                                             min_tile_scale_fraction=0.0,
                                                                             interface_sigma=0.0))
    u = result.network_spread
    assert u is not None and u.shape == a.shape and np.isfinite(u).all() and u.max() > 1e-3
    assert not result.fallback.any()
    # the written map: the spread combined with half the network-baseline difference, relative to the output
    u_d = result.relative_uncertainty
    hot = result.dose_rate_mGy_per_h > 0.1 * result.dose_rate_mGy_per_h.max()
    half_gap = np.zeros_like(u_d)
    half_gap[hot] = (np.abs(result.network_mGy_per_h - result.baseline_mGy_per_h)[hot]
                     / (2 * result.dose_rate_mGy_per_h[hot]))
    assert np.all(u_d[hot] >= u[hot] - 1e-6) and np.all(u_d[hot] >= half_gap[hot] - 1e-5)
    np.testing.assert_allclose(u_d[hot], np.sqrt(u[hot] ** 2 + half_gap[hot] ** 2), rtol=1e-4, atol=1e-6)
    assert float(np.median(u_d[hot])) > float(np.median(u[hot]))  # a random network disagrees with the physics
    # a mirror-symmetric input: the flips see the same volume but for the tiling (its padding is not symmetric),
    # so the spread is that of the tile placement alone, far below the heterogeneous case's
    sym_a = np.full((20, 24, 28), 1e4, np.float32)
    sym = safe_deepdose(sym_a, np.ones_like(sym_a), (4.0, 4.0, 4.0), random_model, SafetyRule(flips=7))
    assert float(sym.network_spread.max()) < 0.01 and float(sym.network_spread.max()) < 0.2 * float(u.max())
    # an uncertainty threshold of 0 sends every voxel above 1 % of the maximum back to the baseline
    strict = safe_deepdose(a, rho, (4.0, 4.0, 4.0), random_model, SafetyRule(flips=3, max_relative_uncertainty=0.0))
    hot = strict.network_mGy_per_h > 0.01 * strict.network_mGy_per_h.max()
    assert strict.fallback[hot & (strict.network_spread > 0)].all()
    assert np.array_equal(strict.dose_rate_mGy_per_h[strict.fallback], strict.physics_mGy_per_h[strict.fallback])


def test_low_uptake_far_below_its_tile_scale_falls_back(random_model):
    """Tissue whose baseline is below min_tile_scale_fraction of its tile's scale s·k is the baseline exactly; the
    scale is the network's own (max of activity·k and baseline over the tile)."""
    shape = (14, 14, 14)  # one tile: 14 + 2·8 margin voxels fit the 32-voxel inference tile
    a = np.full(shape, 1e3, np.float32)
    rho = np.ones(shape, np.float32)
    a[5:9, 5:9, 5:9] = 2e5  # 200×: inside the activity-contrast range (300×), 4 mL (no large hot region)
    free = SafetyRule(max_correction=0.5, flips=0, min_tile_scale_fraction=0.0)
    assert not safe_deepdose(a, rho, (4.0, 4.0, 4.0), random_model, free).fallback.any()
    rule = SafetyRule(max_correction=0.5, flips=0)
    assert rule.min_tile_scale_fraction == 0.01
    result = safe_deepdose(a, rho, (4.0, 4.0, 4.0), random_model, rule)
    base = result.baseline_mGy_per_h
    scale = max(float(a.max()) * random_model.dose_per_activity, float(base.max()))
    expected = base < rule.min_tile_scale_fraction * scale
    assert expected.any() and (~expected).any()
    np.testing.assert_array_equal(result.fallback, expected)
    np.testing.assert_array_equal(result.dose_rate_mGy_per_h[expected], base[expected])
    assert not np.array_equal(result.dose_rate_mGy_per_h[~expected], base[~expected])  # the network acts near it
    assert any("below 1 % of their tiles' scale" in n for n in result.notes)
    with pytest.raises(ValueError):
        SafetyRule(min_tile_scale_fraction=1.0)


def test_resampled_input_keeps_the_fallback_exact(random_model):
    shape = (30, 32, 36)  # 3 mm voxels
    a = np.full(shape, 1e3, np.float32)
    rho = np.ones(shape, np.float32)
    a[10:22, 10:22, 8:20] = 1e6  # 1000×, 93 mL
    result = safe_deepdose(a, rho, (3.0, 3.0, 3.0), random_model, SafetyRule(flips=1))
    assert result.dose_rate_mGy_per_h.shape == shape
    assert result.fallback[10:22, 10:22, 8:20].all()
    assert np.array_equal(result.dose_rate_mGy_per_h[result.fallback], result.baseline_mGy_per_h[result.fallback])
    ratio = result.dose_rate_mGy_per_h / np.maximum(result.baseline_mGy_per_h, 1e-12)
    assert ratio.max() <= 1.3 + 1e-4 and ratio.min() >= 0.7 - 1e-4


def test_command_line_writes_the_deepdose_uncertainty_map(tmp_path):
    from DeepDoseLib.cli import main

    path = export_model(net(True), local_kernels(0.3), tmp_path / "m.pt", _card())
    shape = (20, 18, 22)
    ct = sitk.GetImageFromArray(np.zeros(shape, np.float32))
    ct.SetSpacing((4.0, 4.0, 4.0))
    pet_a = np.full(shape, 1e4, np.float32)
    pet_a[5:9, 6:10, 4:8] = 5e4
    pet = sitk.GetImageFromArray(pet_a)
    pet.CopyInformation(ct)
    sitk.WriteImage(ct, str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(pet, str(tmp_path / "pet.nii.gz"))
    out, unc = tmp_path / "dose.nii.gz", tmp_path / "u.nii.gz"
    assert main(["dose", "--ct", str(tmp_path / "ct.nii.gz"), "--pet", str(tmp_path / "pet.nii.gz"), "--nuclide",
                 "Ga68", "--method", "deepdose", "--model", str(path), "--device", "cpu", "--out", str(out),
                 "--uncertainty", str(unc), "--deepdose-flips", "2", "--quiet"]) == 0
    u = sitk.GetArrayFromImage(sitk.ReadImage(str(unc)))
    assert u.shape == shape and np.isfinite(u).all() and u.max() > 0
    assert sitk.ReadImage(str(unc)).GetSpacing() == (4.0, 4.0, 4.0)


def test_native_baseline_grid_multiplies_the_native_physics(tmp_path):
    from dataclasses import replace

    model = load_model(export_model(net(False), local_kernels(0.3), tmp_path / "m.pt", _card()))
    native = replace(local_kernels(0.3), spacing_mm=(3.0, 3.0, 3.0))  # local deposition: K·A/ρ at any voxel size
    native = replace(native, charged=tuple(k * (0.064 / 0.027) for k in native.charged),
                     photon=native.photon * (0.064 / 0.027))
    shape = (30, 32, 36)
    a, rho = _body(shape, seed=3)
    a[12:15, 14:17, 20:23] = 4e4  # a 0.7 mL lesion: on the 4 mm grid its peak would be blurred
    result = safe_deepdose(a, rho, (3.0, 3.0, 3.0), model, SafetyRule(flips=0), baseline_grid="native",
                           native_kernels=native)
    # the zero-head network returns its baseline: factor 1, so the output is the native-grid physics itself (and in
    # the fallback voxels, the inactive lung, that physics with the photon heterogeneity correction)
    expected = np.where(result.fallback, scaled_vsv_dose_rate(a, rho, native, photon_heterogeneity="primary"),
                        scaled_vsv_dose_rate(a, rho, native))
    np.testing.assert_allclose(result.dose_rate_mGy_per_h, expected, rtol=1e-4,
                               atol=1e-6 * float(result.dose_rate_mGy_per_h.max()))
    lesion = result.dose_rate_mGy_per_h[12:15, 14:17, 20:23].mean()
    resampled = safe_deepdose(a, rho, (3.0, 3.0, 3.0), model, SafetyRule(flips=0)).dose_rate_mGy_per_h
    assert resampled[12:15, 14:17, 20:23].mean() < 0.9 * lesion  # the model-grid round trip loses the peak


def test_a_model_with_an_older_baseline_says_so(random_model):
    """A model whose baseline has one photon factor per material (no energy-band bone kernels, as the bundled Lu-177
    model) notes that the vsv_scaled method's defaults may be closer to MC in bone; one with the bands does not."""
    from dataclasses import replace

    from DeepDoseLib.deepdose.safety import older_baseline_note

    assert not random_model.kernels.photon_material_kernels
    a, rho = _body((20, 24, 28))
    result = safe_deepdose(a, rho, (4.0, 4.0, 4.0), random_model, SafetyRule(flips=0))
    assert any("predates the energy-band bone photon kernels" in n for n in result.notes)
    banded = replace(random_model.kernels, photon_material_kernels=((4, random_model.kernels.photon),))
    assert older_baseline_note(banded) is None


def test_uncertainty_map_takes_the_charged_dose_that_crossed_a_density_interface(tmp_path):
    """u_D² gains (c·X/D)², X the baseline's charged-particle dose rate delivered across a density interface
    (lung beside hot tissue here), and nothing where X = 0."""
    from deepdose_helpers import spreading_kernels

    from DeepDoseLib.methods.scaled_vsv import charged_dose_rates

    kernels = spreading_kernels()
    model = load_model(export_model(net(True), kernels, tmp_path / "m.pt", _card()))
    a, rho = _body((20, 24, 28), seed=3)
    a[:, :, 7:9] = 3e3  # some activity in the lung next to the tissue: crossings both ways
    keep = dict(flips=1, max_relative_uncertainty=10.0, min_tile_scale_fraction=0.0)
    without = safe_deepdose(a, rho, (4.0, 4.0, 4.0), model, SafetyRule(interface_sigma=0.0, **keep))
    result = safe_deepdose(a, rho, (4.0, 4.0, 4.0), model, SafetyRule(interface_sigma=0.5, **keep))
    assert not result.fallback.any() and np.array_equal(result.dose_rate_mGy_per_h, without.dose_rate_mGy_per_h)
    _, across = charged_dose_rates(a, rho, kernels)
    dose = result.dose_rate_mGy_per_h
    crossed = (across > 1e-3 * dose) & (dose > 0)
    assert crossed.sum() > 100 and (~crossed & (dose > 0)).sum() > 100
    term = np.zeros_like(dose)
    term[crossed] = 0.5 * across[crossed] / dose[crossed]
    np.testing.assert_allclose(result.relative_uncertainty[crossed] ** 2,
                               without.relative_uncertainty[crossed] ** 2 + term[crossed] ** 2, rtol=1e-3, atol=1e-7)
    np.testing.assert_allclose(result.relative_uncertainty[~crossed], without.relative_uncertainty[~crossed],
                               rtol=1e-3, atol=1e-6)
    assert any("crossed a density interface" in n for n in result.notes)
    with pytest.raises(ValueError):
        SafetyRule(interface_sigma=-0.1)
