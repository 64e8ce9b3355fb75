"""Per-organ statistics of a dose-rate map on a label map of the same grid."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
import SimpleITK as sitk

from ..errors import DeepDoseInputError
from ..geometry import same_grid


@dataclass
class OrganStatistics:
    """Statistics of one structure. Means are mass-weighted when a density map is given
    (the MIRD definition of mean absorbed dose), voxel-weighted otherwise; ``mean_weighting`` says which."""

    name: str
    label: int
    volume_mL: float
    mass_g: float
    mean_mGy_per_h: float
    max_mGy_per_h: float
    mean_weighting: str


def organ_statistics(dose_rate_mGy_per_h: sitk.Image, labels: sitk.Image, names: Dict[int, str],
                     density_g_per_cm3: Optional[np.ndarray] = None,
                     skip_labels: tuple = (0,)) -> List[OrganStatistics]:
    """Volume, mass, mean and max dose rate per label (labels on exactly the dose grid)."""
    if not same_grid(dose_rate_mGy_per_h, labels):
        raise DeepDoseInputError("The label map must lie on the dose grid (resample it with nearest neighbour).")
    dose = sitk.GetArrayViewFromImage(dose_rate_mGy_per_h).astype(np.float64)
    lab = sitk.GetArrayViewFromImage(labels)
    voxel_mL = float(np.prod(dose_rate_mGy_per_h.GetSpacing())) * 1e-3
    rows = []
    for value in np.unique(lab):
        value = int(value)
        if value in skip_labels:
            continue
        mask = lab == value
        if density_g_per_cm3 is not None:
            rho = density_g_per_cm3[mask].astype(np.float64)
            mass = float(rho.sum() * voxel_mL)
            mean = float((dose[mask] * rho).sum() / max(rho.sum(), 1e-30))
            weighting = "mass"
        else:
            mass, mean, weighting = float("nan"), float(dose[mask].mean()), "voxel"
        rows.append(OrganStatistics(names.get(value, f"label {value}"), value, float(mask.sum() * voxel_mL), mass,
                                    mean, float(dose[mask].max()), weighting))
    return rows


def format_organ_table(rows: List[OrganStatistics]) -> str:
    """A plain-text table (tab-separated header + rows) for terminals and TSV files."""
    lines = ["organ\tvolume_mL\tmass_g\tmean_mGy_per_h\tmax_mGy_per_h\tmean_weighting"]
    for r in rows:
        lines.append(f"{r.name}\t{r.volume_mL:.1f}\t{r.mass_g:.1f}\t{r.mean_mGy_per_h:.4g}\t"
                     f"{r.max_mGy_per_h:.4g}\t{r.mean_weighting}")
    return "\n".join(lines)
