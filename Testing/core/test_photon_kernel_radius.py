"""The extent of vsv_scaled's soft-tissue photon kernel: a 150 mm kernel leaves out the photon cross-fire
from beyond 15 cm, which a large body with widespread uptake receives; 300 mm keeps it. Checked against the
Monte Carlo of the same body (physics against physics), and the grid limit refused before any work."""
from __future__ import annotations

import numpy as np
import pytest

from DeepDoseLib.errors import DeepDoseInputError
from DeepDoseLib.mc import run_monte_carlo
from DeepDoseLib.methods.scaled_vsv import check_photon_radius, compute_scaled_kernels, scaled_vsv_dose_rate
from DeepDoseLib.tissue import materials


@pytest.mark.slow  # ~15 s: two kernel sets at 10 mm voxels and one MC run
def test_wider_photon_kernel_recovers_the_cross_fire_of_a_large_body():
    spacing = (10.0, 10.0, 10.0)
    shape = (50, 30, 36)  # a 36 × 30 × 50 cm soft-tissue body, uniform Ga-68
    activity = np.full(shape, 1e4, np.float32)
    density = np.ones(shape, np.float32)
    narrow = compute_scaled_kernels("Ga68", spacing, n_decays=20_000, device="cpu", use_cache=False)
    wide = compute_scaled_kernels("Ga68", spacing, n_decays=20_000, device="cpu", use_cache=False,
                                  photon_radius_mm=300.0)
    assert narrow.photon.shape == (31, 31, 31) and wide.photon.shape == (61, 61, 61)
    mc = run_monte_carlo(activity, density, np.full(shape, materials()["soft_tissue"].label, np.uint8), spacing,
                         "Ga68", 400_000, seed=3)
    centre = (slice(20, 30), slice(10, 20), slice(13, 23))
    ref = float(mc.dose_rate_mGy_per_h[centre].mean())
    d, u = mc.dose_rate_mGy_per_h[centre].astype(np.float64), mc.relative_uncertainty[centre].astype(np.float64)
    assert float(np.sqrt(np.sum((u * d) ** 2)) / d.sum()) < 0.01  # the region mean to < 1 % (voxels independent)
    err = {name: float(scaled_vsv_dose_rate(activity, density, k, device="cpu", mode="source")[centre].mean()) / ref - 1
           for name, k in (("150 mm", narrow), ("300 mm", wide))}
    assert err["150 mm"] < -0.025, err  # measured −4.1 %: the photons from beyond 15 cm are missing
    assert abs(err["300 mm"]) < 0.015, err  # measured −0.2 %


def test_every_default_photon_radius_is_the_library_kernel_extent():
    """The front-end option (kept free of the heavy kernel module) and the training default follow the kernels'."""
    from DeepDoseLib.deepdose.training_config import TrainConfig
    from DeepDoseLib.dose_methods.vsv_scaled import ScaledVSVOptions
    from DeepDoseLib.methods.vsv import DEFAULT_KERNEL_RADIUS_mm

    from DeepDoseLib.cli import build_parser

    train = build_parser().parse_args(["train", "--data", "d", "--out", "m.pt"])
    assert ScaledVSVOptions().photon_radius_mm == TrainConfig(nuclide="Ga68").photon_radius_mm == DEFAULT_KERNEL_RADIUS_mm
    assert train.photon_radius_mm == DEFAULT_KERNEL_RADIUS_mm


def test_photon_radius_grid_limit_is_refused_before_any_work():
    check_photon_radius(300.0, (4.0, 4.0, 4.0))  # 151³ voxels
    with pytest.raises(DeepDoseInputError, match="limit"):
        check_photon_radius(300.0, (2.0, 2.0, 2.0))  # 301³ = 27 M voxels
    with pytest.raises(DeepDoseInputError, match="positive"):
        check_photon_radius(float("nan"), (4.0, 4.0, 4.0))
    with pytest.raises(DeepDoseInputError, match="limit"):
        compute_scaled_kernels("Ga68", (2.0, 2.0, 2.0), photon_radius_mm=300.0, use_cache=False)


def test_deepdose_native_baseline_uses_the_models_photon_radius(tmp_path):
    """The native-grid baseline is built with the photon kernel extent the model was trained with (its card)."""
    import json

    from DeepDoseLib.deepdose.model_io import bundled_model_path
    from DeepDoseLib.dose_methods.deepdose import baseline_photon_radius_mm

    card = json.loads(bundled_model_path("Ga68").with_suffix(".json").read_text())
    assert baseline_photon_radius_mm(card) == 300.0  # the bundled Ga-68 model learned on the 300 mm baseline
    del card["training"]["config"]["photon_radius_mm"]
    assert baseline_photon_radius_mm(card) == 150.0  # a card made before the setting: the 150 mm default
    assert baseline_photon_radius_mm({}) == 150.0


def test_train_refuses_a_bad_photon_radius_before_any_work(tmp_path):
    from conftest import run_deepdose

    proc = run_deepdose("train", "--data", tmp_path / "none", "--nuclide", "Ga68", "--photon-radius-mm", "1000",
                        "--out", tmp_path / "m.pt", check=False)
    assert proc.returncode == 2 and "--photon-radius-mm" in proc.stderr
    assert not (tmp_path / "m.pt").exists()
