"""Standard uncertainty of a structure's mean absorbed dose, propagated as the EANM guideline does (Gear et al.,
"EANM practical guidance on uncertainty analysis for molecular radiotherapy absorbed dose calculations",
EJNMMI 45:2456 (2018)).

The mean absorbed dose of a structure is D = Ã·S-like energy / m, so to first order the relative uncertainties of
independent factors add in quadrature:

* **calibration**: the activity calibration factor (counts/s per MBq) scales every time point alike, so its
  relative uncertainty passes to D unchanged (fully correlated across time points);
* **time-activity fit**: u(∫)/∫ from the fit covariance (:mod:`.kinetics`);
* **volume/segmentation**: the mass of a VOI that holds all of the structure's activity scales with its volume,
  D ∝ 1/V; u(V) = surface area × boundary uncertainty [mm] (surface from the one-voxel dilation and erosion of
  the structure on its label grid, A ≈ (V_dilated − V_eroded)/(2 h));
* **dose method**: Monte Carlo statistical uncertainty (the structure mean of the relative uncertainty map,
  combined as for independent voxels) or the method's validated bias bound (:data:`METHOD_RELATIVE_UNCERTAINTY`);
* **recovery correction** (when applied): u(RC)/RC of the recovery curve at the lesion volume.

Each component is reported beside the combined one so the reader sees what dominates.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional

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


def surface_area_mm2(mask: sitk.Image) -> float:
    """Surface area [mm²] of a binary mask from its one-voxel dilation and erosion: (V₊ − V₋) / (2 h̄)."""
    binary = sitk.Cast(mask != 0, sitk.sitkUInt8)
    voxel_mm3 = float(np.prod(binary.GetSpacing()))
    h = float(np.mean(binary.GetSpacing()))
    dil = sitk.BinaryDilate(binary, [1, 1, 1], sitk.sitkBall)
    ero = sitk.BinaryErode(binary, [1, 1, 1], sitk.sitkBall)
    count = lambda im: float(np.count_nonzero(sitk.GetArrayViewFromImage(im)))  # noqa: E731
    return (count(dil) - count(ero)) * voxel_mm3 / (2.0 * h)


def volume_relative_uncertainty(mask: sitk.Image, boundary_mm: Optional[float] = None) -> (float, str):
    """u(V)/V of a segmented structure for a boundary uncertainty [mm] (default half the mask's mean voxel size)."""
    binary = sitk.Cast(mask != 0, sitk.sitkUInt8)
    volume = float(np.count_nonzero(sitk.GetArrayViewFromImage(binary))) * float(np.prod(binary.GetSpacing()))
    if volume <= 0:
        return float("nan"), "empty structure"
    b = 0.5 * float(np.mean(binary.GetSpacing())) if boundary_mm is None else float(boundary_mm)
    area = surface_area_mm2(binary)
    return area * b / volume, (f"segmentation boundary ±{b:.3g} mm over {area / 100:.4g} cm² of surface, "
                               f"V = {volume / 1000:.4g} mL (D ∝ 1/V)")


def mc_structure_relative_uncertainty(dose_rate: np.ndarray, relative_uncertainty: np.ndarray,
                                      weights: np.ndarray) -> float:
    """Relative standard uncertainty of a weighted mean of MC voxel values (independent voxels)."""
    d = np.asarray(dose_rate, np.float64)
    u = np.asarray(relative_uncertainty, np.float64)
    w = np.asarray(weights, np.float64)
    total = float(np.dot(w, d))
    return float(math.sqrt(np.sum((w * d * u) ** 2)) / total) if total > 0 else float("nan")
