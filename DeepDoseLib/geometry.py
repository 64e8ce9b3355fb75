"""Grids in physical (LPS, mm) space: extents, overlap checks and resampling.

All functions respect origin, spacing and direction cosines of SimpleITK images, so oblique or
flipped acquisitions are handled exactly; nothing is done in index space.
"""
from __future__ import annotations

import itertools
from typing import Tuple

import numpy as np
import SimpleITK as sitk

from .errors import DeepDoseInputError


def physical_extent_mm(image: sitk.Image) -> Tuple[np.ndarray, np.ndarray]:
    """Axis-aligned LPS bounding box [mm] of the image's voxels (outer voxel faces, not centres)."""
    size = image.GetSize()
    corners = []
    for corner in itertools.product(*[(-0.5, s - 0.5) for s in size]):
        corners.append(image.TransformContinuousIndexToPhysicalPoint([float(c) for c in corner]))
    corners = np.array(corners)
    return corners.min(axis=0), corners.max(axis=0)


def same_grid(a: sitk.Image, b: sitk.Image, tolerance_mm: float = 1e-4) -> bool:
    """True when both images have the same size, origin, spacing and direction."""
    return (a.GetSize() == b.GetSize()
            and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=tolerance_mm)
            and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=tolerance_mm)
            and np.allclose(a.GetDirection(), b.GetDirection(), atol=1e-6))


def resample_to_grid(image: sitk.Image, reference: sitk.Image, *, default_value: float = 0.0,
                     interpolator: int = sitk.sitkLinear) -> sitk.Image:
    """Resample ``image`` onto the grid of ``reference`` (identity transform in physical space)."""
    if same_grid(image, reference):
        return sitk.Image(image)
    return sitk.Resample(image, reference, sitk.Transform(), interpolator, float(default_value),
                         image.GetPixelID())


def coverage_mask(image: sitk.Image, reference: sitk.Image) -> np.ndarray:
    """Boolean (z, y, x) array on ``reference``'s grid: True where a voxel centre lies inside ``image``."""
    ones = sitk.Image(image.GetSize(), sitk.sitkUInt8)
    ones.CopyInformation(image)
    ones = ones + 1
    covered = sitk.Resample(ones, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return sitk.GetArrayFromImage(covered).astype(bool)


def _fmt_box(box: Tuple[np.ndarray, np.ndarray]) -> str:
    lo, hi = box
    return "[" + ", ".join(f"{a:.1f}..{b:.1f}" for a, b in zip(lo, hi)) + "] mm"


def check_ct_covers_activity(ct: sitk.Image, pet_Bq_per_mL: sitk.Image,
                             max_activity_fraction_outside: float = 0.01) -> np.ndarray:
    """Verify that the CT field of view holds the PET activity; return the coverage mask on the PET grid.

    Raises:
        DeepDoseInputError: the images do not overlap at all, or more than
            ``max_activity_fraction_outside`` of the total activity lies outside the CT.
    """
    covered = coverage_mask(ct, pet_Bq_per_mL)
    if not covered.any():
        raise DeepDoseInputError(
            "PET and CT do not overlap: PET extent " + _fmt_box(physical_extent_mm(pet_Bq_per_mL))
            + ", CT extent " + _fmt_box(physical_extent_mm(ct))
            + " (LPS). Are they from the same study and frame of reference?"
        )
    activity = sitk.GetArrayViewFromImage(pet_Bq_per_mL).astype(np.float64)
    total = float(np.sum(np.clip(activity, 0, None)))
    if total > 0:
        outside = float(np.sum(np.clip(activity[~covered], 0, None))) / total
        if outside > max_activity_fraction_outside:
            raise DeepDoseInputError(
                f"{100 * outside:.1f} % of the PET activity lies outside the CT field of view (allowed "
                f"{100 * max_activity_fraction_outside:.1f} %). PET extent "
                + _fmt_box(physical_extent_mm(pet_Bq_per_mL)) + ", CT extent " + _fmt_box(physical_extent_mm(ct))
                + ". Register the images or extend the CT."
            )
    return covered
