"""Deep-dose U-Net: exact activity linearity, residual start, model files (hash, refusal), training."""
from __future__ import annotations

import json
import zipfile
from dataclasses import replace

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from deepdose_helpers import K, banded_kernels, card, local_kernels, random_inputs
from deepdose_helpers import net as _net

from DeepDoseLib.deepdose.data import find_cases, load_case, write_case
from DeepDoseLib.deepdose.model_io import card_path, export_model, load_model, reexport_model
from DeepDoseLib.deepdose.patches import PreparedCase, augment, sample_batch
from DeepDoseLib.deepdose.unet import receptive_half_width_voxels
from DeepDoseLib.errors import DeepDoseInputError


def tiny_model(depth: int = 2, seed: int = 0, head: bool = True):
    return _net(head, depth, seed)


def test_doubling_the_activity_doubles_the_output_exactly():
    model, x = tiny_model(), random_inputs()
    doubled = x.clone()
    doubled[:, [0, 2, 3]] *= 2  # activity and the baseline doses are linear in the activity
    with torch.no_grad():
        y, y2 = model(x), model(doubled)
    assert y.abs().max() > 0
    # bit-exact: the per-patch scale absorbs the factor, and ×2 is exact in binary floating point
    assert torch.equal(y2, 2 * y)
    scaled = x.clone()
    scaled[:, [0, 2, 3]] *= 3.7
    with torch.no_grad():  # any factor: equal up to float32 rounding (1e-7 relative, amplified by the
        # network's cancellations near zero output: bound 1e-5 of the patch maximum)
        torch.testing.assert_close(model(scaled), 3.7 * y, rtol=1e-5, atol=1e-5 * float(3.7 * y.abs().max()))


def test_zero_activity_gives_zero_and_untrained_model_is_the_baseline():
    x = random_inputs()
    x[0, [0, 2, 3]] = 0
    with torch.no_grad():
        assert torch.count_nonzero(tiny_model()(x)[0]) == 0
        untrained = tiny_model(head=False)(x)
    torch.testing.assert_close(untrained, x[:, 2:3] + x[:, 3:4], rtol=1e-6, atol=0)


def test_receptive_field():
    assert receptive_half_width_voxels(2) == 8  # (2 + 4) down, 2 up
    assert receptive_half_width_voxels(3) == 20


def test_export_load_round_trip_and_card(tmp_path):
    model, x = tiny_model(), random_inputs()
    kernels = local_kernels(0.3)
    path = export_model(model, kernels, tmp_path / "m.pt", card())
    loaded = load_model(path)
    meta = json.loads(card_path(path).read_text())
    assert meta["weights_sha256"] == loaded.card["weights_sha256"] and len(meta["weights_sha256"]) == 64
    assert meta["deepdose_version"] and meta["nuclide"] == "Ga68"
    # the baseline kernels travel inside the hashed weights file
    assert loaded.kernels.densities_g_per_cm3 == kernels.densities_g_per_cm3
    assert loaded.kernels.spacing_mm == (4.0, 4.0, 4.0)
    assert loaded.kernels.photon_factors == kernels.photon_factors
    for got, want in zip(loaded.kernels.charged + (loaded.kernels.photon,), kernels.charged + (kernels.photon,)):
        np.testing.assert_array_equal(got, want)
    with torch.no_grad():
        assert torch.equal(loaded.module(x), model(x))


@pytest.mark.parametrize("fmt,suffix", [("torchscript", ".pt")])  # .pt2 (torch.export) is refused: test_model_security
def test_photon_band_and_scatter_medium_kernels_travel_in_the_model(tmp_path, fmt, suffix):
    kernels = replace(banded_kernels(), scatter_medium=(0.27, 1.23), photon_scatter_fractions=(0.29,) * 4 + (0.39, 0.29))
    loaded = load_model(export_model(tiny_model(), kernels, tmp_path / f"m{suffix}", card(), fmt=fmt))
    assert loaded.kernels.scatter_medium == (0.27, 1.23)
    assert loaded.kernels.photon_scatter_fractions == kernels.photon_scatter_fractions
    assert loaded.kernels.photon_band_edges_MeV == (0.1,)
    assert loaded.kernels.photon_band_factors == ((4, (3.0, 0.9)),)
    assert [label for label, _ in loaded.kernels.photon_material_kernels] == [4]
    np.testing.assert_array_equal(loaded.kernels.photon_material_kernels[0][1], kernels.photon_material_kernels[0][1])
    # a model without bands loads without them
    plain = load_model(export_model(tiny_model(), local_kernels(0.3), tmp_path / f"p{suffix}", card(), fmt=fmt))
    assert plain.kernels.photon_material_kernels == () and plain.kernels.photon_band_edges_MeV == ()
    assert plain.kernels.scatter_medium == () and plain.kernels.photon_scatter_fractions == ()


def _scripted_code(path) -> str:
    """The TorchScript source stored in a model archive (its ``code/`` entries)."""
    with zipfile.ZipFile(path) as archive:
        return "\n".join(archive.read(n).decode() for n in archive.namelist() if "/code/" in n and n.endswith(".py"))


def test_reexport_keeps_the_weights_and_drops_interpolate(tmp_path):
    """Models scripted with ``nn.Upsample`` carry the body of ``F.interpolate``, which names every resampling
    op of the torch that saved them (torch 2.13's Lanczos op made 2.13 models unloadable in torch 2.11).
    Re-exporting such a model with the current U-Net gives the same outputs and no ``interpolate``."""
    model, x = tiny_model(), random_inputs()
    for stage in model.upsample:  # the U-Net as bundled before: nn.Upsample in each up-step
        stage[0] = torch.nn.Upsample(scale_factor=2.0, mode="nearest")
    meta = dict(card(), architecture={"base_channels": 4, "depth": 2})
    old = export_model(model, local_kernels(0.3), tmp_path / "old.pt", meta)
    assert "interpolate" in _scripted_code(old)
    new = reexport_model(old, tmp_path / "new.pt")
    assert "interpolate" not in _scripted_code(new)
    loaded = load_model(new)
    assert loaded.card["reexported_from"]["weights_sha256"] == load_model(old).card["weights_sha256"]
    assert loaded.card["weights_sha256"] != loaded.card["reexported_from"]["weights_sha256"]
    np.testing.assert_array_equal(loaded.kernels.photon, local_kernels(0.3).photon)
    with torch.no_grad():
        assert torch.equal(loaded.module(x), model(x))


def test_upsampling_keeps_the_channels_last_layout_and_the_values():
    """NearestUpsample2x equals nn.Upsample(nearest) in both memory layouts, and a channels-last input stays
    channels-last (the CPU inference layout: no reorder before the next convolution), scripted as well."""
    from DeepDoseLib.deepdose.unet import NearestUpsample2x

    x = torch.randn(2, 3, 4, 5, 6)
    expected = torch.nn.Upsample(scale_factor=2.0, mode="nearest")(x)
    for up in (NearestUpsample2x(), torch.jit.script(NearestUpsample2x())):
        plain = up(x)
        last = up(x.contiguous(memory_format=torch.channels_last_3d))
        assert torch.equal(plain, expected) and torch.equal(last, expected)
        assert plain.is_contiguous() and last.is_contiguous(memory_format=torch.channels_last_3d)


@pytest.mark.parametrize("nuclide", ["Ga68", "Lu177"])
def test_bundled_models_script_no_interpolate(nuclide):
    """Portability of the bundled files to older torch releases (see the test above)."""
    from DeepDoseLib.deepdose.model_io import BUNDLED_MODEL_DIR

    path = BUNDLED_MODEL_DIR / f"deepdose_{nuclide}.pt"
    if not path.is_file():
        pytest.skip(f"bundled {nuclide} model absent")
    assert "interpolate" not in _scripted_code(path)


def test_loader_refuses_mismatched_corrupt_and_pickled_files(tmp_path):
    path = export_model(tiny_model(), local_kernels(), tmp_path / "m.pt", card())
    old = json.loads(card_path(path).read_text())
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DeepDoseInputError, match="SHA-256"):
        load_model(path)
    # a file whose hash matches but which is not a TorchScript archive (here: an ordinary pickle,
    # which must never be unpickled) is refused as unreadable
    evil = tmp_path / "evil.pt"
    torch.save({"weights": torch.zeros(3)}, evil)
    meta = json.loads(card_path(path).read_text())
    from DeepDoseLib.deepdose.model_io import sha256_file

    meta["weights_sha256"] = sha256_file(evil)
    card_path(evil).write_text(json.dumps(meta))
    with pytest.raises(DeepDoseInputError, match="not a TorchScript archive"):
        load_model(evil)
    lonely = tmp_path / "lonely.pt"
    lonely.write_bytes(b"x")
    with pytest.raises(DeepDoseInputError, match="no model card"):
        load_model(lonely)
    card_path(lonely).write_text(json.dumps(dict(old, format="deepdose-model-card/1")))
    with pytest.raises(DeepDoseInputError, match="plain-VSV inputs; retrain"):
        load_model(lonely)


def test_augmentation_keeps_inputs_and_target_aligned():
    rng = np.random.default_rng(0)
    a = rng.random((8, 8, 8)).astype(np.float32)
    rho = 0.5 + rng.random((8, 8, 8)).astype(np.float32)
    x = np.stack([a, rho, 2 * a, 3 * a, rho + 1])
    for _ in range(20):  # target = activity: flips, rotations and scaling must keep y == x[0]
        xa, ya = augment(x, a[None].copy(), rng, (4.0, 4.0, 4.0))
        np.testing.assert_array_equal(ya[0], xa[0])
        np.testing.assert_allclose(xa[2], 2 * xa[0], rtol=1e-6)
        np.testing.assert_allclose(xa[3], 3 * xa[0], rtol=1e-6)
        np.testing.assert_array_equal(xa[4], xa[1] + 1)  # density channels are not scaled


def test_sampling_prefers_dose():
    shape = (24, 24, 24)
    a = np.zeros(shape, np.float32)
    a[4:8, 4:8, 4:8] = 1.0
    ones = np.ones(shape, np.float32)
    case = PreparedCase("c", np.stack([a, ones, a, 0 * a, ones]), a.copy(), 0, (4.0, 4.0, 4.0))
    x, _ = sample_batch([case], 400, 4, np.random.default_rng(0), augmentation=False)
    hot = (x[:, 0].reshape(400, -1).max(axis=1) > 0).mean()
    # 70 % of the draws are dose-weighted (all in the hot cube), uniform draws hit it with p ≈ 0.5 %:
    # expected 0.70, binomial SD 0.023 → 0.62–0.78 is > 3 SD wide; uniform sampling would give ~0.01
    assert 0.62 < hot < 0.78


def _toy_cases(root, n_train=2, n_val=1, size=24):
    """Cases whose 'MC' target is the local dose k·A/ρ, doubled in the ρ = 0.3 voxels (a correction
    that the local baseline k·A/ρ of :func:`local_kernels` lacks and the network must learn)."""
    for i in range(n_train + n_val):
        rng = np.random.default_rng(i)
        a = np.full((size,) * 3, 1e3, np.float32)  # background uptake: every voxel has a dose
        c = rng.integers(6, size - 6, 3)
        a[c[0] - 3:c[0] + 3, c[1] - 3:c[1] + 3, c[2] - 3:c[2] + 3] = 1e4 * (1 + rng.random())
        rho = np.where(rng.random((size,) * 3) > 0.5, 1.0, 0.3).astype(np.float32)
        grid = sitk.GetImageFromArray(a)
        grid.SetSpacing((4.0, 4.0, 4.0))
        write_case(root / f"c{i}", grid, {"activity": a, "density": rho, "materials": np.ones_like(a, np.uint8),
                                         "mc_dose_rate": K * a / rho * np.where(rho < 0.5, 2.0, 1.0)},
                   {"nuclide": "Ga68", "split": "train" if i < n_train else "val", "n_decays": 1})


@pytest.mark.slow
def test_training_is_seeded_resumable_and_improves(tmp_path):
    from DeepDoseLib.deepdose.training import TrainConfig, train

    _toy_cases(tmp_path / "data")
    assert len(find_cases(tmp_path / "data", "Ga68")) == 3 and load_case(tmp_path / "data" / "c2").split == "val"
    kernels = local_kernels()
    cfg = dict(nuclide="Ga68", base_channels=4, depth=2, patch_size=16, margin=2, batch_size=2,
               iterations_per_round=5, val_patches=4, inference_tile=24, inference_margin=4, overlap=2, patience=50,
               ema_decay=0.5)  # weight averaging: its state must survive the resume too
    full = train(tmp_path / "data", tmp_path / "full.pt", TrainConfig(max_rounds=4, **cfg), kernels_override=kernels,
                 show_progress=False)
    train(tmp_path / "data", tmp_path / "part.pt", TrainConfig(max_rounds=2, **cfg), kernels_override=kernels,
          show_progress=False)
    # resumed with a later stop (max_rounds 2 → 4): stopping criteria may change on resume, nothing else may
    resumed = train(tmp_path / "data", tmp_path / "part.pt", TrainConfig(max_rounds=4, **cfg), kernels_override=kernels,
                    show_progress=False)
    with pytest.raises(DeepDoseInputError, match="other settings"):
        train(tmp_path / "data", tmp_path / "part.pt", TrainConfig(max_rounds=5, **{**cfg, "batch_size": 3}),
              kernels_override=kernels, show_progress=False)
    a, b = load_model(full), load_model(resumed)
    x = random_inputs(1, 16)
    with torch.no_grad():  # resuming reproduces the uninterrupted run exactly (seeded RNG states saved)
        assert torch.equal(a.module(x), b.module(x))
    history = a.card["training"]["history"]
    # the target is twice the baseline in the ρ = 0.3 voxels: training must reduce the validation
    # loss from its start (the baseline)
    assert min(h["val_loss"] for h in history[1:]) < history[0]["val_loss"]
    assert "voxel_median_abs_pct" in a.card["validation"]["deepdose"]
    # a warm start (--init-from) begins exactly at the given model: with no round to train, it exports it again
    warm = train(tmp_path / "data", tmp_path / "warm.pt", TrainConfig(max_rounds=0, init_from=str(full), **cfg),
                 kernels_override=kernels, show_progress=False)
    with torch.no_grad():
        assert torch.equal(load_model(warm).module(x), a.module(x))
    assert load_model(warm).card["training"]["initial_weights_sha256"] == a.card["weights_sha256"]
    # the card names the data folders (their generator settings when `deepdose dataset` made them)
    assert a.card["training"]["datasets"] == [{"folder": "data", "config": None}]
    with pytest.raises(DeepDoseInputError, match="same network"):
        train(tmp_path / "data", tmp_path / "bad.pt", TrainConfig(max_rounds=0, init_from=str(full),
                                                                    **{**cfg, "depth": 3}),
              kernels_override=kernels, show_progress=False)


def test_evaluation_metrics_on_known_errors():
    from DeepDoseLib.deepdose.evaluation import compare

    rng = np.random.default_rng(0)
    ref = (1 + rng.random((10, 10, 10))).astype(np.float32)
    rho = np.ones_like(ref)
    rho[0, 0, 0] = 0.0012  # an air voxel with a huge dose per gram must not set the 10 % threshold
    ref[0, 0, 0] = 1e6
    labels = np.zeros(ref.shape, np.uint8)
    labels[2:5] = 1
    labels[6:9, :5] = 2
    m = compare(1.1 * ref, ref, rho, labels, {1: "liver", 2: "lesion_01_liver"}, voxel_mL=1.0)
    assert m["voxel_median_abs_pct"] == pytest.approx(10.0, rel=1e-4)
    assert m["organ:liver"] == pytest.approx(10.0, rel=1e-4)
    assert m["organ:tumour:lesion_01_liver"] == pytest.approx(10.0, rel=1e-4)  # 30 mL > 5 mL


def test_dataset_settings_record_each_folders_generator(tmp_path):
    """What a model card keeps of its training distribution: each `deepdose dataset` folder's settings."""
    from DeepDoseLib.deepdose.data import dataset_settings

    (tmp_path / "wide").mkdir()
    (tmp_path / "wide" / "dataset.json").write_text(json.dumps({"format": 1, "config": {"uptake": "wide", "n_cases": 4}}))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "dataset.json").write_text("{not json")
    assert dataset_settings([tmp_path / "wide", tmp_path / "broken", tmp_path / "plain"]) == [
        {"folder": "wide", "config": {"uptake": "wide", "n_cases": 4}}, {"folder": "broken", "config": None},
        {"folder": "plain", "config": None}]
