"""Smooth random fields (Gaussian-filtered white noise) for textures and elastic deformations."""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
import SimpleITK as sitk


def gaussian_blur(array: np.ndarray, sigma_vox: "float | Sequence[float]") -> np.ndarray:
    """Gaussian filter of a (z, y, x) array; ``sigma_vox`` in voxels, scalar or per axis (x, y, z)."""
    sig = np.broadcast_to(np.asarray(sigma_vox, dtype=float), (3,))
    if np.all(sig <= 0):
        return np.asarray(array, dtype=np.float32).copy()
    image = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.float32))
    image.SetSpacing([1.0, 1.0, 1.0])
    if min(array.shape) < 4:  # the recursive filter needs at least 4 voxels per axis
        out = sitk.DiscreteGaussian(image, [float(s) ** 2 for s in sig], 32, 0.001, False)
    else:
        out = sitk.SmoothingRecursiveGaussian(image, [max(float(s), 1e-3) for s in sig])
    return sitk.GetArrayFromImage(out).astype(np.float32)


def smooth_noise(shape: Tuple[int, int, int], sigma_vox: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field with correlation length ~``sigma_vox`` voxels."""
    field = gaussian_blur(rng.standard_normal(shape, dtype=np.float32), sigma_vox)
    field -= field.mean()
    std = float(field.std())
    return field / std if std > 0 else field


def smooth_displacement(shape: Tuple[int, int, int], spacing_mm: Sequence[float], amplitude_mm: float,
                        length_mm: float, rng: np.random.Generator) -> np.ndarray:
    """(3, z, y, x) float32 displacement field (x, y, z components, mm): RMS ``amplitude_mm`` per component,
    Gaussian correlation of width ~``length_mm``.

    Drawn on a coarse grid (node spacing ``length_mm / 3``) and interpolated trilinearly, which keeps
    it cheap for any voxel size.
    """
    import torch

    extent = [shape[2 - i] * float(spacing_mm[i]) for i in range(3)]  # x, y, z
    coarse = tuple(max(4, int(np.ceil(extent[2 - a] / (length_mm / 3.0))) + 1) for a in range(3))  # z, y, x
    fields = np.stack([smooth_noise(coarse, 1.5, rng) for _ in range(3)]) * float(amplitude_mm)
    up = torch.nn.functional.interpolate(torch.from_numpy(fields[None].astype(np.float32)), size=tuple(shape),
                                         mode="trilinear", align_corners=True)
    return up[0].numpy()
