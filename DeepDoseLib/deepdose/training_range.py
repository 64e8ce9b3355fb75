"""The range of inputs a model was trained on, measured on its training cases and kept in its card.

One quantity so far, the one the held-out benchmark showed to matter: how active the lungs are.

    lung activity ratio = median activity of the lung voxels (0.1–0.6 g/cm³)
                          / median activity of the body voxels with activity (≥ 0.2 g/cm³)

A tracer-table training set has lungs at about the body's level (the bundled Lu-177 model: 0.56–2.4); the
table-free generator has inactive lungs in half of its cases (down to 0.0002). A case whose lungs are less active
than any training case's is outside what the network saw: :func:`.safety.input_range_flags` then lets the lungs
fall back to the physics baseline. Cases with less than :data:`MIN_LUNG_mL` of lung carry no ratio.
"""
from __future__ import annotations

from typing import Iterable, Optional, Sequence

import numpy as np

#: Density range [g/cm³] of lung voxels (inflated lung ≈ 0.26; tissue and bone lie above 0.6).
LUNG_DENSITY_RANGE_g_per_cm3 = (0.1, 0.6)
#: Density [g/cm³] above which a voxel counts as body for the activity median (as the fallback rule's).
BODY_DENSITY_g_per_cm3 = 0.2
#: Smallest lung volume [mL] that gives a ratio.
MIN_LUNG_mL = 50.0
#: Card key of the smallest ratio among the training cases.
LUNG_RATIO_MIN_KEY = "lung_activity_ratio_min"


def lung_mask(density_g_per_cm3: np.ndarray) -> np.ndarray:
    """Voxels in the lung density range (:data:`LUNG_DENSITY_RANGE_g_per_cm3`)."""
    d = np.asarray(density_g_per_cm3)
    lo, hi = LUNG_DENSITY_RANGE_g_per_cm3
    return (d >= lo) & (d < hi)


def lung_activity_ratio(activity_Bq_per_mL: np.ndarray, density_g_per_cm3: np.ndarray,
                        spacing_mm: Sequence[float]) -> Optional[float]:
    """The lung activity ratio of a case (module docstring), dimensionless; None without ``MIN_LUNG_mL`` of lung
    or without activity in the body.

    Parameters
    ----------
    activity_Bq_per_mL, density_g_per_cm3 : numpy.ndarray
        (z, y, x) activity [Bq/mL] and density [g/cm³].
    spacing_mm : sequence of float
        Voxel size (x, y, z) [mm].
    """
    a = np.asarray(activity_Bq_per_mL, np.float32)
    d = np.asarray(density_g_per_cm3, np.float32)
    lung = lung_mask(d)
    if float(lung.sum()) * float(np.prod(spacing_mm)) * 1e-3 < MIN_LUNG_mL:
        return None
    median = body_activity_median(a, d)
    return None if median is None else float(np.median(a[lung])) / median


def body_activity_median(activity_Bq_per_mL: np.ndarray, density_g_per_cm3: np.ndarray) -> Optional[float]:
    """Median activity [Bq/mL] of the body voxels (≥ :data:`BODY_DENSITY_g_per_cm3`) with activity; None without
    any. The reference of the lung ratio and of the fallback rule's activity contrasts."""
    a = np.asarray(activity_Bq_per_mL)
    active = a[(np.asarray(density_g_per_cm3) >= BODY_DENSITY_g_per_cm3) & (a > 0)]
    return float(np.median(active)) if active.size else None


def training_range(cases: Iterable) -> dict:
    """The card's ``training_range`` from training cases (objects with ``activity_Bq_per_mL``,
    ``density_g_per_cm3`` and ``spacing_mm``, e.g. :class:`.data.TrainingCase`): the smallest lung activity ratio
    (None when no case has lungs) and how many cases gave one."""
    ratios = [lung_activity_ratio(c.activity_Bq_per_mL, c.density_g_per_cm3, c.spacing_mm) for c in cases]
    ratios = [r for r in ratios if r is not None]
    return {LUNG_RATIO_MIN_KEY: min(ratios) if ratios else None, "cases_with_lungs": len(ratios),
            "lung_density_g_per_cm3": list(LUNG_DENSITY_RANGE_g_per_cm3)}
