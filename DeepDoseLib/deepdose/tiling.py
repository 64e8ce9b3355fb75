"""Tiles of a whole volume for Deep-dose inference: where they lie (:class:`TilePlan`) and how their
predictions are blended back into one volume (:class:`WeightedMerger`).

The split follows MONAI's sliding-window design (a patch plan, a predictor, a merger weighted by an
importance map); the numbers are DeepDose's own:

- tiles have at most ``tile_size`` voxels per axis (fewer on thin axes), are multiples of the pooling
  factor 2^(depth-1) and start on multiples of it, so that pooling aligns in every tile;
- the volume is padded by ``margin`` voxels (activity 0, air), then up to a length where the last
  tile start is on the multiple;
- in each tile the ``margin`` voxels next to its faces get weight 0 (they see the tile's zero padding),
  the rest rises with sin² ramps of ``overlap`` voxels to 1; out = Σ w·tile / Σ w, a partition of unity
  without seams.

Arrays are (z, y, x); sizes and positions are in voxels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

from ..errors import DeepDoseError
from .patches import AIR_DENSITY_g_per_cm3, pad_case

Corner = Tuple[int, int, int]


def blend_ramp(size: int, margin: int, overlap: int) -> np.ndarray:
    """1D blending weight of a tile: 0 in the margins, sin² ramps of ``overlap`` voxels, 1 inside.

    Parameters
    ----------
    size : int
        Tile length [voxels].
    margin : int
        Voxels at each end that get weight 0 [voxels].
    overlap : int
        Length of the sin² ramp from 0 to 1 [voxels] (shortened to half the inner zone when longer).

    Returns
    -------
    numpy.ndarray
        (size,) float64 weights in [0, 1].
    """
    w = np.zeros(size, np.float64)
    inner = np.arange(size - 2 * margin, dtype=np.float64)
    n = len(inner)
    ramp_len = max(1, min(overlap, n // 2))
    up = np.sin(0.5 * np.pi * np.minimum(1.0, (inner + 0.5) / ramp_len)) ** 2
    down = np.sin(0.5 * np.pi * np.minimum(1.0, (n - inner - 0.5) / ramp_len)) ** 2
    w[margin:size - margin] = np.minimum(up, down)
    return w


def tile_starts(length: int, tile: int, stride: int, multiple: int) -> List[int]:
    """Starts [voxels] of tiles covering [0, ``length``) with the given stride; the last one ends at ``length``.

    Raises
    ------
    ValueError
        If a start is not a multiple of ``multiple`` (the pooling factor).
    """
    last = length - tile
    starts = list(range(0, last, stride)) + [last]
    if any(s % multiple for s in starts):
        raise ValueError("tile starts must be multiples of the pooling factor")
    return sorted(set(starts))


def _round_up(n: int, multiple: int) -> int:
    return int(math.ceil(n / multiple) * multiple)


#: Tile placements of :meth:`TilePlan.for_volume` (a model card's ``grid.tile_placement``).
TILE_PLACEMENTS: Tuple[str, ...] = ("edge", "balanced")


def _axis_layout(length: int, tile: int, margin: int, overlap: int, multiple: int) -> Tuple[int, List[int]]:
    """Padded length and tile starts [voxels] of one axis of ``length`` voxels cut into tiles of ``tile``: the
    stride leaves ``margin`` at both tile ends and ``overlap`` for the ramp (a multiple of the pooling factor);
    the axis is padded by ``margin`` before, then up to a length where the last start is on the multiple."""
    stride = tile - 2 * margin - overlap
    stride = max(multiple, stride - stride % multiple)
    padded = tile + _round_up(max(tile, length + 2 * margin) - tile, multiple)
    return padded, tile_starts(padded, tile, stride, multiple)


def _balanced_tile(length: int, tile: int, margin: int, overlap: int, multiple: int) -> int:
    """The shortest tile (a multiple of ``multiple``, with a non-empty inner zone) that covers an axis of
    ``length`` voxels with no more tiles than tiles of ``tile`` voxels need."""
    count = len(_axis_layout(length, tile, margin, overlap, multiple)[1])
    shortest = _round_up(2 * margin + 2 * overlap, multiple)
    for candidate in range(shortest, tile + 1, multiple):
        if len(_axis_layout(length, candidate, margin, overlap, multiple)[1]) <= count:
            return candidate
    return tile


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles of one volume lie (the splitter: MONAI's ``dense_patch_slices`` role).

    Attributes
    ----------
    shape : tuple of int
        The input volume (z, y, x) [voxels].
    margin, overlap : int
        Discarded margin and blending ramp of every tile [voxels].
    tile_shape : tuple of int
        (z, y, x) size of every tile [voxels].
    padded_shape : tuple of int
        The padded volume the tiles cover [voxels]; the input starts at ``margin`` on every axis.
    corners : tuple of (int, int, int)
        Start of every tile in the padded volume [voxels], z slowest, x fastest.
    """

    shape: Tuple[int, int, int]
    margin: int
    overlap: int
    tile_shape: Tuple[int, int, int]
    padded_shape: Tuple[int, int, int]
    corners: Tuple[Corner, ...]

    @classmethod
    def for_volume(cls, shape: Sequence[int], tile_size: int, margin: int, overlap: int,
                   size_multiple: int, placement: str = "edge") -> "TilePlan":
        """The tiles of a volume of ``shape`` (z, y, x) [voxels].

        Parameters
        ----------
        shape : sequence of int
            Input volume (z, y, x) [voxels].
        tile_size : int
            Largest tile edge [voxels].
        margin : int
            Voxels next to each tile face that are discarded [voxels].
        overlap : int
            Blending ramp between neighbouring tiles [voxels].
        size_multiple : int
            Pooling factor 2^(depth-1) of the network: tile sizes and starts are multiples of it.
        placement : str
            ``"edge"``: tiles of ``tile_size`` (fewer voxels on thin axes only); ``"balanced"``: per axis the
            shortest tiles (multiples of the pooling factor) that need no more tiles than ``"edge"`` does — fewer
            voxels through the network, other tile contents (each tile is normalised by its own maximum).
        """
        if placement not in TILE_PLACEMENTS:
            raise ValueError(f"placement must be one of {', '.join(TILE_PLACEMENTS)}")
        shape = tuple(int(n) for n in shape)
        m = int(margin)
        # per axis: tile no larger than needed (thin volumes get flat tiles), a multiple of the pooling
        # factor, with a non-empty inner zone
        tiles = [max(_round_up(min(int(tile_size), _round_up(n + 2 * m, size_multiple)), size_multiple),
                     _round_up(2 * m + 2 * overlap, size_multiple)) for n in shape]
        if placement == "balanced":
            tiles = [_balanced_tile(n, tile, m, overlap, size_multiple) for n, tile in zip(shape, tiles)]
        padded, starts = zip(*(_axis_layout(n, tile, m, overlap, size_multiple) for n, tile in zip(shape, tiles)))
        corners = tuple((z, y, x) for z in starts[0] for y in starts[1] for x in starts[2])
        return cls(shape, m, int(overlap), tuple(tiles), tuple(padded), corners)

    @property
    def evaluated_voxels(self) -> int:
        """Voxels sent through the network: tiles × voxels per tile."""
        return len(self.corners) * int(np.prod(self.tile_shape))

    @property
    def tile_edge(self) -> int:
        """Edge of the cube with a tile's volume [voxels] (sizes the batches)."""
        return round(float(np.prod(self.tile_shape)) ** (1 / 3))

    @property
    def core(self) -> Tuple[slice, slice, slice]:
        """The input volume inside the padded one."""
        return tuple(slice(self.margin, self.margin + n) for n in self.shape)

    def tile(self, corner: Corner) -> Tuple[slice, slice, slice]:
        """The (z, y, x) slices of the tile starting at ``corner`` in the padded volume."""
        return tuple(slice(c, c + t) for c, t in zip(corner, self.tile_shape))

    def pad(self, activity_Bq_per_mL: np.ndarray, density_g_per_cm3: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Pad activity [Bq/mL] with 0 and density [g/cm³] with air to ``padded_shape`` (float32)."""
        m = self.margin
        a, d = pad_case(activity_Bq_per_mL, density_g_per_cm3, m)
        after = [(0, p - s - 2 * m) for p, s in zip(self.padded_shape, self.shape)]
        a = np.pad(a, after, constant_values=0.0)
        d = np.pad(d, after, constant_values=AIR_DENSITY_g_per_cm3)
        return a, d

    def importance_map(self) -> np.ndarray:
        """(z, y, x) float32 blending weight of a tile: the product of the 1D ramps (:func:`blend_ramp`)."""
        wz, wy, wx = (blend_ramp(tile, self.margin, self.overlap) for tile in self.tile_shape)
        return (wz[:, None, None] * wy[None, :, None] * wx[None, None, :]).astype(np.float32)


class WeightedMerger:
    """Blends tile predictions into one volume: out = Σ w·tile / Σ w (MONAI's ``AvgMerger`` role, with the
    importance map of :meth:`TilePlan.importance_map`).

    Sums are kept in float64; the weighted tile ``w·tile`` is formed in float32.
    """

    def __init__(self, plan: TilePlan):
        self.plan = plan
        self.weight = plan.importance_map()
        self.values = np.zeros(plan.padded_shape, np.float64)
        self.weights = np.zeros(plan.padded_shape, np.float64)

    def aggregate(self, tile_values, corner: Corner) -> None:
        """Add one tile's prediction ((z, y, x) of ``plan.tile_shape``, or one value for the whole tile; any unit)
        at ``corner``."""
        where = self.plan.tile(corner)
        self.values[where] += self.weight * tile_values
        self.weights[where] += self.weight

    def finalize(self) -> np.ndarray:
        """The blended volume on the input grid ((z, y, x) float32, negative values clipped to 0).

        Raises
        ------
        DeepDoseError
            If a voxel of the input volume was covered by no tile (an internal error).
        """
        core = self.plan.core
        if (self.weights[core] <= 0).any():
            raise DeepDoseError("internal error: a voxel was not covered by any tile")
        return np.clip(self.values[core] / self.weights[core], 0.0, None).astype(np.float32)

    def padded(self) -> np.ndarray:
        """The blended volume over the whole padded grid ((z, y, x) float32, ≥ 0; 0 where no tile has weight): for
        a mirrored volume, whose core lies elsewhere in the padding of the same plan."""
        out = np.zeros(self.plan.padded_shape, np.float32)
        np.divide(self.values, self.weights, out=out, where=self.weights > 0, casting="unsafe")
        return np.clip(out, 0.0, None)
