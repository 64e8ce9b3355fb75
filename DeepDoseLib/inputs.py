"""Dose inputs on one grid: CT and PET brought together with units and geometry checked.

The first step of every dose calculation (I/O → **inputs** → method → analysis → presentation):
the PET [Bq/mL] and the CT [HU] become activity, HU, mass density [g/cm³] and material labels on
one grid (the PET's unless another is asked for), with notes of everything assumed or corrected.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Mapping, Optional

import numpy as np
import SimpleITK as sitk

from .errors import DeepDoseInputError
from .geometry import check_ct_covers_activity, resample_to_grid
from .tissue import (HU_OUTSIDE_CT, TISSUE_MIN_DENSITY_g_per_cm3, HUDensityCalibration, HUMaterialTable,
                     hu_to_density, hu_to_material)

__all__ = ["DoseInputs", "HU_OUTSIDE_CT", "check_activity", "check_labels", "labels_present", "prepare_inputs"]


@dataclass
class DoseInputs:
    """Everything a dose method needs, on one grid. Arrays are (z, y, x) float32 / uint8.

    Attributes:
        grid: reference image that defines origin, spacing [mm] and direction of all arrays.
        activity_Bq_per_mL, hu, density_g_per_cm3, material_labels: voxel data on ``grid``.
        notes: what was assumed or corrected on the way (shown to the user).
    """

    grid: sitk.Image
    activity_Bq_per_mL: np.ndarray
    hu: np.ndarray
    density_g_per_cm3: np.ndarray
    material_labels: np.ndarray
    notes: List[str] = field(default_factory=list)

    @property
    def spacing_mm(self) -> tuple:
        """Voxel spacing (x, y, z) [mm]."""
        return self.grid.GetSpacing()

    def to_image(self, array: np.ndarray) -> sitk.Image:
        """Wrap a (z, y, x) array as an image on :attr:`grid`."""
        image = sitk.GetImageFromArray(np.ascontiguousarray(array))
        image.CopyInformation(self.grid)
        return image


def check_activity(activity_Bq_per_mL: np.ndarray, clip_negative: bool = False) -> List[str]:
    """Validate an activity array in place: NaN/inf refused; negatives refused or clipped to 0; an activity
    that is zero everywhere refused (the one rule of every method: there is nothing to compute a dose from).

    Returns notes describing what was changed.
    """
    if not np.all(np.isfinite(activity_Bq_per_mL)):
        bad = int(np.size(activity_Bq_per_mL) - np.count_nonzero(np.isfinite(activity_Bq_per_mL)))
        raise DeepDoseInputError(f"The PET contains {bad} NaN or infinite voxel(s); fix or mask them first.")
    negative = activity_Bq_per_mL < 0
    if negative.any():
        count = int(negative.sum())
        lost = float(-activity_Bq_per_mL[negative].sum())
        total = float(activity_Bq_per_mL[~negative].sum())
        if not clip_negative:
            raise DeepDoseInputError(
                f"The PET contains {count} negative voxel(s) (down to {activity_Bq_per_mL.min():.4g} Bq/mL; "
                f"their sum is {100 * lost / max(total, 1e-30):.3f} % of the positive activity). Negative activity "
                "has no physical meaning: pass clip_negative=True (--clip-negative) to set them to 0."
            )
        activity_Bq_per_mL[negative] = 0.0
        notes = [f"{count} negative PET voxel(s) set to 0 ({100 * lost / max(total, 1e-30):.3f} % of the activity)"]
    else:
        notes = []
    if not np.any(activity_Bq_per_mL > 0):
        raise DeepDoseInputError("The PET is zero everywhere (no activity): there is no dose to compute. Check that "
                                 "the right image (and frame) was given.")
    return notes


def prepare_inputs(ct_HU: sitk.Image, pet_Bq_per_mL: sitk.Image, *, grid: Optional[sitk.Image] = None,
                   density_calibration: Optional[HUDensityCalibration] = None,
                   material_table: Optional[HUMaterialTable] = None, clip_negative: bool = False,
                   max_activity_fraction_outside_ct: float = 0.01) -> DoseInputs:
    """Bring CT and PET onto one grid with checked units.

    The PET is resampled (linear, activity concentration preserved, not total activity) only when a
    different ``grid`` is requested; the CT is always resampled linearly onto the dose grid. Dose-grid
    voxels outside the CT field of view get HU 0 (water) — allowed only for at most
    ``max_activity_fraction_outside_ct`` of the activity — instead of air, which would multiply their
    local dose by ~800.
    """
    grid = pet_Bq_per_mL if grid is None else grid
    notes: List[str] = []
    pet = sitk.Cast(pet_Bq_per_mL, sitk.sitkFloat32)
    if grid is not pet_Bq_per_mL:
        pet = resample_to_grid(pet, grid, default_value=0.0)
        notes.append("PET resampled (linear) onto the requested dose grid")
    activity = sitk.GetArrayFromImage(pet).astype(np.float32)  # a copy: inputs are never modified
    notes += check_activity(activity, clip_negative)
    pet_on_grid = sitk.GetImageFromArray(activity)
    pet_on_grid.CopyInformation(grid)
    covered = check_ct_covers_activity(ct_HU, pet_on_grid, max_activity_fraction_outside_ct)
    ct = resample_to_grid(sitk.Cast(ct_HU, sitk.sitkFloat32), grid, default_value=HU_OUTSIDE_CT)
    hu = sitk.GetArrayFromImage(ct).astype(np.float32)
    if not covered.all():
        notes.append(f"{int((~covered).sum())} dose-grid voxel(s) outside the CT field of view treated as water")
    density = hu_to_density(hu, density_calibration)
    labels = hu_to_material(hu, material_table)
    low = (density < TISSUE_MIN_DENSITY_g_per_cm3) & (activity > 0)
    if low.any() and activity.sum() > 0:
        fraction = float(activity[low].sum() / activity.sum())
        if fraction > 1e-3:
            notes.append(f"WARNING: {100 * fraction:.2f} % of the activity lies in air-like voxels "
                         f"(< {TISSUE_MIN_DENSITY_g_per_cm3} g/cm³); their dose rate is per gram of air")
    return DoseInputs(grid, activity, hu, density, labels, notes)


def labels_present(labels: sitk.Image) -> set:
    """The label values > 0 of a label map."""
    return {int(v) for v in np.unique(sitk.GetArrayViewFromImage(labels)) if v > 0}


def check_labels(labels: sitk.Image, grid: sitk.Image, *, names: Optional[Mapping[int, str]] = None,
                 what: str = "--labels") -> List[str]:
    """Refuse a label map with negative or non-integer values or without any labelled voxel on the dose grid;
    returns notes on labels that miss the grid.

    ``labels`` and ``grid`` may lie on different grids (compared in physical space, nearest neighbour).
    """
    array = sitk.GetArrayViewFromImage(labels)
    if array.size and float(array.min()) < 0:
        raise DeepDoseInputError(f"{what}: the label map holds negative values (down to {float(array.min()):g}); "
                                 "labels are integers ≥ 0 (0 = background).")
    sample = array.ravel()[:: max(1, array.size // 500000)]
    if not np.all(sample == np.round(sample)):
        raise DeepDoseInputError(f"{what}: the label map holds non-integer values (a probability map or a label map "
                                 "resampled with linear interpolation?); labels are integers.")
    present = labels_present(labels)
    if not present:
        raise DeepDoseInputError(f"{what}: the label map holds no label (every voxel is 0).")
    on_grid = sitk.GetArrayFromImage(resample_to_grid(labels, grid, interpolator=sitk.sitkNearestNeighbor,
                                                          default_value=0.0))
    hit = {int(v) for v in np.unique(on_grid) if v > 0}
    if not hit:
        raise DeepDoseInputError(f"{what}: no labelled voxel lies on the dose grid (the label map and the PET do "
                                 "not overlap in space); check that both belong to the same scan and frame of "
                                 "reference.")
    missing = sorted(present - hit)
    notes = []
    if missing:
        label_names = names or {}
        notes.append(f"WARNING: label(s) {', '.join(str(label_names.get(m, m)) for m in missing[:20])} lie outside "
                     "the dose grid: no dose is reported for them")
    return notes
