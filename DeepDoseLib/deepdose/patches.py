"""Training patches: sampling weighted towards dose/activity, and augmentation.

A :class:`PreparedCase` holds one case padded by ``pad`` voxels on every side (activity 0, air
density), with the physics channels of :mod:`.channels` computed over the whole (padded) volume, so
that patch inputs look exactly like the tiles of :mod:`DeepDoseLib.deepdose.inference`. Arrays are (z, y, x).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from .channels import ACTIVITY_CHANNELS
from ..tissue import TISSUE_MIN_DENSITY_g_per_cm3

#: Density given to padding voxels [g/cm³] (air, as outside a patient).
AIR_DENSITY_g_per_cm3 = 0.0012


@dataclass
class PreparedCase:
    """One padded case: ``inputs`` (the 5 channels of :mod:`.channels`, (5, z, y, x)) and ``target``
    (the MC dose rate [mGy/h], (z, y, x))."""

    name: str
    inputs: np.ndarray
    target: np.ndarray
    pad: int
    spacing_mm: Tuple[float, float, float]
    sampling_cdf: Optional[np.ndarray] = None
    body_index: Optional[np.ndarray] = None

    def build_sampling(self) -> None:
        """Precompute the centre distributions: ∝ baseline dose (a function of the inputs) and uniform in the body."""
        p = self.pad
        inner = (slice(p, -p),) * 3 if p > 0 else (slice(None),) * 3
        weights = (self.inputs[2][inner].astype(np.float64) + self.inputs[3][inner]).ravel()
        body = self.inputs[1][inner].ravel() > TISSUE_MIN_DENSITY_g_per_cm3
        weights = np.where(body, weights, 0.0)
        total = weights.sum()
        self.sampling_cdf = np.cumsum(weights / total) if total > 0 else None
        self.body_index = np.flatnonzero(body)


def pad_case(activity: np.ndarray, density: np.ndarray, pad: int) -> Tuple[np.ndarray, np.ndarray]:
    """Pad activity with 0 and density with air by ``pad`` voxels on every side."""
    a = np.pad(activity.astype(np.float32), pad, constant_values=0.0)
    d = np.pad(density.astype(np.float32), pad, constant_values=AIR_DENSITY_g_per_cm3)
    return a, d


def sample_patch(case: PreparedCase, size: int, rng: np.random.Generator,
                 dose_weighted_fraction: float = 0.7) -> Tuple[np.ndarray, np.ndarray]:
    """One patch: inputs (5, size, size, size) and target (1, size, size, size).

    The centre is drawn with probability ∝ the baseline dose rate in a fraction ``dose_weighted_fraction``
    of the draws (high-dose regions, organs, tumours), else uniformly in the body.
    """
    if case.body_index is None:
        case.build_sampling()
    shape = case.inputs.shape[1:]
    inner_shape = tuple(s - 2 * case.pad for s in shape)
    if case.sampling_cdf is not None and rng.random() < dose_weighted_fraction:
        flat = int(np.searchsorted(case.sampling_cdf, rng.random() * case.sampling_cdf[-1]))
        flat = min(flat, int(np.prod(inner_shape)) - 1)
    else:
        flat = int(case.body_index[rng.integers(len(case.body_index))])
    centre = np.array(np.unravel_index(flat, inner_shape)) + case.pad
    start = np.clip(centre - size // 2, 0, np.array(shape) - size)
    sl = tuple(slice(int(s), int(s) + size) for s in start)
    x = case.inputs[(slice(None),) + sl]
    y = case.target[sl][None]
    return x, y


def augment(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, spacing_mm: Tuple[float, float, float],
            intensity_range: Tuple[float, float] = (0.1, 10.0)) -> Tuple[np.ndarray, np.ndarray]:
    """Random flips on each axis, 90° rotations in every plane of equal spacing, and an activity scale.

    The activity scale multiplies the activity channels (activity, charged and photon dose) and the target alike (log-uniform in ``intensity_range``);
    for the exactly linear model it changes nothing but the float ranges, a check rather than a crutch.
    """
    sx, sy, sz = spacing_mm
    spacing_zyx = (sz, sy, sx)
    for axis in (1, 2, 3):
        if rng.random() < 0.5:
            x, y = np.flip(x, axis), np.flip(y, axis)
    for a, b in ((1, 2), (1, 3), (2, 3)):
        if np.isclose(spacing_zyx[a - 1], spacing_zyx[b - 1]) and x.shape[a] == x.shape[b]:
            k = int(rng.integers(4))
            if k:
                x, y = np.rot90(x, k, axes=(a, b)), np.rot90(y, k, axes=(a, b))
    lo, hi = np.log(intensity_range[0]), np.log(intensity_range[1])
    factor = np.float32(np.exp(rng.uniform(lo, hi)))
    x = np.ascontiguousarray(x).copy()
    x[list(ACTIVITY_CHANNELS)] *= factor
    return x, np.ascontiguousarray(y) * factor


def sample_batch(cases, batch_size: int, size: int, rng: np.random.Generator, augmentation: bool = True
                 ) -> Tuple[np.ndarray, np.ndarray]:
    """A batch (N, 5, P, P, P) of inputs and (N, 1, P, P, P) targets from random cases."""
    xs, ys = [], []
    for _ in range(batch_size):
        case = cases[int(rng.integers(len(cases)))]
        x, y = sample_patch(case, size, rng)
        if augmentation:
            x, y = augment(x, y, rng, case.spacing_mm)
        xs.append(x)
        ys.append(y)
    return np.stack(xs).astype(np.float32), np.stack(ys).astype(np.float32)
