"""Analysis of dose and dose-rate maps: organ statistics, DVH, isodose, RT Structure Set masks, time integration.

Structures on any grid become partial-volume (fractional) masks on the dose grid (:mod:`.masks`);
Dx/Vx/DVH definitions are in :mod:`.dvh`. Every result carries its dose unit (``"mGy/h"``, ``"Gy"``).
"""
from __future__ import annotations

from .dvh import DOSE_UNITS, DVH, compute_dvh, dvh_from_values, dvhs_for_labels, write_dvh_table
from .isodose import (DEFAULT_ISODOSE_PERCENTS, IsodoseLevel, isodose_band_map, isodose_contours_2d, isodose_levels,
                      isodose_masks)
from .masks import DEFAULT_OVERSAMPLING, CroppedMask, fractional_mask, fractional_masks
from .organs import OrganStatistics, format_organ_table, organ_statistics, organ_table_rows, write_organ_table
from .rtstruct import RTStructROI, rasterise_roi, read_rtstruct
from .time_integration import (CurveIntegration, fit_exponential, integrate_curves, integrate_physical_decay,
                               integrate_single_time_point, integrate_trapezoid, integrate_voxels)
from .time_integration_maps import IntegratedMap, OrganTimeIntegration, integrate_maps, integrate_organs

__all__ = [
    "DEFAULT_ISODOSE_PERCENTS", "DEFAULT_OVERSAMPLING", "DOSE_UNITS", "DVH", "CroppedMask", "IsodoseLevel",
    "OrganStatistics", "RTStructROI", "compute_dvh", "dvh_from_values", "dvhs_for_labels", "format_organ_table",
    "fractional_mask", "fractional_masks", "isodose_band_map", "isodose_contours_2d", "isodose_levels",
    "isodose_masks", "organ_statistics", "organ_table_rows", "rasterise_roi", "read_rtstruct", "write_dvh_table",
    "write_organ_table", "CurveIntegration", "IntegratedMap", "OrganTimeIntegration", "fit_exponential",
    "integrate_curves", "integrate_maps", "integrate_organs", "integrate_physical_decay",
    "integrate_single_time_point", "integrate_trapezoid", "integrate_voxels",
]
