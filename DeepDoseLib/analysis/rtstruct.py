"""DICOM RT Structure Set contours rasterised onto a dose grid as fractional masks (pure numpy).

Each ROI is a stack of closed planar polygons (LPS mm). Rasterisation, on the dose grid's own index
space (so any orientation works as long as the contour planes are parallel to the dose frames):

* **through-plane**: a dose frame takes the contour plane nearest to it, within half the ROI's plane
  spacing (a contour plane stands for a slab of that thickness, as in dicompyler and most planning
  systems); frames beyond the first/last plane's half slab stay empty;
* **in-plane**: a point is inside when a ray from it crosses the plane's polygon edges an odd number
  of times (even-odd rule over all polygons of the plane, so holes and islands drawn as separate
  contours are handled by XOR, as dicompyler does);
* **oversampling** ``n``: ``n × n × n`` sub-points per dose voxel (sub-cell centres); the voxel
  fraction is the share of inside points (``n = 1``: voxel centres only, 0/1 masks).

The result is a float32 (z, y, x) array of fractions for :mod:`DeepDoseLib.analysis.dvh` and
:mod:`.organs`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List, Union

import numpy as np
import pydicom
import SimpleITK as sitk

from ..errors import DeepDoseInputError
from .masks import _check_oversampling

#: A contour must lie in one dose-grid plane to this tolerance (in slices).
PLANE_TOLERANCE_SLICES = 0.01


@dataclass
class RTStructROI:
    """One ROI of a structure set: number, name and its closed polygons, each an (n, 3) LPS array in mm."""

    number: int
    name: str
    polygons: List[np.ndarray]


def read_rtstruct(source: Union[str, "os.PathLike[str]", pydicom.Dataset]) -> Dict[str, RTStructROI]:
    """ROIs of an RT Structure Set file (name → ROI); ROIs without closed planar contours are left out."""
    ds = source if isinstance(source, pydicom.Dataset) else pydicom.dcmread(os.fspath(source), force=True)
    if getattr(ds, "Modality", "RTSTRUCT") != "RTSTRUCT" or "StructureSetROISequence" not in ds:
        raise DeepDoseInputError(f"{getattr(source, 'filename', source)} is not a DICOM RT Structure Set.")
    names = {int(item.ROINumber): str(item.ROIName) for item in ds.StructureSetROISequence}
    rois: Dict[str, RTStructROI] = {}
    for item in ds.get("ROIContourSequence", []):
        number = int(item.ReferencedROINumber)
        polygons = [np.asarray(c.ContourData, dtype=np.float64).reshape(-1, 3) for c in item.get("ContourSequence", [])
                    if str(c.get("ContourGeometricType", "")) == "CLOSED_PLANAR" and len(c.ContourData) >= 9]
        if polygons:
            name = names.get(number, f"ROI {number}")
            rois[name] = RTStructROI(number, name, polygons)
    return rois


def _inside_even_odd(polygons: List[np.ndarray], xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Bool (len(ys), len(xs)) grid: points (xs[j], ys[i]) inside the polygons by the even-odd rule."""
    starts = np.concatenate([p for p in polygons])
    ends = np.concatenate([np.roll(p, -1, axis=0) for p in polygons])
    x0, y0, x1, y1 = starts[:, 0], starts[:, 1], ends[:, 0], ends[:, 1]
    out = np.zeros((ys.size, xs.size), dtype=bool)
    rows = np.nonzero((ys >= min(y0.min(), y1.min())) & (ys <= max(y0.max(), y1.max())))[0]
    if rows.size == 0:
        return out
    y = ys[rows][:, None]
    crosses = ((y0 <= y) & (y < y1)) | ((y1 <= y) & (y < y0))  # half-open: each vertex counted once
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = np.where(crosses, x0 + (y - y0) * (x1 - x0) / (y1 - y0), np.inf)
    x_cross.sort(axis=1)
    for r, row in enumerate(rows):
        n_left = np.searchsorted(x_cross[r], xs, side="left")  # crossings strictly left of each point
        out[row] = (n_left % 2) == 1
    return out


def rasterise_roi(roi: RTStructROI, dose_grid: sitk.Image, oversampling: int = 1) -> np.ndarray:
    """Voxel fractions of ``roi`` on the grid of ``dose_grid``: float32 (z, y, x) in [0, 1]."""
    n = _check_oversampling(oversampling)
    size = dose_grid.GetSize()
    matrix = np.asarray(dose_grid.GetDirection(), float).reshape(3, 3) * np.asarray(dose_grid.GetSpacing(), float)
    inverse = np.linalg.inv(matrix)
    origin = np.asarray(dose_grid.GetOrigin(), float)
    planes: Dict[float, List[np.ndarray]] = {}
    for polygon in roi.polygons:
        index = (polygon - origin) @ inverse.T  # continuous (x, y, z) index of each vertex
        k = index[:, 2]
        if np.ptp(k) > PLANE_TOLERANCE_SLICES:
            raise DeepDoseInputError(f"A contour of ROI {roi.name!r} is not parallel to the dose frames "
                                     f"(spans {np.ptp(k):.3f} slices); resample the dose to the contours' planes.")
        planes.setdefault(round(float(k.mean()), 3), []).append(index[:, :2])
    plane_k = np.array(sorted(planes))
    half_slab = 0.5 * (float(np.median(np.diff(plane_k))) if plane_k.size > 1 else 1.0)
    steps = (np.arange(n) + 0.5) / n - 0.5
    xs = (np.arange(size[0])[:, None] + steps[None, :]).ravel()
    ys = (np.arange(size[1])[:, None] + steps[None, :]).ravel()
    cache: Dict[int, np.ndarray] = {}
    fraction = np.zeros((size[2], size[1], size[0]), dtype=np.float32)
    for frame in range(size[2]):
        for dz in steps:
            nearest = int(np.argmin(np.abs(plane_k - (frame + dz))))
            if abs(plane_k[nearest] - (frame + dz)) > half_slab + 1e-6:
                continue
            if nearest not in cache:
                inside = _inside_even_odd(planes[plane_k[nearest]], xs, ys)
                cache[nearest] = inside.reshape(size[1], n, size[0], n).mean(axis=(1, 3), dtype=np.float64)
            fraction[frame] += (cache[nearest] / n).astype(np.float32)
    return np.clip(fraction, 0.0, 1.0)
