"""The cases of a Deep-dose training run: read, split into training and held-out cases, padded, with
their input channels (:mod:`.channels`), and the kernels of the density-scaled VSV baseline."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import numpy as np

from ..errors import DeepDoseInputError
from ..methods.scaled_vsv import ScaledKernels, compute_scaled_kernels
from ..nuclides import get_nuclide
from .channels import input_channels
from .data import TrainingCase, dataset_settings, find_cases, load_case
from .patches import PreparedCase, pad_case
from .training_config import TrainConfig

logger = logging.getLogger(__name__)


def prepare(case: TrainingCase, kernels: ScaledKernels, pad: int) -> PreparedCase:
    """Pad a case by ``pad`` voxels (activity 0, air; target 0) and compute its input channels (:mod:`.channels`)
    over the padded volume, with the patch-centre distributions (:meth:`.patches.PreparedCase.build_sampling`)."""
    a, d = pad_case(case.activity_Bq_per_mL, case.density_g_per_cm3, pad)
    target = np.pad(case.dose_rate_mGy_per_h.astype(np.float32), pad)
    prepared = PreparedCase(case.name, input_channels(a, d, kernels), target, pad, tuple(case.spacing_mm))
    prepared.build_sampling()
    return prepared


def dose_per_activity(kernels: ScaledKernels) -> float:
    """k [mGy/h per Bq/mL]: the dose rate of an infinite uniform source in unit-density tissue
    (reciprocity: the sum of a kernel × the voxel volume; charged part at 1 g/cm³ + photon part)."""
    ladder = np.asarray(kernels.densities_g_per_cm3)
    i = int(np.argmin(np.abs(ladder - 1.0)))
    energy = float(kernels.charged[i].sum(dtype=np.float64)) * ladder[i]  # ρ·D: the same at every density
    return (energy + float(kernels.photon.sum(dtype=np.float64))) * float(np.prod(kernels.spacing_mm)) * 1e-3


def mc_decays(case: TrainingCase) -> int:
    """Monte Carlo decays of a case's ground truth (either case layout; 0 when not recorded)."""
    return int(case.metadata.get("n_decays", case.metadata.get("dose", {}).get("n_decays", 0)))


def split_cases(folders: List[Path]) -> Tuple[List[TrainingCase], List[TrainingCase]]:
    """Read the case folders and split them into training and held-out cases (split ``train`` / ``val``;
    without ``val`` cases, the last fifth of the training cases). ``test`` cases are left out.

    Raises
    ------
    DeepDoseInputError
        Without a training or a held-out case, or when the cases have different voxel sizes.
    """
    cases = [load_case(f) for f in folders]
    train = [c for c in cases if c.split == "train"]
    val = [c for c in cases if c.split == "val"]  # "test" cases are kept for `deepdose evaluate`
    if not val and len(train) > 1:
        val = train[-max(1, len(train) // 5):]
        train = train[:len(train) - len(val)]
    if not train or not val:
        raise DeepDoseInputError("Training needs at least one training and one validation (held-out) case.")
    spacings = {tuple(round(s, 4) for s in c.spacing_mm) for c in cases}
    if len(spacings) != 1:
        raise DeepDoseInputError(f"All training cases must share one voxel size; found {sorted(spacings)} mm.")
    return train, val


@dataclass
class TrainingData:
    """The cases of a training run, prepared once.

    Attributes
    ----------
    train_cases, val_cases : list of TrainingCase
        Training and held-out cases as read (:func:`split_cases`).
    spacing_mm : tuple of float
        Their common voxel size (x, y, z) [mm].
    kernels : ScaledKernels
        The baseline's kernels at that voxel size.
    k : float
        :func:`dose_per_activity` of the kernels [mGy/h per Bq/mL].
    train, val : list of PreparedCase
        The cases padded by half a patch, with their input channels (:func:`prepare`).
    datasets : list of dict
        The generator settings of each data folder (:func:`.data.dataset_settings`): the training distribution.
    """

    train_cases: List[TrainingCase]
    val_cases: List[TrainingCase]
    spacing_mm: Tuple[float, float, float]
    kernels: ScaledKernels
    k: float
    train: List[PreparedCase]
    val: List[PreparedCase]
    datasets: List[dict] = field(default_factory=list)


def load_training_data(data_dir: str | Path | List[str | Path], cfg: TrainConfig, *, device: str = "cpu",
                       kernels_override: Optional[ScaledKernels] = None,
                       log: Callable[[str], None] = logger.info) -> TrainingData:
    """Read, split and prepare the ``cfg.nuclide`` cases under ``data_dir``; compute the nuclide's kernels.

    Parameters
    ----------
    data_dir : path or list of paths
        Folders searched for cases (:func:`.data.find_cases`).
    cfg : TrainConfig
        Nuclide, patch size and kernel settings.
    device : str
        Where the Monte Carlo kernels are computed.
    kernels_override : ScaledKernels, optional
        Kernels to use instead of the nuclide's Monte Carlo kernels (tests).
    log : callable
        Receives progress messages.

    Raises
    ------
    DeepDoseInputError
        Without cases, without a training or a held-out case, or with cases of different voxel sizes.
    """
    folders = find_cases(data_dir, cfg.nuclide)
    if not folders:
        raise DeepDoseInputError(f"No {cfg.nuclide} training cases under {data_dir}.")
    train_cases, val_cases = split_cases(folders)
    spacing = tuple(float(s) for s in train_cases[0].spacing_mm)
    kernels = kernels_override or compute_scaled_kernels(get_nuclide(cfg.nuclide), spacing,
                                                         n_decays=cfg.kernel_decays, device=device,
                                                         photon_bands=cfg.photon_bands,
                                                         scatter_medium=cfg.scatter_medium,
                                                         photon_radius_mm=cfg.photon_radius_mm)
    pad = cfg.patch_size // 2
    log(f"preparing {len(train_cases)} training and {len(val_cases)} validation cases (physics channels)")
    return TrainingData(train_cases, val_cases, spacing, kernels, dose_per_activity(kernels),
                        [prepare(c, kernels, pad) for c in train_cases], [prepare(c, kernels, pad) for c in val_cases],
                        dataset_settings(data_dir))
