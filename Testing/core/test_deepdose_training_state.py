"""Deep-dose training state: the weight average (torch's AveragedModel) keeps the exponential-average
arithmetic, and checkpoints round-trip, refuse other settings and still read the files written before."""
from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest
import torch

from deepdose_helpers import K, net, random_inputs

from DeepDoseLib.deepdose.checkpoint import Checkpoint
from DeepDoseLib.deepdose.training import TrainConfig
from DeepDoseLib.deepdose.training_state import TrainingRun
from DeepDoseLib.deepdose.unet import DeepDoseUNet
from DeepDoseLib.errors import DeepDoseInputError


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # Testing/conftest.py


def _run(ema_decay: float = 0.7, seed: int = 0) -> TrainingRun:
    return TrainingRun.start(net(True, seed=seed).train(), np.random.default_rng(seed), learning_rate=1e-2,
                             lr_patience=3, ema_decay=ema_decay)


def _steps(run: TrainingRun, n: int, after_each=lambda: None) -> None:
    x = random_inputs(2, 8)
    for _ in range(n):
        run.step((run.model(x) / (K * 1e5)).square().mean())
        after_each()


def test_weight_average_is_the_exponential_moving_average_from_the_initial_weights():
    """θ_avg ← d·θ_avg + (1 − d)·θ after every step, starting at the initial weights: in float64 (to float32
    rounding over 5 steps) and, bit for bit, with the float32 in-place arithmetic of the checkpoints written
    before the average was an AveragedModel."""
    d = 0.7
    run = _run(d)
    params = list(run.model.parameters())
    exact = [p.detach().double().clone() for p in params]
    before = [p.detach().clone() for p in params]  # the pre-AveragedModel update, verbatim

    def reference():
        for e, b, p in zip(exact, before, params):
            e.mul_(d).add_((1 - d) * p.detach().double())
            b.mul_(d).add_(p.detach(), alpha=1.0 - d)

    _steps(run, 5, reference)
    averaged = list(run.judged.parameters())
    assert not torch.equal(averaged[-2], params[-2])  # the average lags the iterate
    for a, e, b in zip(averaged, exact, before):
        assert torch.equal(a, b)
        np.testing.assert_allclose(a.detach().double().numpy(), e.numpy(), rtol=1e-5, atol=1e-7)


def test_checkpoint_round_trip_resumes_the_same_state(tmp_path):
    settings = asdict(TrainConfig(ema_decay=0.7))
    run = _run()
    _steps(run, 2)
    run.end_round(0.5, 0.4, 12.0)
    run.rng.random(3)
    Checkpoint(tmp_path / "m.ckpt", settings).save(run.state_dict())
    again = _run(seed=1)  # other initial weights and random state: all replaced
    again.load_state_dict(Checkpoint(tmp_path / "m.ckpt", {**settings, "max_rounds": 500}).load())
    for a, b in ((run.model, again.model), (run.judged, again.judged)):
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert again.progress == run.progress and again.rng.random() == run.rng.random()
    assert again.optimizer.state_dict()["state"][0]["step"] == 2
    with pytest.raises(DeepDoseInputError, match="other settings"):
        Checkpoint(tmp_path / "m.ckpt", {**settings, "batch_size": 3}).load()


def test_checkpoints_written_before_still_resume(tmp_path):
    """A checkpoint in the layout written before the refactoring (and before the photon-band options) resumes:
    weights, optimiser, average, progress and random states; the missing options read as off."""
    torch.manual_seed(3)
    model, ema = DeepDoseUNet(K, 4, 2), DeepDoseUNet(K, 4, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=3)
    rng = np.random.default_rng(5)
    state = {"round": 3, "best_val": 0.25, "best_round": 2, "history": [{"round": 0, "train_loss": None,
                                                                          "val_loss": 1.0}], "seconds": 40.0}
    old = {k: v for k, v in asdict(TrainConfig(ema_decay=0.5)).items() if k not in ("photon_bands", "scatter_medium")}
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "best_model": ema.state_dict(),
                "scheduler": json.dumps(sched.state_dict()), "ema_model": ema.state_dict(),
                "state": json.dumps(state), "numpy_rng": json.dumps(rng.bit_generator.state),
                "torch_rng": torch.get_rng_state(), "config": json.dumps(old)}, tmp_path / "old.ckpt")
    run = _run(0.5)
    run.load_state_dict(Checkpoint(tmp_path / "old.ckpt", asdict(TrainConfig(ema_decay=0.5, photon_bands=False,
                                                                             scatter_medium=False))).load())
    assert all(torch.equal(p, q) for p, q in zip(run.judged.parameters(), ema.parameters()))
    assert all(torch.equal(p, q) for p, q in zip(run.model.parameters(), model.parameters()))
    assert run.progress == state and run.rng.random() == rng.random()
    _steps(run, 1)  # and the average goes on from the saved one
    with pytest.raises(DeepDoseInputError, match="other settings"):  # bands on: not what that run did
        Checkpoint(tmp_path / "old.ckpt", asdict(TrainConfig(ema_decay=0.5))).load()
