"""Smooth random fields (Gaussian-filtered white noise) for textures and elastic deformations."""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
import SimpleITK as sitk


def gaussian_blur(array: np.ndarray, sigma_vox: "float | Sequence[float]", exact: bool = False) -> np.ndarray:
    """Gaussian filter of a (z, y, x) array; ``sigma_vox`` in voxels, scalar or per axis (x, y, z).

    ``exact=False``: ITK's recursive Gaussian (fast; for textures and noise). ``exact=True``: FFT with
    the Gaussian transfer function on a zero-padded array (4 σ), so the integral of an activity map is
    conserved to float precision (activity leaves only through the array's borders).
    """
    sig = np.broadcast_to(np.asarray(sigma_vox, dtype=float), (3,))[::-1]  # numpy axis order z, y, x
    if np.all(sig <= 1e-3):
        return np.asarray(array, dtype=np.float32).copy()
    if exact:
        pad = [int(np.ceil(4.0 * s)) if s > 1e-3 else 0 for s in sig]
        padded = np.pad(np.asarray(array, dtype=np.float32), [(p, p) for p in pad])
        axes = (0, 1, 2)
        spectrum = np.fft.rfftn(padded, axes=axes)
        freqs = [np.fft.fftfreq(padded.shape[0]), np.fft.fftfreq(padded.shape[1]), np.fft.rfftfreq(padded.shape[2])]
        for axis, (f, s) in enumerate(zip(freqs, sig)):
            shape = [1, 1, 1]
            shape[axis] = f.size
            spectrum *= np.exp(-2.0 * np.pi ** 2 * s ** 2 * f ** 2).reshape(shape)
        out = np.fft.irfftn(spectrum, padded.shape, axes=axes)
        return np.ascontiguousarray(out[tuple(slice(p, p + n) for p, n in zip(pad, array.shape))], dtype=np.float32)
    image = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.float32))
    # One ITK thread: with several, ITK's dynamic work splitting made repeated runs differ in the last
    # float bits (seen as ±1 HU after rounding), and every case must follow exactly from its seed.
    if min(array.shape) < 4:  # the recursive filter needs at least 4 voxels per axis
        gaussian = sitk.DiscreteGaussianImageFilter()
        gaussian.SetVariance([float(s) ** 2 for s in sig[::-1]])
        gaussian.SetMaximumKernelWidth(64)
        gaussian.SetMaximumError(0.001)
        gaussian.SetUseImageSpacing(False)
    else:
        gaussian = sitk.SmoothingRecursiveGaussianImageFilter()
        gaussian.SetSigma([max(float(s), 1e-3) for s in sig[::-1]])
    gaussian.SetNumberOfThreads(1)
    return sitk.GetArrayFromImage(gaussian.Execute(image)).astype(np.float32)


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
