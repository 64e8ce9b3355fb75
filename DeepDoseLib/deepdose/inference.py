"""Patch-wise Deep-dose inference on whole volumes.

1. The inputs are resampled to the model's voxel size (linear; the activity is rescaled to keep the
   total activity) and padded by the margin (activity 0, air).
2. The physics channels (:mod:`.channels`: density-scaled VSV baseline, surrounding density) are
   computed over the whole padded volume (FFT; the long-range photon dose reaches every tile).
3. Overlapping tiles (at most ``tile_size`` voxels per axis, fewer on thin axes; starts on multiples of
   2^(depth-1), so pooling aligns: :class:`.tiling.TilePlan`) are predicted one by one
   on the CPU (channels-last layout), in batches sized to the free memory on CUDA (:class:`TileRunner`); in
   each tile the ``margin`` voxels next to its faces are discarded (they see the tile's zero padding) and the
   rest is blended with a smooth sin² ramp of ``overlap`` voxels: out = Σ w·tile / Σ w, a partition of unity
   without seams (:class:`.tiling.WeightedMerger`).
4. The result is resampled back onto the input grid (linear).
CUDA out-of-memory halves the batch; at one tile it falls back to the CPU (and says so).
"""
from __future__ import annotations

import logging
import os
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk
import torch

from ..errors import Cancelled, DeepDoseError
from ..progress import ProgressCallback
from ..methods.scaled_vsv import ScaledKernels
from .channels import input_channels
from .patches import AIR_DENSITY_g_per_cm3
from .precision import network_autocast, resolve_precision
from .tiling import TilePlan, WeightedMerger

logger = logging.getLogger(__name__)
class DeepDoseCancelled(Cancelled):
    """Raised when the cancel callback asked the inference to stop (no result)."""


def _available_bytes(device: str) -> int:
    if device.startswith("cuda"):
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 2 << 30


def activation_bytes_per_voxel(base_channels: int) -> int:
    """Memory of the network's activations per tile voxel [bytes]: ~12·base_channels float32 maps at full
    resolution, a generous bound for the U-Net (sizes the batches)."""
    return 4 * 12 * max(1, int(base_channels))


def tiles_per_batch(tile: int, base_channels: int, device: str, fraction: float = 0.25, max_batch: int = 16) -> int:
    """Tiles per forward pass: one on the CPU; on CUDA as many as let the activations
    (:func:`activation_bytes_per_voxel`) fit into ``fraction`` of the free memory.

    One tile at a time is the fastest on the CPU (``benchmarks/bench_deepdose_tiles.py``; 8 tiles of 96³ on 2
    cores, bfloat16, channels-last: 2.25 s one by one, 3.13 s as one batch of 8): a tile's activations stay
    closer to the caches.

    Parameters
    ----------
    tile : int
        Tile edge [voxels].
    base_channels : int
        Feature maps of the network at full resolution.
    device : str
        ``"cpu"`` or ``"cuda[:n]"``: whose free memory counts.
    fraction : float
        Share of the free memory the activations may take.
    max_batch : int
        Upper bound on the result.
    """
    if not device.startswith("cuda"):
        return 1
    per_tile = tile ** 3 * activation_bytes_per_voxel(base_channels)
    return int(max(1, min(max_batch, fraction * _available_bytes(device) // per_tile)))


class TileRunner:
    """Forward passes of the network over batches of tiles, with the out-of-memory policy.

    CUDA out-of-memory halves the batch and retries; with one tile per batch the module moves to the
    CPU and the inference continues there. Each step is written to ``notes`` and logged.

    Parameters
    ----------
    module : callable
        The network (a :class:`~.unet.DeepDoseUNet` or its TorchScript export): (N, 5, z, y, x) inputs →
        (N, 1, z, y, x) dose rate [mGy/h].
    device : str
        Where the tiles are sent (``"cpu"``, ``"cuda[:n]"``).
    batch_size : int
        Tiles per forward pass to start with.
    notes : list of str
        Receives the out-of-memory notes.
    precision : str
        Arithmetic of the network's layers: ``"float32"``, ``"bfloat16"`` or ``"auto"``
        (:mod:`.precision`: bfloat16 on a CPU with native bfloat16 instructions, else float32).
    cpu_channels_last : bool
        On the CPU, weights and tiles in the channels-last layout (default): oneDNN's 3D convolutions then need
        no reorder (8 tiles of 96³ on 2 cores: bfloat16 3.34 → 2.25 s, float32 7.14 → 5.47 s; the same
        arithmetic up to the order of the sums). CUDA keeps the default layout (not measured there).
    """

    def __init__(self, module, device: str, batch_size: int, notes: List[str], precision: str = "float32",
                 cpu_channels_last: bool = True):
        self.module, self.device, self.batch_size, self.notes = module, device, int(batch_size), notes
        self.precision = resolve_precision(precision, device)
        self.cpu_channels_last = bool(cpu_channels_last)
        self._set_layout()

    @property
    def _layout(self) -> torch.memory_format:
        return torch.channels_last_3d if self.device == "cpu" and self.cpu_channels_last else torch.contiguous_format

    def _set_layout(self) -> None:
        if hasattr(self.module, "to"):
            self.module = self.module.to(memory_format=self._layout)

    def predict(self, tiles: np.ndarray) -> np.ndarray:
        """Dose rate [mGy/h] of tiles (N, 5, z, y, x) float32 → (N, z, y, x) float32, in batches of
        at most ``batch_size`` tiles (shrunk on out-of-memory)."""
        done, results = 0, []
        while done < len(tiles):
            batch = tiles[done:done + self.batch_size]
            try:
                results.append(self._forward(batch))
            except torch.cuda.OutOfMemoryError:
                self._make_room()
                continue
            done += len(batch)
        return np.concatenate(results)

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        # plain TorchScript execution: the profiling executor re-specialises and compiles fusions for
        # each new tile shape during the first calls (on an H200: 2.8 s, then 0.56 s, then 0.10 s for the
        # same small case; 0.11 s from the first call without it), and the convolutions gain nothing from it
        with torch.no_grad(), torch.jit.optimized_execution(False), network_autocast(self.precision, self.device):
            x = torch.as_tensor(batch, device=self.device).contiguous(memory_format=self._layout)
            return self.module(x).float().cpu().numpy()[:, 0]

    def _make_room(self) -> None:
        torch.cuda.empty_cache()
        if self.batch_size > 1:
            self.batch_size = max(1, self.batch_size // 2)
            self.notes.append(f"CUDA out of memory: {self.batch_size} tile(s) per batch")
        else:
            self.device = "cpu"
            self.module = self.module.to("cpu") if hasattr(self.module, "to") else self.module
            self._set_layout()
            self.notes.append("CUDA out of memory with one tile: Deep-dose inference continued on the CPU")
        logger.warning(self.notes[-1])


def model_tile_plan(model, shape: Sequence[int], tile_size: Optional[int] = None) -> TilePlan:
    """The tiles of a volume of ``shape`` (z, y, x) on the model's grid, with the card's margin, ramp and pooling:
    tiles of at most ``tile_size`` voxels per axis (:meth:`.tiling.TilePlan.for_volume`), by default the card's
    inference tile (96 for the bundled models).

    The placement comes from the card's ``grid.tile_placement`` (``edge`` when absent;
    :meth:`.tiling.TilePlan.for_volume`). The tile edge is part of what the model was validated with, not a free
    speed setting: each tile is normalised by its own scale (the maximum of its activity and baseline), so a larger
    tile shows the network a low-uptake organ at a smaller fraction of the tile's scale than training did. One tile for a whole held-out torso
    (heldout_torso_12, a hot bone lesion, inactive lungs) moved the liver from +0.4 % to +20 % and the lungs from
    −5 % to +83 % of MC (before the bound); 112³ and 128³ tiles already moved the kidneys by +3 … +11 %, 48³–96³
    tiles agree (docs/validation/deepdose_generalization.md). Where the tiles lie matters too: "balanced" tiles
    (per axis the shortest that need no more of them, 27 % fewer voxels on the demo torso) moved heldout_torso_12's
    spleen from −1.5 % to +9.1 % and its liver from +0.3 % to +7.5 % of MC. Since the tile-scale fallback
    (:attr:`~DeepDoseLib.deepdose_rule.SafetyRule.min_tile_scale_fraction`) they leave the Lu-177 model's benchmark
    figures unchanged (its card says ``tile_placement: balanced``), not the Ga-68 model's lungs (its card keeps
    ``edge``).
    """
    grid = model.card["grid"]
    overlap = int(grid.get("overlap_voxels", 8))
    edge = int(tile_size) if tile_size else int(grid.get("inference_tile_voxels", model.tile_size))
    return TilePlan.for_volume(shape, edge, model.margin, overlap, model.size_multiple,
                               str(grid.get("tile_placement", "edge")))


def predict_on_model_grid(module, kernels: ScaledKernels, activity_Bq_per_mL: np.ndarray,
                          density_g_per_cm3: np.ndarray, spacing_mm: Sequence[float], plan: TilePlan, *,
                          base_channels: int = 16, device: str = "cpu", batch_size: Optional[int] = None,
                          progress: Optional[ProgressCallback] = None, cancel: Optional[Callable[[], bool]] = None,
                          notes: Optional[List[str]] = None, precision: str = "float32") -> np.ndarray:
    """Dose rate [mGy/h] (z, y, x) on the model's grid by overlapping tiles (see the module docstring).

    Physics channels over the padded volume → :class:`TileRunner` → :class:`.tiling.WeightedMerger`.

    Parameters
    ----------
    module : callable
        The network (see :class:`TileRunner`).
    kernels : ScaledKernels
        The model's kernels (density-scaled VSV baseline); their voxel size must equal ``spacing_mm``.
    activity_Bq_per_mL, density_g_per_cm3 : numpy.ndarray
        (z, y, x) activity [Bq/mL] and density [g/cm³] on the model's grid.
    spacing_mm : sequence of float
        Voxel size (x, y, z) [mm].
    plan : TilePlan
        The tiles of this volume (:func:`model_tile_plan`, or :meth:`.tiling.TilePlan.for_volume`).
    base_channels : int
        Feature maps of the network at full resolution (sizes the batches when ``batch_size`` is None).
    device : str
        ``"cpu"`` or ``"cuda[:n]"``.
    batch_size : int, optional
        Tiles per forward pass; by default sized to the free memory (:func:`tiles_per_batch`).
    progress : callable, optional
        ``progress(fraction, message)``.
    cancel : callable, optional
        Returns True to stop (:class:`DeepDoseCancelled` is raised between batches).
    notes : list of str, optional
        Receives notes (out-of-memory fallbacks).
    precision : str
        Arithmetic of the network's layers (see :class:`TileRunner`).

    Returns
    -------
    numpy.ndarray
        (z, y, x) float32 dose rate [mGy/h], ≥ 0.
    """
    notes = notes if notes is not None else []
    if not np.allclose(tuple(spacing_mm), kernels.spacing_mm, rtol=1e-3):
        raise DeepDoseError(f"voxel size {tuple(spacing_mm)} mm differs from the model kernels' {kernels.spacing_mm} mm")
    a, d = plan.pad(activity_Bq_per_mL, density_g_per_cm3)
    if progress is not None:
        progress(0.0, "Deep-dose: physics channels (density-scaled VSV)")
    inputs = input_channels(a, d, kernels, device=device if device.startswith("cuda") else "cpu")
    runner = TileRunner(module, device, batch_size or tiles_per_batch(plan.tile_edge, base_channels, device), notes,
                        precision)

    def tiles_done(done: int, total: int) -> None:
        if progress is not None:
            progress(done / total, f"Deep-dose: {done}/{total} tiles of {'×'.join(str(t) for t in plan.tile_shape)} "
                                   "voxels")

    return predict_tiles(runner, inputs, plan, cancel=cancel, tiles_done=tiles_done).finalize()


def predict_tiles(runner: "TileRunner", inputs: np.ndarray, plan: TilePlan,
                  cancel: Optional[Callable[[], bool]] = None,
                  tiles_done: Optional[Callable[[int, int], None]] = None) -> WeightedMerger:
    """Every tile of ``plan`` through ``runner``, blended: the merger (``finalize()``: the input grid;
    ``padded()``: the whole padded grid). ``inputs``: (channels, z, y, x) over the padded grid;
    ``tiles_done(done, total)`` after each batch; ``cancel()`` polled between batches."""
    merger = WeightedMerger(plan)
    corners = plan.corners
    done = 0
    while done < len(corners):
        if cancel is not None and cancel():
            raise DeepDoseCancelled("Deep-dose inference cancelled.")
        chunk = corners[done:done + runner.batch_size]
        predicted = runner.predict(np.stack([inputs[(slice(None),) + plan.tile(corner)] for corner in chunk]))
        for corner, tile_dose in zip(chunk, predicted):
            merger.aggregate(tile_dose, corner)
        done += len(chunk)
        if tiles_done is not None:
            tiles_done(done, len(corners))
    return merger


def tile_scale_map(inputs: np.ndarray, plan: TilePlan, dose_per_activity: float) -> np.ndarray:
    """The dose-rate scale [mGy/h] of the tiles that predicted each voxel, blended like the predictions, over the
    padded grid (0 where no tile has weight).

    Each tile is normalised by its own scale s (:meth:`.unet.DeepDoseUNet.patch_scale`: the larger of its maximum
    activity and its maximum baseline dose rate / k); the network's output is a residual in units of s·k, and its
    error there is close to absolute below a baseline of ≈ 0.1·s·k (the training loss weights voxels by
    1/(B/(s·k) + 0.1)²). So B / (this map) says how large a voxel's dose is for the network that predicted it.

    Parameters
    ----------
    inputs : numpy.ndarray
        (5, z, y, x) input channels over the padded grid (:mod:`.channels`).
    plan : TilePlan
        The tiles.
    dose_per_activity : float
        k [mGy/h per Bq/mL] of the network.
    """
    merger = WeightedMerger(plan)
    for corner in plan.corners:
        tile = inputs[(slice(None),) + plan.tile(corner)]
        scale = max(float(tile[0].max()) * dose_per_activity, float((tile[2] + tile[3]).max()))
        merger.aggregate(scale, corner)  # a constant tile
    return merger.padded()


def resample_array(array: np.ndarray, spacing_mm: Sequence[float], new_spacing_mm: Sequence[float],
                   new_shape: Optional[Tuple[int, int, int]] = None, default: float = 0.0) -> np.ndarray:
    """Linear resampling of a (z, y, x) array to another voxel size over the same physical extent
    (both grids centred on the same point).

    Parameters
    ----------
    array : numpy.ndarray
        (z, y, x) values (any unit).
    spacing_mm, new_spacing_mm : sequence of float
        Voxel sizes (x, y, z) [mm] of the array and of the result.
    new_shape : tuple of int, optional
        (z, y, x) shape of the result; by default the extent divided by ``new_spacing_mm``, rounded.
    default : float
        Value outside the array.

    Returns
    -------
    numpy.ndarray
        (z, y, x) float32.
    """
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


def resample_to_model_grid(activity_Bq_per_mL: np.ndarray, density_g_per_cm3: np.ndarray,
                           spacing_mm: Sequence[float], model_spacing_mm: Sequence[float]) -> Tuple[np.ndarray, np.ndarray]:
    """Activity [Bq/mL] and density [g/cm³] resampled (linearly) to the model's voxel size; the activity is
    rescaled so that the total activity is kept, the density outside the input is air."""
    a = np.clip(resample_array(activity_Bq_per_mL, spacing_mm, model_spacing_mm), 0, None)
    d = resample_array(density_g_per_cm3, spacing_mm, model_spacing_mm, default=AIR_DENSITY_g_per_cm3)
    total_in = float(np.sum(activity_Bq_per_mL, dtype=np.float64)) * float(np.prod(spacing_mm))
    total_out = float(np.sum(a, dtype=np.float64)) * float(np.prod(model_spacing_mm))
    if total_out > 0:
        a = (a * (total_in / total_out)).astype(np.float32)
    return a, d


def deepdose_dose_rate(activity_Bq_per_mL: np.ndarray, density_g_per_cm3: np.ndarray, spacing_mm: Sequence[float],
                       model, *, device: str = "cpu", tile_size: Optional[int] = None,
                       batch_size: Optional[int] = None, progress: Optional[ProgressCallback] = None,
                       cancel: Optional[Callable[[], bool]] = None,
                       notes: Optional[List[str]] = None, precision: str = "float32") -> np.ndarray:
    """Deep-dose dose rate [mGy/h] on the input grid ((z, y, x), spacing (x, y, z) [mm]).

    Inputs on another voxel size are resampled to the model's and the result back (noted in ``notes``).

    Parameters
    ----------
    activity_Bq_per_mL, density_g_per_cm3 : numpy.ndarray
        (z, y, x) activity [Bq/mL] and density [g/cm³].
    spacing_mm : sequence of float
        Voxel size (x, y, z) [mm].
    model : DeepDoseLib.deepdose.model_io.LoadedModel
        The network, its kernels and its card (tiling in ``card["grid"]``).
    device : str
        ``"cpu"`` or ``"cuda[:n]"``.
    tile_size : int, optional
        Largest tile edge [voxels]; by default the card's inference tile (:func:`model_tile_plan`).
    batch_size, progress, cancel, notes, precision
        As in :func:`predict_on_model_grid`.

    Returns
    -------
    numpy.ndarray
        (z, y, x) float32 dose rate [mGy/h] on the input grid.
    """
    notes = notes if notes is not None else []
    spacing = tuple(float(s) for s in spacing_mm)
    model_spacing = model.spacing_mm
    resample = not np.allclose(spacing, model_spacing, rtol=1e-3)
    a, d = activity_Bq_per_mL, density_g_per_cm3
    if resample:
        a, d = resample_to_model_grid(a, d, spacing, model_spacing)
        notes.append(f"inputs resampled from {'×'.join(f'{s:g}' for s in spacing)} mm to the model's "
                     f"{'×'.join(f'{s:g}' for s in model_spacing)} mm voxels (total activity kept) and back")
    dose = predict_on_model_grid(
        model.module, model.kernels, a, d, model_spacing, model_tile_plan(model, a.shape, tile_size),
        base_channels=model.base_channels, device=device,
        batch_size=batch_size, progress=progress, cancel=cancel, notes=notes, precision=precision)
    if resample:
        dose = np.clip(resample_array(dose, model_spacing, spacing, new_shape=activity_Bq_per_mL.shape), 0, None)
    return dose
