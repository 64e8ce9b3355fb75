"""Structure masks on the dose grid, with partial-volume fractions.

A structure (organ, tumour) usually comes as a label map on the CT grid, while the dose lies on the
PET grid. Nearest-neighbour resampling of the labels would make every dose voxel wholly in or out
of an organ, which biases small structures and organ borders. Here each dose voxel is instead
**supersampled**: ``oversampling`` points per axis (``n³`` points, at the centres of the ``n × n × n``
sub-cells of the voxel, in the dose grid's own index space), each point takes the label of the
label-map voxel it falls in (nearest neighbour, physical LPS space, so oblique and flipped grids are
exact), and the fraction of points carrying a label is that label's **voxel fraction** in [0, 1].
Points outside the label map count as background, so a structure only partly inside the dose grid
gets fractions only where the grids overlap. On identical grids the fractions are exactly 0 or 1.

Every statistic in :mod:`DeepDoseLib.analysis` weights a voxel by its fraction × voxel volume (and ×
density for masses and mass-weighted means). Masks are stored cropped to the structure's bounding box
on the dose grid (:class:`CroppedMask`) so that a 200×200×400 grid with a hundred labels stays small.
Arrays are numpy ``(z, y, x)``.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Sequence, Tuple, Union

import numpy as np
import SimpleITK as sitk

from ..errors import DeepDoseInputError
from ..geometry import same_grid

#: Sub-samples per axis and dose voxel (27 points per voxel): fractions in steps of 1/27, edge
#: positions resolved to a third of a voxel; a compromise between accuracy and time.
DEFAULT_OVERSAMPLING = 3
MAX_OVERSAMPLING = 6  # counts are kept in uint8: 6³ = 216 < 256

Box = Tuple[slice, slice, slice]


@dataclass
class CroppedMask:
    """Voxel fractions of one structure on the dose grid, cropped to its bounding box.

    Attributes:
        box: (z, y, x) slices of the dose grid that hold the structure.
        fraction: float32 array of the box's shape, values in [0, 1].
        grid_shape: (z, y, x) shape of the whole dose grid.
    """

    box: Box
    fraction: np.ndarray
    grid_shape: Tuple[int, int, int]

    @property
    def is_empty(self) -> bool:
        """True when no dose voxel holds any part of the structure."""
        return self.fraction.size == 0 or not bool(np.any(self.fraction > 0))

    def full(self) -> np.ndarray:
        """The fractions on the whole dose grid (float32, (z, y, x))."""
        out = np.zeros(self.grid_shape, dtype=np.float32)
        out[self.box] = self.fraction
        return out

    def values_and_weights(self, array: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """``array`` (dose-grid shaped) at the voxels with a non-zero fraction, and those fractions."""
        fraction = self.fraction
        keep = fraction > 0
        return np.asarray(array[self.box])[keep], fraction[keep].astype(np.float64)


def subsample_offsets(oversampling: int) -> np.ndarray:
    """Sub-cell centres of one voxel in index units, shape (n³, 3), order (x, y, z), each in (-0.5, 0.5)."""
    n = _check_oversampling(oversampling)
    steps = (np.arange(n) + 0.5) / n - 0.5
    return np.array(list(itertools.product(steps, steps, steps)), dtype=np.float64)


def _check_oversampling(oversampling: int) -> int:
    n = int(oversampling)
    if n != oversampling or not 1 <= n <= MAX_OVERSAMPLING:
        raise DeepDoseInputError(f"oversampling must be an integer from 1 to {MAX_OVERSAMPLING} (sub-samples per axis "
                                 f"and dose voxel), got {oversampling!r}.")
    return n


def _label_boxes(labels: sitk.Image, values: Sequence[int], dose_grid: sitk.Image) -> Dict[int, Optional[Box]]:
    """Bounding box of each label on the dose grid (padded by one voxel; None when outside the grid)."""
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(labels)
    present = set(stats.GetLabels())
    size = np.array(dose_grid.GetSize())
    boxes: Dict[int, Optional[Box]] = {}
    for value in values:
        if value not in present:
            boxes[value] = None
            continue
        bb = stats.GetBoundingBox(int(value))  # (ix, iy, iz, nx, ny, nz) in the label grid
        lo, n = np.array(bb[:3], float), np.array(bb[3:], float)
        corners = [labels.TransformContinuousIndexToPhysicalPoint([float(c) for c in corner])
                   for corner in itertools.product(*[(a - 0.5, a + m - 0.5) for a, m in zip(lo, n)])]
        idx = np.array([dose_grid.TransformPhysicalPointToContinuousIndex(p) for p in corners])
        start = np.maximum(np.floor(idx.min(axis=0)).astype(int) - 1, 0)
        stop = np.minimum(np.ceil(idx.max(axis=0)).astype(int) + 2, size)
        if np.any(stop <= start):
            boxes[value] = None
        else:  # (x, y, z) index ranges -> (z, y, x) slices
            boxes[value] = tuple(slice(int(start[a]), int(stop[a])) for a in (2, 1, 0))
    return boxes


def _sub_grid(dose_grid: sitk.Image, box: Box, offset_xyz: np.ndarray) -> sitk.Image:
    """A reference image covering ``box`` of the dose grid, shifted by ``offset_xyz`` voxels."""
    start = np.array([box[2].start, box[1].start, box[0].start], dtype=float) + offset_xyz
    ref = sitk.Image([box[2].stop - box[2].start, box[1].stop - box[1].start, box[0].stop - box[0].start],
                     sitk.sitkUInt8)
    ref.SetSpacing(dose_grid.GetSpacing())
    ref.SetDirection(dose_grid.GetDirection())
    ref.SetOrigin(dose_grid.TransformContinuousIndexToPhysicalPoint([float(s) for s in start]))
    return ref


def fractional_masks(labels: sitk.Image, dose_grid: sitk.Image, values: Iterable[int],
                     oversampling: int = DEFAULT_OVERSAMPLING) -> Dict[int, CroppedMask]:
    """Voxel fractions of each label ``values`` of ``labels`` on the grid of ``dose_grid``.

    Args:
        labels: integer label map on any grid (LPS); 0 is usually background.
        dose_grid: image defining the dose grid (only its geometry is used).
        values: label values to extract.
        oversampling: sub-samples per axis and dose voxel (1 = plain nearest neighbour).

    Returns:
        label value → :class:`CroppedMask` (empty when the label lies outside the dose grid or is absent).
    """
    n = _check_oversampling(oversampling)
    if labels.GetDimension() != 3 or dose_grid.GetDimension() != 3:
        raise DeepDoseInputError("Label maps and dose grids must be 3D images.")
    if labels.GetNumberOfComponentsPerPixel() != 1:
        raise DeepDoseInputError("The label map must have one component per voxel.")
    if labels.GetPixelID() not in (sitk.sitkUInt8, sitk.sitkUInt16, sitk.sitkUInt32, sitk.sitkInt8,
                                   sitk.sitkInt16, sitk.sitkInt32, sitk.sitkUInt64, sitk.sitkInt64):
        array = sitk.GetArrayViewFromImage(labels)
        if not np.all(array == np.round(array)):
            raise DeepDoseInputError("The label map holds non-integer values: pass an integer label image "
                                     "(a fractional mask must be given as a numpy array on the dose grid).")
        as_int = sitk.Cast(labels, sitk.sitkInt32)
        as_int.CopyInformation(labels)
        labels = as_int
    values = [int(v) for v in values]
    shape = tuple(reversed(dose_grid.GetSize()))
    empty_box: Box = (slice(0, 0), slice(0, 0), slice(0, 0))
    out = {v: CroppedMask(empty_box, np.zeros((0, 0, 0), np.float32), shape) for v in values}
    if same_grid(labels, dose_grid):  # exact 0/1 fractions
        lab = sitk.GetArrayViewFromImage(labels)
        for value, box in _label_boxes(labels, values, dose_grid).items():
            if box is not None:
                out[value] = CroppedMask(box, (lab[box] == value).astype(np.float32), shape)
        return out
    boxes = {v: b for v, b in _label_boxes(labels, values, dose_grid).items() if b is not None}
    if not boxes:
        return out
    union: Box = tuple(slice(min(b[a].start for b in boxes.values()), max(b[a].stop for b in boxes.values()))
                       for a in range(3))
    counts = {v: np.zeros(tuple(s.stop - s.start for s in b), np.uint8) for v, b in boxes.items()}
    local = {v: tuple(slice(s.start - u.start, s.stop - u.start) for s, u in zip(b, union)) for v, b in boxes.items()}
    for offset in subsample_offsets(n):
        ref = _sub_grid(dose_grid, union, offset)
        sampled = sitk.GetArrayFromImage(
            sitk.Resample(labels, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0, labels.GetPixelID()))
        for value in boxes:
            counts[value] += sampled[local[value]] == value
    for value, box in boxes.items():
        out[value] = CroppedMask(box, (counts[value] / float(n ** 3)).astype(np.float32), shape)
    return out


def fractional_mask(mask: Union[sitk.Image, np.ndarray, CroppedMask], dose_grid: sitk.Image, label: int = 1,
                    oversampling: int = DEFAULT_OVERSAMPLING) -> CroppedMask:
    """One structure's voxel fractions on the dose grid, from any of the accepted mask forms.

    Args:
        mask: a :class:`CroppedMask`; a numpy array of fractions in [0, 1] (or booleans) of the dose
            grid's (z, y, x) shape; or a SimpleITK label/binary image on any grid (voxels equal to
            ``label`` belong to the structure).
        dose_grid: image defining the dose grid.
    """
    shape = tuple(reversed(dose_grid.GetSize()))
    if isinstance(mask, CroppedMask):
        if tuple(mask.grid_shape) != shape:
            raise DeepDoseInputError(f"Mask grid {mask.grid_shape} differs from the dose grid {shape} (z, y, x).")
        return mask
    if isinstance(mask, sitk.Image):
        return fractional_masks(mask, dose_grid, [label], oversampling)[int(label)]
    array = np.asarray(mask)
    if array.shape != shape:
        raise DeepDoseInputError(f"Mask array of shape {array.shape} does not match the dose grid {shape} (z, y, x); "
                                 "pass a SimpleITK image to have it resampled.")
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)) or array.min(initial=0) < 0 or array.max(initial=0) > 1:
        raise DeepDoseInputError("A fractional mask must hold values in [0, 1].")
    nonzero = np.nonzero(np.any(array > 0, axis=(1, 2)))[0], np.nonzero(np.any(array > 0, axis=(0, 2)))[0], \
        np.nonzero(np.any(array > 0, axis=(0, 1)))[0]
    if any(nz.size == 0 for nz in nonzero):
        return CroppedMask((slice(0, 0),) * 3, np.zeros((0, 0, 0), np.float32), shape)
    box = tuple(slice(int(nz[0]), int(nz[-1]) + 1) for nz in nonzero)
    return CroppedMask(box, array[box].copy(), shape)
