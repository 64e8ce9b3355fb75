"""Standard uncertainty of a structure's mean absorbed dose, propagated as the EANM guideline does (Gear et al.,
"EANM practical guidance on uncertainty analysis for molecular radiotherapy absorbed dose calculations",
EJNMMI 45:2456 (2018)).

The mean absorbed dose of a structure is D = Ã·S-like energy / m, so to first order the relative uncertainties of
independent factors add in quadrature:

* **calibration**: the activity calibration factor (counts/s per MBq) scales every time point alike, so its
  relative uncertainty passes to D unchanged (fully correlated across time points);
* **time-activity fit**: u(∫)/∫ from the fit covariance (:mod:`.kinetics`);
* **volume/segmentation**: the structure mean is that of the absorbed-dose map inside the segmentation, so its
  sensitivity to the segmentation is measured directly: the mean over the structure dilated and eroded by one
  voxel gives dD̄/ds, times the boundary uncertainty σ_b [mm] (default half a voxel of the label map);
* **dose method**: Monte Carlo statistical uncertainty (the structure mean of the relative uncertainty map,
  combined as for independent voxels) or the method's validated bias bound (:data:`METHOD_RELATIVE_UNCERTAINTY`);
* **recovery correction** (when applied): u(RC)/RC of the recovery curve at the lesion volume.

Each component is reported beside the combined one so the reader sees what dominates.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np
import SimpleITK as sitk

#: Relative standard uncertainty attributed to each dose method when it gives no map of its own, with what it
#: rests on (shown in the report).
METHOD_RELATIVE_UNCERTAINTY = {
    "deepdose": (0.03, "bundled models: every held-out organ within 3 % of Monte Carlo (README, model cards)"),
    "vsv_scaled": (0.03, "density-scaled VSV: organs within 3 % of Monte Carlo in the project's validation (README)"),
    "vsv": (0.05, "assumption: soft-tissue kernel; larger errors at lung/bone interfaces"),
    "led": (0.10, "assumption: local deposition ignores photon transport and cross-dose"),
    "mird": (0.10, "assumption: organ-level sphere model"),
}


@dataclass
class UncertaintyBudget:
    """Relative standard uncertainties (fractions) of a structure's mean absorbed dose and their sources."""

    components: Dict[str, float] = field(default_factory=dict)
    sources: Dict[str, str] = field(default_factory=dict)

    def add(self, name: str, relative: float, source: str) -> None:
        self.components[name] = float(relative)
        self.sources[name] = source

    @property
    def combined(self) -> float:
        """Quadrature sum of the finite components (a NaN component is left out and named in the sources)."""
        return float(math.sqrt(sum(v * v for v in self.components.values() if math.isfinite(v))))

    def missing(self) -> List[str]:
        return [k for k, v in self.components.items() if not math.isfinite(v)]


def segmentation_relative_uncertainty(dose: np.ndarray, mask: np.ndarray, spacing_mm, mean: float,
                                      boundary_mm: float) -> Tuple[float, str]:
    """u(D̄)/D̄ of a structure's mean for a boundary uncertainty ``boundary_mm``: the sensitivity of the mean to a
    boundary shift, dD̄/ds ≈ (D̄(dilated) − D̄(eroded)) / (2h) with one-voxel dilation/erosion (h: mean voxel size of
    the dose grid [mm]), times the boundary uncertainty.

    ``dose`` and ``mask`` are (z, y, x) arrays on the dose grid (mask boolean); the mean is the structure's mean.
    """
    binary = sitk.GetImageFromArray(mask.astype(np.uint8))
    binary.SetSpacing([float(s) for s in spacing_mm])
    h = float(np.mean(spacing_mm))
    dil = sitk.GetArrayFromImage(sitk.BinaryDilate(binary, [1, 1, 1], sitk.sitkBall)).astype(bool)
    ero = sitk.GetArrayFromImage(sitk.BinaryErode(binary, [1, 1, 1], sitk.sitkBall)).astype(bool)
    if not ero.any() or not mean > 0:
        return float("nan"), "structure too small to erode by one voxel: segmentation component not estimated"
    d_plus, d_minus = float(dose[dil].mean()), float(dose[ero].mean())
    slope = abs(d_plus - d_minus) / (2.0 * h)
    return slope * boundary_mm / mean, (f"segmentation boundary ±{boundary_mm:.3g} mm: mean over the one-voxel "
                                        f"dilated/eroded structure {d_plus:.4g}/{d_minus:.4g} Gy")


def mc_structure_relative_uncertainty(dose_rate: np.ndarray, relative_uncertainty: np.ndarray,
                                      weights: np.ndarray) -> float:
    """Relative standard uncertainty of a weighted mean of MC voxel values (independent voxels)."""
    d = np.asarray(dose_rate, np.float64)
    u = np.asarray(relative_uncertainty, np.float64)
    w = np.asarray(weights, np.float64)
    total = float(np.dot(w, d))
    return float(math.sqrt(np.sum((w * d * u) ** 2)) / total) if total > 0 else float("nan")
