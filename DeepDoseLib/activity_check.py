"""Plausibility of a PET/SPECT activity map before dosimetry: total activity (MBq) against the body volume.

A wrong unit (kBq/mL declared as Bq/mL, SUV or counts taken as Bq/mL) changes every dose by a factor of
1000 or more, and nothing in an image file says which unit it is in. The total activity in the field of
view and the mean concentration in the body show such slips at a glance: diagnostic PET injects
roughly 50-500 MBq and radionuclide therapy 1-10 GBq, so over a body of some litres the mean lies
between ~10 Bq/mL and ~1 MBq/mL. Values outside these bounds produce warnings (never a silent change).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

import numpy as np

#: Mean concentration over the body below which the values look like SUV, counts or a too-small unit [Bq/mL].
MIN_PLAUSIBLE_MEAN_BQ_PER_ML = 10.0
#: Mean concentration over the body above which the values look like a too-large unit [Bq/mL].
MAX_PLAUSIBLE_MEAN_BQ_PER_ML = 1.0e6
#: Total activity in the field of view above which no administration is plausible [MBq].
MAX_PLAUSIBLE_TOTAL_MBQ = 5.0e4
#: CT voxels at or above this value count as body [HU].
BODY_THRESHOLD_HU = -300.0


@dataclass
class ActivityCheck:
    """Total activity in the field of view [MBq], body volume [mL], mean concentration in the body [Bq/mL]."""

    total_MBq: float
    body_volume_mL: float
    mean_in_body_Bq_per_mL: float
    warnings: List[str] = field(default_factory=list)

    def text(self) -> str:
        return ("Total activity in the field of view %.4g MBq; body %.3g L; mean %.4g kBq/mL in the body."
                % (self.total_MBq, self.body_volume_mL / 1000.0, self.mean_in_body_Bq_per_mL / 1000.0))


def check_activity(activity_Bq_per_mL: np.ndarray, voxel_volume_mL: float, ct_HU: np.ndarray,
                   ct_voxel_volume_mL: float) -> ActivityCheck:
    """Total activity [MBq] of ``activity_Bq_per_mL`` and its mean over the body of ``ct_HU`` (≥ -300 HU).

    The two images need not share a grid: the body volume [mL] is counted on the CT grid, the activity
    summed on the PET grid (negative voxels count as they are).
    """
    total_Bq = float(np.nansum(np.asarray(activity_Bq_per_mL, dtype=np.float64))) * float(voxel_volume_mL)
    body_mL = float(np.count_nonzero(np.asarray(ct_HU) >= BODY_THRESHOLD_HU)) * float(ct_voxel_volume_mL)
    mean = total_Bq / body_mL if body_mL > 0 else float("nan")
    check = ActivityCheck(total_Bq / 1.0e6, body_mL, mean)
    if body_mL <= 0:
        check.warnings.append("The CT shows no body (no voxel at or above -300 HU): check the CT (HU).")
    elif mean < MIN_PLAUSIBLE_MEAN_BQ_PER_ML:
        check.warnings.append(
            "Implausibly low activity: %.4g MBq in the field of view, %.3g Bq/mL on average in the body. The values "
            "look like SUV, counts or a unit 1000x too small; check the PET unit (or the SPECT calibration factor)."
            % (check.total_MBq, mean))
    elif mean > MAX_PLAUSIBLE_MEAN_BQ_PER_ML or check.total_MBq > MAX_PLAUSIBLE_TOTAL_MBQ:
        check.warnings.append(
            "Implausibly high activity: %.4g MBq in the field of view, %.4g kBq/mL on average in the body. The "
            "unit may be 1000x too large (e.g. Bq/mL declared as kBq/mL); check the PET unit."
            % (check.total_MBq, mean / 1000.0))
    return check
