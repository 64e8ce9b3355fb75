"""Hyper-parameters of a Deep-dose training run (all recorded in the model card and the checkpoint)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict

from ..methods.vsv import DEFAULT_KERNEL_RADIUS_mm


@dataclass
class TrainConfig:
    """Hyper-parameters (all recorded in the model card).

    Attributes
    ----------
    nuclide : str
        Radionuclide of the training cases and kernels (e.g. ``"Ga68"``).
    base_channels, depth : int
        U-Net feature maps at full resolution and resolution levels (:class:`.unet.DeepDoseUNet`).
    patch_size, margin : int
        Training patch edge and the loss-free margin next to its faces [voxels].
    batch_size : int
        Patches per optimiser step.
    learning_rate : float
        Adam's initial learning rate (halved after ``lr_patience`` rounds without improvement).
    iterations_per_round : int
        Optimiser steps between validations.
    max_rounds, patience, lr_patience : int
        Round limit; rounds without improvement before stopping and before halving the learning rate.
    ema_decay : float
        Decay d of the exponential weight average (0: no average).
    time_limit_min : float
        Training time limit [min].
    val_patches : int
        Fixed validation patches.
    seed : int
        Seed of numpy and torch.
    kernel_decays : int
        Monte Carlo decays of the baseline's kernels.
    inference_tile, inference_margin, overlap : int
        Tiling at inference (:meth:`.tiling.TilePlan.for_volume`) [voxels].
    threads : int
        torch threads (0: torch's default).
    photon_bands : bool
        Baseline with bone's own photon kernel from energy bands (:mod:`DeepDoseLib.methods.scaled_vsv`).
    scatter_medium : bool
        Photon baseline with the scatter-medium correction (:mod:`DeepDoseLib.methods.photon_scatter`; needs
        the bands).
    photon_radius_mm : float
        Extent of the baseline's soft-tissue photon kernel [mm] (150: the bundled Lu-177 model; 300: the bundled
        Ga-68 model, it keeps the cross-fire of large bodies, docs/validation/deepdose_generalization.md).
    init_from : str
        Model file whose network weights the run starts from (``deepdose train --init-from``; "" for random
        weights). Same nuclide and architecture; its baseline may differ (the network is a bounded correction
        of whatever baseline it is given, so a warm start only shortens the search).
    extra : dict
        Free notes recorded with the settings.
    """

    nuclide: str = "Ga68"
    base_channels: int = 12
    depth: int = 3
    patch_size: int = 40
    margin: int = 8
    batch_size: int = 4
    learning_rate: float = 1e-3
    iterations_per_round: int = 100
    max_rounds: int = 200
    patience: int = 8
    lr_patience: int = 3
    ema_decay: float = 0.0
    time_limit_min: float = 60.0
    val_patches: int = 48
    seed: int = 0
    kernel_decays: int = 1_000_000
    inference_tile: int = 96
    inference_margin: int = 12
    overlap: int = 8
    threads: int = 0
    #: baseline with bone's own photon kernel from energy bands (see :mod:`DeepDoseLib.methods.scaled_vsv`)
    photon_bands: bool = True
    #: photon baseline with the scatter-medium correction (:mod:`DeepDoseLib.methods.photon_scatter`; needs the bands)
    scatter_medium: bool = True
    photon_radius_mm: float = DEFAULT_KERNEL_RADIUS_mm
    init_from: str = ""
    extra: Dict[str, str] = field(default_factory=dict)
