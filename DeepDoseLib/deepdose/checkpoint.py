"""Training checkpoints: the file ``<model>.ckpt`` written after every validation round, and the rules for
resuming from it.

A checkpoint is a ``torch.save`` dictionary (loaded with ``weights_only=True``): the state of the run
(:meth:`.training_state.TrainingRun.state_dict`: weights, optimiser, schedule, weight average, random
states, history) and ``config``, the training settings as JSON. A run resumes only with the settings it
was started with, except those in :data:`RESUMABLE_SETTINGS` (when to stop, threads). Settings added
after the first checkpoints were written are read from older checkpoints with the value those runs
implied (:data:`SETTINGS_BEFORE_THEY_EXISTED`), so every checkpoint written since still resumes.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Union

import torch

from ..errors import DeepDoseInputError

#: Settings that may change on resume (e.g. a longer time limit); nothing else may.
RESUMABLE_SETTINGS = ("time_limit_min", "max_rounds", "patience", "threads")
#: Settings younger than some checkpoints, with the value that checkpoints written before them imply:
#: no photon energy bands, no scatter-medium correction.
SETTINGS_BEFORE_THEY_EXISTED = {"photon_bands": False, "scatter_medium": False, "photon_radius_mm": 150.0, "init_from": ""}


def _fixed_settings(settings: Dict[str, Any]) -> Dict[str, Any]:
    """The settings that must match on resume, as JSON would give them back (tuples as lists)."""
    return {k: v for k, v in json.loads(json.dumps(settings)).items() if k not in RESUMABLE_SETTINGS}


class Checkpoint:
    """The checkpoint of one training run.

    Parameters
    ----------
    path : str or Path
        The ``.ckpt`` file.
    settings : dict
        The run's training settings (``dataclasses.asdict`` of a :class:`.training.TrainConfig`), JSON-able.
    """

    def __init__(self, path: Union[str, Path], settings: Dict[str, Any]):
        self.path = Path(path)
        self.settings = dict(settings)

    @classmethod
    def beside(cls, model_path: Union[str, Path], settings: Dict[str, Any]) -> "Checkpoint":
        """The checkpoint of the run that exports ``model_path``: the same name with ``.ckpt``."""
        return cls(Path(model_path).with_suffix(".ckpt"), settings)

    def exists(self) -> bool:
        return self.path.is_file()

    def load(self, device: str = "cpu") -> Dict[str, Any]:
        """The saved run state (see :meth:`.training_state.TrainingRun.load_state_dict`), tensors on ``device``.

        Raises
        ------
        DeepDoseInputError
            If the checkpoint was made with other settings than this run's (beyond :data:`RESUMABLE_SETTINGS`).
        """
        saved = torch.load(self.path, map_location=device, weights_only=True)
        before = _fixed_settings(json.loads(saved["config"]))
        for name, implied in SETTINGS_BEFORE_THEY_EXISTED.items():
            before.setdefault(name, implied)
        if before != _fixed_settings(self.settings):
            raise DeepDoseInputError(f"Checkpoint {self.path} was made with other settings; delete it or use the same "
                                     f"ones (only {', '.join(RESUMABLE_SETTINGS)} may change on resume).")
        return saved

    def save(self, run_state: Dict[str, Any]) -> None:
        """Write the run state and the settings; atomic (a temporary file, then renamed over the old one)."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({**run_state, "config": json.dumps(self.settings)}, tmp)
        tmp.replace(self.path)
