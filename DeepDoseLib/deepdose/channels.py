"""The physics input channels of Deep-dose, computed over a whole (padded) volume.

The network corrects a physics baseline instead of learning transport from scratch
(:mod:`DeepDoseLib.methods.scaled_vsv`): five channels, arrays (z, y, x) on the model's grid:

    0  activity concentration [Bq/mL]
    1  mass density [g/cm³]
    2  charged-particle dose rate [mGy/h]: density-scaled kernels chosen by the source voxel's density
    3  photon dose rate [mGy/h]: soft-tissue photon kernel (long range: carries the dose from outside a tile)
    4  surrounding density [g/cm³]: the density averaged with the photon kernel as weight — how much
       scattering and attenuating matter surrounds a voxel (thorax, body surface, ends of the scan)

Channels 0, 2 and 3 are linear in the activity; 1 and 4 do not depend on it.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from ..methods.scaled_vsv import ScaledKernels, charged_dose_rates, photon_dose_rate, voxel_sources
from ..fft_convolution import fft_convolve

CHANNEL_NAMES: Tuple[str, ...] = (
    "activity [Bq/mL]",
    "density [g/cm³]",
    "charged-particle dose rate, density-scaled VSV by source density [mGy/h]",
    "photon dose rate, soft-tissue photon VSV [mGy/h]",
    "surrounding density, photon-kernel weighted [g/cm³]",
)
N_CHANNELS = len(CHANNEL_NAMES)
#: Channels that scale with the activity (augmentation and normalisation).
ACTIVITY_CHANNELS = (0, 2, 3)
#: How the charged-particle kernel is chosen (see :func:`scaled_vsv_components`).
CHARGED_MODE = "source"  # what physics_inputs computes (charged_dose_rates is source mode)


def surrounding_density(density_g_per_cm3: np.ndarray, photon_kernel: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Density [g/cm³] averaged around every voxel with the photon kernel as weight (0 outside the array)."""
    weights = np.asarray(photon_kernel, np.float64)
    if not weights.sum() > 0:  # a nuclide without photons: the local density
        weights = np.ones((1, 1, 1))
    weights = weights / weights.sum()
    return fft_convolve(np.clip(np.asarray(density_g_per_cm3, np.float64), 0.0, None), weights, device=device)


def input_channels(activity_Bq_per_mL: np.ndarray, density_g_per_cm3: np.ndarray, kernels: ScaledKernels,
                   device: str = "cpu") -> np.ndarray:
    """The (5, z, y, x) float32 input of the network for a whole volume (see the module docstring)."""
    return physics_inputs(activity_Bq_per_mL, density_g_per_cm3, kernels, device)[0]


def physics_inputs(activity_Bq_per_mL: np.ndarray, density_g_per_cm3: np.ndarray, kernels: ScaledKernels,
                   device: str = "cpu") -> Tuple[np.ndarray, np.ndarray]:
    """:func:`input_channels` and, from the same convolutions, the part [mGy/h] (z, y, x) of its charged channel
    that crossed a density interface (:func:`~DeepDoseLib.methods.scaled_vsv.charged_dose_rates`: what the
    uncertainty map's interface term takes). The charged channel is the ``source`` mode of
    :func:`~DeepDoseLib.methods.scaled_vsv.scaled_vsv_components` (:data:`CHARGED_MODE`)."""
    charged, across = charged_dose_rates(activity_Bq_per_mL, density_g_per_cm3, kernels, device)
    source, _ = voxel_sources(activity_Bq_per_mL, density_g_per_cm3, kernels)
    photon = photon_dose_rate(source, density_g_per_cm3, kernels, device)
    surround = surrounding_density(density_g_per_cm3, kernels.photon, device)
    inputs = np.stack([np.asarray(activity_Bq_per_mL, np.float32), np.asarray(density_g_per_cm3, np.float32),
                       charged.astype(np.float32), photon.astype(np.float32), surround.astype(np.float32)])
    return inputs, across
