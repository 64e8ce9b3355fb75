"""The mutable state of a Deep-dose training run: network, optimiser, learning-rate schedule, weight
average, random state and progress, with the state dictionary a :class:`.checkpoint.Checkpoint` stores.

Weight averaging (``ema_decay`` > 0) uses :class:`torch.optim.swa_utils.AveragedModel` with an exponential
moving average after every optimiser step, θ_avg ← d·θ_avg + (1 − d)·θ, starting from the initial weights
(Polyak averaging: with noisy MC targets it averages out the noise the last steps fit).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torch.optim.swa_utils import AveragedModel

from .unet import DeepDoseUNet


def exponential_average(decay: float) -> Callable[[List[torch.Tensor], List[torch.Tensor], Any], None]:
    """``multi_avg_fn`` for :class:`AveragedModel`: θ_avg ← d·θ_avg + (1 − d)·θ in place, for any number averaged.

    (``torch.optim.swa_utils.get_ema_multi_avg_fn`` computes the same average with ``lerp``, which rounds
    differently; this one keeps the arithmetic of the checkpoints and models made before.)
    """
    decay = float(decay)

    def update(averaged: List[torch.Tensor], current: List[torch.Tensor], num_averaged: Any) -> None:
        for p_avg, p in zip(averaged, current):
            p_avg.mul_(decay).add_(p, alpha=1.0 - decay)

    return update


def averaged_model(model: torch.nn.Module, decay: float) -> AveragedModel:
    """An exponential moving average of ``model``'s weights (:func:`exponential_average`) that starts at its
    current weights: those count as the first average, so the first update already averages."""
    ema = AveragedModel(model, multi_avg_fn=exponential_average(decay))
    ema.n_averaged.fill_(1)
    return ema


def _copy(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in state.items()}


@dataclass
class TrainingRun:
    """Everything a training run changes as it goes, and nothing it only reads.

    Attributes
    ----------
    model : DeepDoseUNet
        The network being optimised.
    optimizer : torch.optim.Adam
    scheduler : ReduceLROnPlateau
        Halves the learning rate after ``lr_patience`` rounds without a better validation loss.
    ema : AveragedModel or None
        The weight average (None without averaging).
    rng : numpy.random.Generator
        Draws the training patches.
    progress : dict
        ``round``, ``best_val``, ``best_round``, ``history`` (one entry per round: round, train_loss,
        val_loss) and ``seconds`` (training time so far [s]); JSON-able.
    best_weights : dict
        State dictionary of the judged weights (:attr:`judged`) of the best validation round so far.
    """

    model: DeepDoseUNet
    optimizer: torch.optim.Optimizer
    scheduler: ReduceLROnPlateau
    ema: Optional[AveragedModel]
    rng: np.random.Generator
    progress: Dict[str, Any] = field(default_factory=lambda: {"round": 0, "best_val": float("inf"), "best_round": -1,
                                                              "history": [], "seconds": 0.0})
    best_weights: Dict[str, torch.Tensor] = field(default_factory=dict)

    @classmethod
    def start(cls, model: DeepDoseUNet, rng: np.random.Generator, *, learning_rate: float, lr_patience: int,
              ema_decay: float) -> "TrainingRun":
        """A fresh run of ``model`` (already on its device): Adam at ``learning_rate``, the plateau schedule,
        and a weight average when ``ema_decay`` > 0."""
        optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
        scheduler = ReduceLROnPlateau(optimizer, factor=0.5, patience=lr_patience)
        ema = averaged_model(model, ema_decay) if ema_decay > 0 else None
        return cls(model, optimizer, scheduler, ema, rng, best_weights=_copy(model.state_dict()))

    @property
    def judged(self) -> DeepDoseUNet:
        """The weights that are validated and exported: the average when there is one, else the iterate."""
        return self.ema.module if self.ema is not None else self.model

    def step(self, loss: torch.Tensor) -> None:
        """One optimiser step on ``loss``, then the weight average."""
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        if self.ema is not None:
            with torch.no_grad():
                self.ema.update_parameters(self.model)

    def end_round(self, train_loss: float, val_loss: float, seconds: float) -> None:
        """Record a finished round (mean training loss, validation loss, total training time [s]), step the
        schedule, and keep the judged weights when they are the best so far."""
        p = self.progress
        p["round"] += 1
        p["history"].append({"round": p["round"], "train_loss": train_loss, "val_loss": val_loss})
        self.scheduler.step(val_loss)
        if val_loss < p["best_val"]:
            p.update(best_val=val_loss, best_round=p["round"])
            self.best_weights = _copy(self.judged.state_dict())
        p["seconds"] = seconds

    def state_dict(self) -> Dict[str, Any]:
        """What a checkpoint stores (the layout of the checkpoints written since weight averaging exists)."""
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "best_model": self.best_weights, "scheduler": json.dumps(self.scheduler.state_dict()),
                 "state": json.dumps(self.progress), "numpy_rng": json.dumps(self.rng.bit_generator.state),
                 "torch_rng": torch.get_rng_state()}
        if self.ema is not None:
            state["ema_model"] = self.ema.module.state_dict()
        return state

    def load_state_dict(self, saved: Dict[str, Any]) -> None:
        """Continue from a checkpoint's state (:meth:`state_dict`); sets the torch random state too."""
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(json.loads(saved["scheduler"]))
        self.best_weights = saved["best_model"]
        if self.ema is not None:
            self.ema.module.load_state_dict(saved["ema_model"])
        self.progress = json.loads(saved["state"])
        self.rng.bit_generator.state = json.loads(saved["numpy_rng"])
        torch.set_rng_state(saved["torch_rng"])
