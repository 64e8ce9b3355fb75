"""The error floor of Deep-dose's uncertainty map (DeepDoseLib.deepdose.uncertainty_floor): measured without a
noiseless reference, per material class, and added to the map written beside the dose rate."""
from __future__ import annotations

import numpy as np
import pytest

from deepdose_helpers import local_kernels, net

from DeepDoseLib.deepdose.model_io import export_model, load_model
from DeepDoseLib.deepdose.safety import safe_deepdose
from DeepDoseLib.deepdose.uncertainty_floor import card_floors, floor_map, measure_floors
from DeepDoseLib.deepdose_rule import SafetyRule

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # Testing/conftest.py


def _synthetic_case(seed, shape=(30, 40, 40), method_error=(0.08, 0.03), mc_noise=0.10, map_u=0.02):
    """Truth, a method with a relative error of known rms per class (lung, soft tissue), a noisy MC reference with
    its σ, and a map that states only ``map_u``."""
    rng = np.random.default_rng(seed)
    rho = np.full(shape, 1.04, np.float32)
    rho[:, :, :12] = 0.26
    truth = np.full(shape, 10.0, np.float32)
    err = np.where(rho < 0.6, method_error[0], method_error[1])
    dose = truth * (1 + err * rng.standard_normal(shape))
    sigma = mc_noise * truth
    ref = truth + sigma * rng.standard_normal(shape)
    return "c", dose.astype(np.float32), np.full(shape, map_u, np.float32), ref.astype(np.float32), sigma, rho


def test_floor_is_what_the_map_misses_and_covers_a_noiseless_check():
    """The method errs by 8 % rms in lung and 3 % in soft tissue and its map says 2 %: against a nearly noiseless
    reference the floors are ≈ sqrt(error² − map²) (the 95 % quantile of a normal error is 1.96σ, the criterion
    2σ), the mean-of-squares estimate agrees, classes without voxels get the largest floor, and the map with the
    floors covers an independent noiseless check in ≈ 95 % of the voxels, where it covered far less."""
    section = measure_floors([_synthetic_case(1, mc_noise=0.002)])
    f = section["floors"]
    assert f["lung"] == pytest.approx(np.sqrt(0.08 ** 2 - 0.02 ** 2), rel=0.08)
    assert f["soft_tissue"] == pytest.approx(np.sqrt(0.03 ** 2 - 0.02 ** 2), rel=0.25)
    assert section["rms_floor"]["lung"] == pytest.approx(np.sqrt(0.08 ** 2 - 0.02 ** 2), rel=0.05)
    assert f["bone"] == f["adipose"] == max(f.values()) and section["measured"] == ["lung", "soft_tissue"]
    _, dose, u, _, _, rho = _synthetic_case(2)
    truth = np.full(dose.shape, 10.0)
    before = float(np.mean(np.abs(dose - truth) <= 2 * u * dose))
    with_floor = np.sqrt(u ** 2 + floor_map(rho, f) ** 2)
    after = float(np.mean(np.abs(dose - truth) <= 2 * with_floor * dose))
    assert before < 0.75
    assert 0.93 < after < 0.97


def test_with_a_noisy_reference_the_floor_meets_the_criterion_on_its_own_cases():
    """10 % reference noise: the criterion (with σ_MC) then holds in ≥ 95 % of each class's voxels after, not
    before; the floors come out smaller than against a clean reference (the card says so: a lower bound)."""
    section = measure_floors([_synthetic_case(1, mc_noise=0.10)])
    assert section["coverage_2sigma_pct_before"]["c"] < 95.0 <= section["coverage_2sigma_pct_after"]["c"]
    clean = measure_floors([_synthetic_case(1, mc_noise=0.002)])
    assert 0 < section["floors"]["lung"] < clean["floors"]["lung"]


def test_no_floor_where_the_map_already_explains_the_error():
    section = measure_floors([_synthetic_case(3, method_error=(0.02, 0.02), map_u=0.05)])
    assert all(v == 0.0 for v in section["floors"].values())


def test_safe_deepdose_adds_the_card_floor_to_the_map(tmp_path):
    card = {"nuclide": "Ga68", "voxel_size_mm": [4.0, 4.0, 4.0], "architecture": {"base_channels": 4},
            "grid": {"tile_size_voxels": 16, "inference_tile_voxels": 32, "margin_voxels": 8, "overlap_voxels": 4,
                     "size_multiple": 2},
            "uncertainty_floor": {"floors": {"lung": 0.2, "adipose": 0.05, "soft_tissue": 0.05, "bone": 0.05}}}
    model = load_model(export_model(net(True), local_kernels(photon_fraction=0.3), tmp_path / "m.pt", card))
    assert card_floors(model.card)["lung"] == 0.2
    rng = np.random.default_rng(0)
    rho = np.full((20, 24, 28), 1.0, np.float32)
    rho[:, :, :9] = 0.3
    a = (1e3 * (1 + rng.random(rho.shape))).astype(np.float32)
    rule = SafetyRule(flips=1, max_relative_uncertainty=10.0)
    with_floor = safe_deepdose(a, rho, (4.0,) * 3, model, rule)
    without = safe_deepdose(a, rho, (4.0,) * 3, model, rule, error_floor=False)
    np.testing.assert_array_equal(with_floor.dose_rate_mGy_per_h, without.dose_rate_mGy_per_h)
    expected = np.sqrt(without.relative_uncertainty ** 2 + floor_map(rho, card_floors(model.card)) ** 2)
    np.testing.assert_allclose(with_floor.relative_uncertainty, expected, rtol=1e-5)
    assert with_floor.relative_uncertainty[rho < 0.6].min() >= 0.2 - 1e-6
    assert any("error floor" in n and "lung 20.0 %" in n for n in with_floor.notes)
