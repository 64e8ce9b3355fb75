"""Patch-wise Deep-dose inference on whole volumes.

1. The inputs are resampled to the model's voxel size (linear; the activity is rescaled to keep the
   total activity) and padded by the margin (activity 0, air).
2. The physics channels (:mod:`.channels`: density-scaled VSV baseline, surrounding density) are
   computed over the whole padded volume (FFT; the long-range photon dose reaches every tile).
3. Overlapping tiles (at most ``tile_size`` voxels per axis, fewer on thin axes; starts on multiples of
   2^(depth-1), so pooling aligns) are predicted in batches
   sized to the free memory; in each tile the ``margin`` voxels next to its faces are discarded (they
   see the tile's zero padding) and the rest is blended with a smooth sin² ramp of ``overlap`` voxels:
   out = Σ w·tile / Σ w, a partition of unity without seams.
4. The result is resampled back onto the input grid (linear).
CUDA out-of-memory halves the batch; at one tile it falls back to the CPU (and says so).
"""
from __future__ import annotations

import logging
import math
import os
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk
import torch

from ..errors import DeepDoseError
from ..methods.scaled_vsv import ScaledKernels
from .channels import input_channels
from .patches import AIR_DENSITY_g_per_cm3, pad_case

logger = logging.getLogger(__name__)
ProgressCallback = Callable[[float, str], None]


class DeepDoseCancelled(DeepDoseError):
    """Raised when the cancel callback asked the inference to stop (no result)."""


def _ramp(size: int, margin: int, overlap: int) -> np.ndarray:
    """1D blending weight of a tile: 0 in the margins, sin² ramps of ``overlap`` voxels, 1 inside."""
    w = np.zeros(size, np.float64)
    inner = np.arange(size - 2 * margin, dtype=np.float64)
    n = len(inner)
    ramp_len = max(1, min(overlap, n // 2))
    up = np.sin(0.5 * np.pi * np.minimum(1.0, (inner + 0.5) / ramp_len)) ** 2
    down = np.sin(0.5 * np.pi * np.minimum(1.0, (n - inner - 0.5) / ramp_len)) ** 2
    w[margin:size - margin] = np.minimum(up, down)
    return w


def tile_starts(length: int, tile: int, stride: int, multiple: int) -> List[int]:
    """Starts of tiles covering [0, length) with the given stride; the last one ends at ``length``."""
    last = length - tile
    starts = list(range(0, last, stride)) + [last]
    if any(s % multiple for s in starts):
        raise ValueError("tile starts must be multiples of the pooling factor")
    return sorted(set(starts))


def _available_bytes(device: str) -> int:
    if device.startswith("cuda"):
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 2 << 30


def tiles_per_batch(tile: int, base_channels: int, device: str, fraction: float = 0.25, max_batch: int = 16) -> int:
    """Tiles per forward pass so that the activations (~12·base_channels float32 maps at full
    resolution, a generous bound for the U-Net) fit into ``fraction`` of the free memory."""
    per_tile = tile ** 3 * 4 * 12 * max(1, base_channels)
    return int(max(1, min(max_batch, fraction * _available_bytes(device) // per_tile)))


def _round_up(n: int, multiple: int) -> int:
    return int(math.ceil(n / multiple) * multiple)


def predict_on_model_grid(module, kernels: ScaledKernels, activity_Bq_per_mL: np.ndarray,
                          density_g_per_cm3: np.ndarray, spacing_mm: Sequence[float], *, tile_size: int = 96,
                          margin: int = 12, overlap: int = 8, size_multiple: int = 4, base_channels: int = 16,
                          device: str = "cpu", batch_size: Optional[int] = None,
                          progress: Optional[ProgressCallback] = None, cancel: Optional[Callable[[], bool]] = None,
                          notes: Optional[List[str]] = None) -> np.ndarray:
    """Dose rate [mGy/h] (z, y, x) on the model's grid by overlapping tiles (see the module docstring)."""
    notes = notes if notes is not None else []
    if not np.allclose(tuple(spacing_mm), kernels.spacing_mm, rtol=1e-3):
        raise DeepDoseError(f"voxel size {tuple(spacing_mm)} mm differs from the model kernels' {kernels.spacing_mm} mm")
    shape = activity_Bq_per_mL.shape
    m = int(margin)
    # per axis: tile no larger than needed (thin volumes get flat tiles), a multiple of the pooling
    # factor, with a non-empty inner zone
    tiles = [max(_round_up(min(int(tile_size), _round_up(n + 2 * m, size_multiple)), size_multiple),
                 _round_up(2 * m + 2 * overlap, size_multiple)) for n in shape]
    strides = []
    for tile in tiles:
        stride = tile - 2 * m - overlap
        strides.append(max(size_multiple, stride - stride % size_multiple))
    # pad: margin before, then up to a length where the tile grid aligns (last start on the multiple)
    padded = []
    for n, tile in zip(shape, tiles):
        length = max(tile, n + 2 * m)
        length = tile + _round_up(length - tile, size_multiple)
        padded.append(length)
    a, d = pad_case(activity_Bq_per_mL, density_g_per_cm3, m)
    a = np.pad(a, [(0, p - s - 2 * m) for p, s in zip(padded, shape)], constant_values=0.0)
    d = np.pad(d, [(0, p - s - 2 * m) for p, s in zip(padded, shape)], constant_values=AIR_DENSITY_g_per_cm3)
    fft_device = device if device.startswith("cuda") else "cpu"
    if progress is not None:
        progress(0.0, "Deep-dose: physics channels (density-scaled VSV)")
    inputs = input_channels(a, d, kernels, device=fft_device)
    starts = [tile_starts(p, tile, stride, size_multiple) for p, tile, stride in zip(padded, tiles, strides)]
    corners = [(z, y, x) for z in starts[0] for y in starts[1] for x in starts[2]]
    wz, wy, wx = (_ramp(tile, m, overlap) for tile in tiles)
    weight = (wz[:, None, None] * wy[None, :, None] * wx[None, None, :]).astype(np.float32)
    tz, ty, tx = tiles
    out = np.zeros(padded, np.float64)
    wsum = np.zeros(padded, np.float64)
    batch = batch_size or tiles_per_batch(round(float(np.prod(tiles)) ** (1 / 3)), base_channels, device)
    dev = device
    i = 0
    while i < len(corners):
        if cancel is not None and cancel():
            raise DeepDoseCancelled("Deep-dose inference cancelled.")
        chunk = corners[i:i + batch]
        x = np.stack([inputs[:, z:z + tz, y:y + ty, xx:xx + tx] for z, y, xx in chunk])
        try:
            # plain TorchScript execution: the profiling executor re-specialises and compiles fusions for
            # each new tile shape during the first calls (on an H200: 2.8 s, then 0.56 s, then 0.10 s for the
            # same small case; 0.11 s from the first call without it), and the convolutions gain nothing from it
            with torch.no_grad(), torch.jit.optimized_execution(False):
                pred = module(torch.as_tensor(x, device=dev)).float().cpu().numpy()[:, 0]
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            if batch > 1:
                batch = max(1, batch // 2)
                notes.append(f"CUDA out of memory: {batch} tile(s) per batch")
            else:
                dev = "cpu"
                module = module.to("cpu") if hasattr(module, "to") else module
                notes.append("CUDA out of memory with one tile: Deep-dose inference continued on the CPU")
            logger.warning(notes[-1])
            continue
        for (z, y, xx), p in zip(chunk, pred):
            out[z:z + tz, y:y + ty, xx:xx + tx] += weight * p
            wsum[z:z + tz, y:y + ty, xx:xx + tx] += weight
        i += len(chunk)
        if progress is not None:
            progress(i / len(corners), f"Deep-dose: {i}/{len(corners)} tiles of {tz}×{ty}×{tx} voxels")
    core = tuple(slice(m, m + n) for n in shape)
    if (wsum[core] <= 0).any():
        raise DeepDoseError("internal error: a voxel was not covered by any tile")
    return np.clip(out[core] / wsum[core], 0.0, None).astype(np.float32)


def resample_array(array: np.ndarray, spacing_mm: Sequence[float], new_spacing_mm: Sequence[float],
                   new_shape: Optional[Tuple[int, int, int]] = None, default: float = 0.0) -> np.ndarray:
    """Linear resampling of a (z, y, x) array to another voxel size over the same physical extent
    (both grids centred on the same point)."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.float32))
    image.SetSpacing(tuple(float(s) for s in spacing_mm))
    extent = [n * s for n, s in zip(array.shape[::-1], spacing_mm)]
    size = list(new_shape[::-1]) if new_shape else [max(1, int(round(e / s))) for e, s in zip(extent, new_spacing_mm)]
    origin = [0.5 * (e - n * s) + 0.5 * s - 0.5 * s0
              for e, n, s, s0 in zip(extent, size, new_spacing_mm, spacing_mm)]
    out = sitk.Resample(image, [int(n) for n in size], sitk.Transform(), sitk.sitkLinear, origin,
                        tuple(float(s) for s in new_spacing_mm), image.GetDirection(), float(default),
                        sitk.sitkFloat32)
    return sitk.GetArrayFromImage(out)


def deepdose_dose_rate(activity_Bq_per_mL: np.ndarray, density_g_per_cm3: np.ndarray, spacing_mm: Sequence[float],
                       model, *, device: str = "cpu", tile_size: Optional[int] = None,
                       batch_size: Optional[int] = None, progress: Optional[ProgressCallback] = None,
                       cancel: Optional[Callable[[], bool]] = None,
                       notes: Optional[List[str]] = None) -> np.ndarray:
    """Deep-dose dose rate [mGy/h] on the input grid ((z, y, x), spacing (x, y, z) [mm]).

    ``model``: a :class:`DeepDoseLib.deepdose.model_io.LoadedModel`. Inputs on another voxel size
    are resampled to the model's and the result back (noted in ``notes``).
    """
    notes = notes if notes is not None else []
    spacing = tuple(float(s) for s in spacing_mm)
    model_spacing = model.spacing_mm
    resample = not np.allclose(spacing, model_spacing, rtol=1e-3)
    a, d = activity_Bq_per_mL, density_g_per_cm3
    if resample:
        a = np.clip(resample_array(a, spacing, model_spacing), 0, None)
        d = resample_array(d, spacing, model_spacing, default=AIR_DENSITY_g_per_cm3)
        total_in = float(np.sum(activity_Bq_per_mL, dtype=np.float64)) * float(np.prod(spacing))
        total_out = float(np.sum(a, dtype=np.float64)) * float(np.prod(model_spacing))
        if total_out > 0:
            a = (a * (total_in / total_out)).astype(np.float32)
        notes.append(f"inputs resampled from {'×'.join(f'{s:g}' for s in spacing)} mm to the model's "
                     f"{'×'.join(f'{s:g}' for s in model_spacing)} mm voxels (total activity kept) and back")
    grid = model.card["grid"]
    dose = predict_on_model_grid(
        model.module, model.kernels, a, d, model_spacing,
        tile_size=int(tile_size or grid.get("inference_tile_voxels", grid["tile_size_voxels"])),
        margin=int(grid["margin_voxels"]), overlap=int(grid.get("overlap_voxels", 8)),
        size_multiple=int(grid["size_multiple"]), base_channels=int(model.card.get("architecture", {}).get(
            "base_channels", 16)), device=device, batch_size=batch_size, progress=progress, cancel=cancel,
        notes=notes)
    if resample:
        dose = np.clip(resample_array(dose, model_spacing, spacing, new_shape=activity_Bq_per_mL.shape), 0, None)
    return dose
