"""Accuracy of a dose-rate map against a reference (Monte Carlo): voxel-wise and per organ group.

Voxel-wise: |D − D_ref| / D_ref in tissue voxels (ρ ≥ 0.05 g/cm³: lung included, air and gas
excluded, where the dose per gram of air would set the maximum) where D_ref > 10 % of its maximum
in tissue (median and 95th percentile). Organ groups (lungs, bone, kidneys, liver, spleen, each tumour): the mass-weighted mean
dose rate (energy / mass, the organ absorbed dose rate) and its relative error; DVH: the largest
difference of D2/D50/D98 relative to the reference mean.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np
from ..tissue import TISSUE_MIN_DENSITY_g_per_cm3

#: Organ groups: name → keywords matched in label names (lower case).
ORGAN_GROUPS = {
    "lungs": ("lung",),
    "bone": ("spine", "vertebra", "rib", "sternum", "pelvis", "hip", "sacrum", "femur", "shoulder", "scapula",
             "clavicula", "humerus", "mandible", "skull", "bone"),
    "kidneys": ("kidney",),
    "liver": ("liver",),
    "spleen": ("spleen",),
}
TUMOUR_KEYWORDS = ("lesion", "tumour", "tumor")
#: Threshold of the voxel-wise metric, as a fraction of the reference maximum.
VOXEL_THRESHOLD_FRACTION = 0.10


def organ_masks(labels: np.ndarray, label_names: Dict[int, str], voxel_mL: float,
                min_tumour_mL: float = 5.0) -> Dict[str, np.ndarray]:
    """Boolean masks of the organ groups and of every tumour larger than ``min_tumour_mL``."""
    masks: Dict[str, np.ndarray] = {}
    lower = {int(k): str(v).lower() for k, v in label_names.items()}
    for group, keys in ORGAN_GROUPS.items():
        ids = [k for k, n in lower.items() if any(key in n for key in keys) and "lesion" not in n]
        if ids:
            mask = np.isin(labels, ids)
            if mask.any():
                masks[group] = mask
    for k, n in sorted(lower.items()):
        if any(key in n for key in TUMOUR_KEYWORDS) and "core" not in n:
            ids = [j for j, m in lower.items() if m == n or (m.startswith(n + "_") and "core" in m)]  # rim + core
            mask = np.isin(labels, ids)
            if mask.sum() * voxel_mL > min_tumour_mL:
                masks[f"tumour:{n}"] = mask
    return masks


def mass_weighted_mean(dose: np.ndarray, density: np.ndarray, mask: np.ndarray) -> float:
    w = density[mask].astype(np.float64)
    return float((dose[mask].astype(np.float64) * w).sum() / max(w.sum(), 1e-30))


def metric_voxels(reference: np.ndarray, density: np.ndarray) -> np.ndarray:
    """Mask of the voxel-wise metric: tissue (ρ ≥ :data:`TISSUE_MIN_DENSITY_g_per_cm3`) where the reference
    exceeds :data:`VOXEL_THRESHOLD_FRACTION` of its maximum *in tissue*."""
    tissue = density >= TISSUE_MIN_DENSITY_g_per_cm3
    return tissue & (reference > VOXEL_THRESHOLD_FRACTION * reference[tissue].max())


def compare(dose: np.ndarray, reference: np.ndarray, density: np.ndarray, labels: Optional[np.ndarray] = None,
            label_names: Optional[Dict[int, str]] = None, voxel_mL: float = 0.064) -> Dict[str, float]:
    """Metrics of ``dose`` against ``reference`` ((z, y, x) mGy/h, one grid); errors in %.

    Keys: ``voxel_median_abs_pct``, ``voxel_p95_abs_pct``, and per organ group ``organ:<name>`` (signed
    error of the mass-weighted mean) and ``dvh:<name>`` (max |ΔD2, ΔD50, ΔD98| / reference mean).
    """
    hot = metric_voxels(reference, density)
    rel = np.abs(dose[hot] - reference[hot]) / reference[hot]
    out = {"voxel_median_abs_pct": float(100 * np.median(rel)), "voxel_p95_abs_pct": float(100 * np.percentile(rel, 95))}
    if labels is not None and label_names:
        for name, mask in organ_masks(labels, label_names, voxel_mL).items():
            ref_mean = mass_weighted_mean(reference, density, mask)
            if ref_mean <= 0:
                continue
            out[f"organ:{name}"] = 100 * (mass_weighted_mean(dose, density, mask) / ref_mean - 1)
            qs = (98, 50, 2)  # D2 = 98th percentile of the dose, etc.
            d_ref = np.percentile(reference[mask], qs)
            d = np.percentile(dose[mask], qs)
            out[f"dvh:{name}"] = float(100 * np.max(np.abs(d - d_ref)) / ref_mean)
    return out


def summarise(per_case: List[Dict[str, float]]) -> Dict[str, float]:
    """Mean of each metric over cases, and the worst absolute organ error."""
    keys = sorted({k for c in per_case for k in c})
    summary = {}
    for k in keys:
        values = [c[k] for c in per_case if k in c]
        summary[k] = float(np.mean(values))
        if k.startswith("organ:"):
            summary["max_abs_" + k] = float(np.max(np.abs(values)))
    return summary
