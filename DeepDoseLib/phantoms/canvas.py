"""A voxel canvas for analytic anatomy: shapes are evaluated only inside their bounding box.

Coordinates: LPS millimetres (x: right → left, y: anterior → posterior, z: inferior → superior).
Shapes are defined in a *template* space; a world point ``p`` is mapped to the template point
``p / scale + u(p)`` where ``scale`` is the per-axis body scaling and ``u`` a smooth displacement
field (elastic deformation, template mm). Arrays are (z, y, x).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np


def rotation_matrix(deg_x: float = 0.0, deg_y: float = 0.0, deg_z: float = 0.0) -> np.ndarray:
    """Rotation R = Rz · Ry · Rx (angles in degrees); local = Rᵀ (p − c)."""
    ax, ay, az = np.radians([deg_x, deg_y, deg_z])
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclass
class Region:
    """A box of the canvas: ``slices`` into the (z, y, x) arrays and template coordinates [mm] there."""

    slices: Tuple[slice, slice, slice]
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    z0: Optional[np.ndarray] = None  # undeformed template z, (nz, 1, 1)

    def local(self, centre: Sequence[float], rotation: Optional[np.ndarray] = None):
        """Coordinates relative to ``centre``, rotated into the shape's frame when ``rotation`` is given."""
        dx, dy, dz = self.x - float(centre[0]), self.y - float(centre[1]), self.z - float(centre[2])
        if rotation is None:
            return dx, dy, dz
        r = [[float(v) for v in row] for row in rotation]
        return (r[0][0] * dx + r[1][0] * dy + r[2][0] * dz, r[0][1] * dx + r[1][1] * dy + r[2][1] * dz,
                r[0][2] * dx + r[1][2] * dy + r[2][2] * dz)

    def ellipsoid(self, centre: Sequence[float], semi_axes: Sequence[float],
                  rotation: Optional[np.ndarray] = None) -> np.ndarray:
        """Normalised radius² q (q ≤ 1 inside) of an ellipsoid."""
        lx, ly, lz = self.local(centre, rotation)
        a, b, c = (float(v) for v in semi_axes)
        return (lx / a) ** 2 + (ly / b) ** 2 + (lz / c) ** 2

    def capsule(self, p0: Sequence[float], p1: Sequence[float]) -> np.ndarray:
        """Distance [mm] to the segment p0–p1 (a capsule is ``distance <= radius``)."""
        a = [float(v) for v in p0]
        d = [float(q) - p for p, q in zip(a, p1)]
        length2 = max(d[0] ** 2 + d[1] ** 2 + d[2] ** 2, 1e-9)
        rx, ry, rz = self.x - a[0], self.y - a[1], self.z - a[2]
        t = np.clip((rx * d[0] + ry * d[1] + rz * d[2]) * (1.0 / length2), 0.0, 1.0)
        return np.sqrt((rx - t * d[0]) ** 2 + (ry - t * d[1]) ** 2 + (rz - t * d[2]) ** 2)


class Canvas:
    """Label canvas on a regular LPS grid with optional scaling and elastic deformation.

    Args:
        shape_zyx: array shape.
        origin_mm: LPS position (x, y, z) of voxel (0, 0, 0).
        spacing_mm: voxel size (x, y, z).
        scale: per-axis scaling (x, y, z) world = template × scale (template origin fixed).
        displacement: (3, z, y, x) float32 template-space displacement [mm] (x, y, z components) or None.
    """

    def __init__(self, shape_zyx: Tuple[int, int, int], origin_mm: Sequence[float], spacing_mm: Sequence[float],
                 scale: Sequence[float] = (1.0, 1.0, 1.0), displacement: Optional[np.ndarray] = None) -> None:
        self.shape = tuple(int(s) for s in shape_zyx)
        self.origin = np.asarray(origin_mm, dtype=np.float64)
        self.spacing = np.asarray(spacing_mm, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.axes = [self.origin[i] + self.spacing[i] * np.arange(self.shape[2 - i]) for i in range(3)]  # world x,y,z
        self.displacement = displacement
        self.max_disp = float(np.abs(displacement).max()) if displacement is not None else 0.0
        self.labels = np.zeros(self.shape, dtype=np.uint8)

    def region(self, lo: Sequence[float], hi: Sequence[float]) -> Optional[Region]:
        """Template-space box [lo, hi] (x, y, z mm) → :class:`Region`, or None when outside the grid."""
        slices = []
        for i in range(3):
            margin = self.max_disp * self.scale[i] + self.spacing[i]
            w_lo, w_hi = lo[i] * self.scale[i] - margin, hi[i] * self.scale[i] + margin
            a = int(np.searchsorted(self.axes[i], w_lo, side="left"))
            b = int(np.searchsorted(self.axes[i], w_hi, side="right"))
            if b <= a:
                return None
            slices.append(slice(a, b))
        sx, sy, sz = slices
        zyx = (sz, sy, sx)
        x = (self.axes[0][sx] / self.scale[0]).astype(np.float32)[None, None, :]
        y = (self.axes[1][sy] / self.scale[1]).astype(np.float32)[None, :, None]
        z = (self.axes[2][sz] / self.scale[2]).astype(np.float32)[:, None, None]
        z0 = z
        if self.displacement is not None:
            u = self.displacement
            x = x + u[0][zyx]
            y = y + u[1][zyx]
            z = z + u[2][zyx]
        else:
            shape = (sz.stop - sz.start, sy.stop - sy.start, sx.stop - sx.start)
            x, y, z = (np.broadcast_to(a, shape) for a in (x, y, z))
        return Region(zyx, x, y, z, z0)

    def paint(self, region: Optional[Region], mask: np.ndarray, label: int, only: Optional[Sequence[int]] = None,
              keep: Optional[Sequence[int]] = None) -> int:
        """Set ``label`` where ``mask``; ``only``: overwrite just these labels; ``keep``: never overwrite these.

        Returns the number of voxels painted.
        """
        if region is None:
            return 0
        target = self.labels[region.slices]
        mask = np.asarray(mask, dtype=bool)
        if only is not None:
            mask = mask & np.isin(target, np.asarray(only, dtype=np.uint8))
        if keep is not None:
            mask = mask & ~np.isin(target, np.asarray(keep, dtype=np.uint8))
        target[mask] = label
        return int(mask.sum())
