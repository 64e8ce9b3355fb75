"""Deep-dose U-Net: exact activity linearity, residual start, model files (hash, refusal), training."""
from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from DeepDoseLib.deepdose.data import find_cases, load_case, write_case
from DeepDoseLib.deepdose.model_io import card_path, export_model, load_model
from DeepDoseLib.deepdose.patches import PreparedCase, augment, sample_batch
from DeepDoseLib.deepdose.unet import DeepDoseUNet, receptive_half_width_voxels
from DeepDoseLib.errors import DeepDoseInputError

K = 4.25e-4  # mGy/h per Bq/mL (the order of Ga-68 in tissue)


def tiny_model(depth: int = 2, seed: int = 0, head: bool = True) -> DeepDoseUNet:
    torch.manual_seed(seed)
    model = DeepDoseUNet(K, 1.04, base_channels=4, depth=depth).eval()
    if head:  # a non-trivial network (the head starts at zero: the plain VSV)
        torch.nn.init.normal_(model.head.weight, std=0.3)
        torch.nn.init.normal_(model.head.bias, std=0.1)
    return model


def random_inputs(n: int = 2, size: int = 16, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    activity = torch.rand(n, 1, size, size, size, generator=g) * 1e5
    density = 0.2 + 1.6 * torch.rand(n, 1, size, size, size, generator=g)
    vsv = activity * K * (0.5 + torch.rand(n, 1, size, size, size, generator=g))
    return torch.cat([activity, density, vsv], 1)


def card(size: int = 16) -> dict:
    return {"nuclide": "Ga68", "voxel_size_mm": [4.0, 4.0, 4.0], "architecture": {"base_channels": 4},
            "grid": {"tile_size_voxels": size, "inference_tile_voxels": 32, "margin_voxels": 8,
                     "overlap_voxels": 4, "size_multiple": 2}}


def test_doubling_the_activity_doubles_the_output_exactly():
    model, x = tiny_model(), random_inputs()
    doubled = x.clone()
    doubled[:, 0] *= 2
    doubled[:, 2] *= 2  # the VSV channel is linear in the activity
    with torch.no_grad():
        y, y2 = model(x), model(doubled)
    assert y.abs().max() > 0
    # bit-exact: the per-patch scale absorbs the factor, and ×2 is exact in binary floating point
    assert torch.equal(y2, 2 * y)
    scaled = x.clone()
    scaled[:, 0] *= 3.7
    scaled[:, 2] *= 3.7
    with torch.no_grad():  # any factor: equal up to float32 rounding (1e-7 relative, amplified by the
        # network's cancellations near zero output: bound 1e-5 of the patch maximum)
        torch.testing.assert_close(model(scaled), 3.7 * y, rtol=1e-5, atol=1e-5 * float(3.7 * y.abs().max()))


def test_zero_activity_gives_zero_and_untrained_model_is_the_plain_vsv():
    x = random_inputs()
    x[0, 0] = 0
    x[0, 2] = 0
    with torch.no_grad():
        assert torch.count_nonzero(tiny_model()(x)[0]) == 0
        untrained = tiny_model(head=False)(x)
    torch.testing.assert_close(untrained, x[:, 2:3], rtol=1e-6, atol=0)


def test_receptive_field():
    assert receptive_half_width_voxels(2) == 8  # (2 + 4) down, 2 up
    assert receptive_half_width_voxels(3) == 20


def test_export_load_round_trip_and_card(tmp_path):
    model, x = tiny_model(), random_inputs()
    kernel = np.zeros((3, 3, 3), np.float32)
    kernel[1, 1, 1] = 1.0
    path = export_model(model, kernel, tmp_path / "m.pt", card())
    loaded = load_model(path)
    meta = json.loads(card_path(path).read_text())
    assert meta["weights_sha256"] == loaded.card["weights_sha256"] and len(meta["weights_sha256"]) == 64
    assert meta["deepdose_version"] and meta["nuclide"] == "Ga68"
    np.testing.assert_array_equal(loaded.kernel_mGy_per_h_per_Bq, kernel)
    with torch.no_grad():
        assert torch.equal(loaded.module(x), model(x))


def test_torch_export_pt2_round_trip(tmp_path):
    model, x = tiny_model(), random_inputs()
    path = export_model(model, np.ones((1, 1, 1), np.float32), tmp_path / "m.pt2", card(), fmt="export")
    loaded = load_model(path)
    assert loaded.card["weights_format"] == "export"
    with torch.no_grad():
        assert torch.equal(loaded.module(x), model(x))


def test_loader_refuses_mismatched_corrupt_and_pickled_files(tmp_path):
    path = export_model(tiny_model(), np.ones((1, 1, 1), np.float32), tmp_path / "m.pt", card())
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
    with pytest.raises(DeepDoseInputError, match="could not be read"):
        load_model(evil)
    lonely = tmp_path / "lonely.pt"
    lonely.write_bytes(b"x")
    with pytest.raises(DeepDoseInputError, match="no model card"):
        load_model(lonely)


def test_augmentation_keeps_inputs_and_target_aligned():
    rng = np.random.default_rng(0)
    a = rng.random((8, 8, 8)).astype(np.float32)
    x = np.stack([a, np.ones_like(a), 2 * a])
    for _ in range(20):  # target = activity: flips, rotations and scaling must keep y == x[0]
        xa, ya = augment(x, a[None].copy(), rng, (4.0, 4.0, 4.0))
        np.testing.assert_array_equal(ya[0], xa[0])
        np.testing.assert_allclose(xa[2], 2 * xa[0], rtol=1e-6)


def test_sampling_prefers_dose():
    shape = (24, 24, 24)
    a = np.zeros(shape, np.float32)
    a[4:8, 4:8, 4:8] = 1.0
    vsv = a * 1.0
    case = PreparedCase("c", a, np.ones(shape, np.float32), vsv, vsv.copy(), 0, (4.0, 4.0, 4.0))
    x, _ = sample_batch([case], 400, 4, np.random.default_rng(0), augmentation=False)
    hot = (x[:, 0].reshape(400, -1).max(axis=1) > 0).mean()
    # 70 % of the draws are dose-weighted (all in the hot cube), uniform draws hit it with p ≈ 0.5 %:
    # expected 0.70, binomial SD 0.023 → 0.62–0.78 is > 3 SD wide; uniform sampling would give ~0.01
    assert 0.62 < hot < 0.78


def _toy_cases(root, n_train=2, n_val=1, size=24):
    """Cases whose 'MC' target is the local dose k·A/ρ (the kernel below is the identity)."""
    for i in range(n_train + n_val):
        rng = np.random.default_rng(i)
        a = np.zeros((size,) * 3, np.float32)
        c = rng.integers(6, size - 6, 3)
        a[c[0] - 3:c[0] + 3, c[1] - 3:c[1] + 3, c[2] - 3:c[2] + 3] = 1e4 * (1 + rng.random())
        rho = np.where(rng.random((size,) * 3) > 0.5, 1.0, 0.3).astype(np.float32)
        grid = sitk.GetImageFromArray(a)
        grid.SetSpacing((4.0, 4.0, 4.0))
        write_case(root / f"c{i}", grid, {"activity": a, "density": rho, "materials": np.ones_like(a, np.uint8),
                                         "mc_dose_rate": K * a / rho},
                   {"nuclide": "Ga68", "split": "train" if i < n_train else "val", "n_decays": 1})


@pytest.mark.slow
def test_training_is_seeded_resumable_and_improves(tmp_path):
    from DeepDoseLib.deepdose.training import TrainConfig, train
    from DeepDoseLib.methods.vsv import VSVKernel

    _toy_cases(tmp_path / "data")
    assert len(find_cases(tmp_path / "data", "Ga68")) == 3 and load_case(tmp_path / "data" / "c2").split == "val"
    kernel = np.zeros((3, 3, 3), np.float32)
    kernel[1, 1, 1] = K / 0.064  # VSV = k·A in the source voxel (voxel 0.064 mL)
    vsv = VSVKernel(kernel, (4.0, 4.0, 4.0), "Ga68", "water", 1.0, 1, 0)
    cfg = dict(nuclide="Ga68", base_channels=4, depth=2, patch_size=16, margin=2, batch_size=2,
               iterations_per_round=5, val_patches=4, inference_tile=24, inference_margin=4, overlap=2, patience=50)
    full = train(tmp_path / "data", tmp_path / "full.pt", TrainConfig(max_rounds=4, **cfg), kernel_override=vsv,
                 show_progress=False)
    train(tmp_path / "data", tmp_path / "part.pt", TrainConfig(max_rounds=2, **cfg), kernel_override=vsv,
          show_progress=False)
    ckpt = torch.load(tmp_path / "part.ckpt", weights_only=True)
    ckpt["config"] = json.dumps({**json.loads(ckpt["config"]), "max_rounds": 4})
    torch.save(ckpt, tmp_path / "part.ckpt")
    resumed = train(tmp_path / "data", tmp_path / "part.pt", TrainConfig(max_rounds=4, **cfg), kernel_override=vsv,
                    show_progress=False)
    a, b = load_model(full), load_model(resumed)
    x = random_inputs(1, 16)
    with torch.no_grad():  # resuming reproduces the uninterrupted run exactly (seeded RNG states saved)
        assert torch.equal(a.module(x), b.module(x))
    history = a.card["training"]["history"]
    # the local dose k·A/ρ differs from the plain VSV (k·A) by 3.3× in the ρ = 0.3 voxels: training must
    # reduce the validation loss from its start (the plain VSV)
    assert min(h["val_loss"] for h in history[1:]) < history[0]["val_loss"]
    assert "voxel_median_abs_pct" in a.card["validation"]["deepdose"]


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
