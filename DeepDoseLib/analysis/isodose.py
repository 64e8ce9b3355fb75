"""Isodose levels, 3D isodose masks and 2D isodose lines on slices (for the report).

Levels are absolute (in the dose map's unit) or percentages of a reference dose (a prescription,
or the maximum of a map). 3D isodose *surfaces* are built on the Slicer side with VTK; this module
gives the masks (``dose ≥ level``) and, for figures, polylines from ``contourpy`` (matplotlib's
contour generator, no VTK). Arrays are numpy (z, y, x); a 2D slice is (rows, columns).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import SimpleITK as sitk

from ..errors import DeepDoseError, DeepDoseInputError
from .dvh import check_dose_unit

#: Default isodose levels in % of the reference (SlicerRT-like spread, few enough for a figure).
DEFAULT_ISODOSE_PERCENTS = (10.0, 25.0, 50.0, 75.0, 90.0)

LevelLike = Union[float, "IsodoseLevel"]


@dataclass(frozen=True)
class IsodoseLevel:
    """One isodose level: ``value`` in ``unit``; ``percent`` of the reference when defined relatively."""

    value: float
    unit: str
    percent: Optional[float] = None

    @property
    def label(self) -> str:
        """Legend text, e.g. ``"50 % (12.3 mGy/h)"`` or ``"2 Gy"``."""
        absolute = f"{self.value:.3g} {self.unit}"
        return f"{self.percent:g} % ({absolute})" if self.percent is not None else absolute

    def __float__(self) -> float:
        return float(self.value)


def _reference_value(reference: Union[float, sitk.Image, np.ndarray]) -> float:
    if isinstance(reference, sitk.Image):
        reference = sitk.GetArrayViewFromImage(reference)
    value = float(np.max(reference)) if np.ndim(reference) else float(reference)
    if not (np.isfinite(value) and value > 0):
        raise DeepDoseInputError(f"The isodose reference must be a positive dose, got {value!r}.")
    return value


def isodose_levels(reference: Union[float, sitk.Image, np.ndarray, None] = None,
                   percents: Sequence[float] = DEFAULT_ISODOSE_PERCENTS, levels: Optional[Sequence[float]] = None,
                   unit: str = "mGy/h") -> List[IsodoseLevel]:
    """Isodose levels, ascending.

    Args:
        reference: reference dose in ``unit`` (e.g. a prescription), or a dose map whose maximum is the
            reference. Needed for ``percents``; with ``levels`` it only adds the percentage to each level.
        percents: levels in % of the reference (used when ``levels`` is None).
        levels: absolute levels in ``unit``; they take precedence over ``percents``.
    """
    check_dose_unit(unit)
    ref = None if reference is None else _reference_value(reference)
    if levels is not None:
        values = sorted(float(v) for v in levels)
        if not values or not all(np.isfinite(v) and v > 0 for v in values):
            raise DeepDoseInputError("Absolute isodose levels must be positive numbers.")
        return [IsodoseLevel(v, unit, None if ref is None else 100.0 * v / ref) for v in values]
    if ref is None:
        raise DeepDoseInputError("Relative isodose levels need a reference dose or a dose map.")
    pct = sorted(float(p) for p in percents)
    if not pct or not all(np.isfinite(p) and p > 0 for p in pct):
        raise DeepDoseInputError("Isodose percentages must be positive numbers.")
    return [IsodoseLevel(ref * p / 100.0, unit, p) for p in pct]


def _values(levels: Sequence[LevelLike]) -> List[float]:
    values = [float(v) for v in levels]
    if not all(np.isfinite(v) for v in values):
        raise DeepDoseInputError("Isodose levels must be finite numbers.")
    return values


def isodose_masks(dose: Union[sitk.Image, np.ndarray], levels: Sequence[LevelLike]) -> Dict[float, np.ndarray]:
    """For each level (value in the dose's unit): a bool (z, y, x) array, True where dose ≥ level."""
    array = sitk.GetArrayViewFromImage(dose) if isinstance(dose, sitk.Image) else np.asarray(dose)
    return {v: array >= v for v in _values(levels)}


def isodose_band_map(dose: Union[sitk.Image, np.ndarray], levels: Sequence[LevelLike]) -> np.ndarray:
    """uint8 (z, y, x) map: the number of (ascending) levels each voxel reaches (0 below the lowest level)."""
    values = sorted(_values(levels))
    if len(values) > 255:
        raise DeepDoseInputError("At most 255 isodose levels fit in a band map.")
    array = sitk.GetArrayViewFromImage(dose) if isinstance(dose, sitk.Image) else np.asarray(dose)
    return np.searchsorted(np.asarray(values), array, side="right").astype(np.uint8)


def isodose_contours_2d(slice_array: np.ndarray, levels: Sequence[LevelLike],
                        spacing: Tuple[float, float] = (1.0, 1.0),
                        origin: Tuple[float, float] = (0.0, 0.0)) -> Dict[float, List[np.ndarray]]:
    """Isodose lines of one 2D slice.

    Args:
        slice_array: (rows, columns) dose values, e.g. ``dose_zyx[k]`` for an axial slice.
        levels: isodose levels (values or :class:`IsodoseLevel`).
        spacing: (column spacing, row spacing) in mm, i.e. (x, y) for an axial slice.
        origin: (x, y) coordinate of the centre of pixel (row 0, column 0) in mm.

    Returns:
        level value → list of polylines, each an (n, 2) float array of (x, y) in mm, i.e.
        ``(origin[0] + column * spacing[0], origin[1] + row * spacing[1])``; closed lines repeat
        their first point at the end. Lines follow linear interpolation between pixel centres.
    """
    try:
        import contourpy
    except ImportError as exc:  # pragma: no cover - contourpy ships with matplotlib
        raise DeepDoseError("Isodose lines need the package 'contourpy' (pip install contourpy).") from exc
    z = np.asarray(slice_array, dtype=np.float64)
    if z.ndim != 2 or min(z.shape) < 2:
        raise DeepDoseInputError(f"An isodose slice must be a 2D array of at least 2×2 pixels, got shape {z.shape}.")
    x = origin[0] + spacing[0] * np.arange(z.shape[1])
    y = origin[1] + spacing[1] * np.arange(z.shape[0])
    generator = contourpy.contour_generator(x, y, z, line_type=contourpy.LineType.Separate)
    return {v: [np.asarray(line, dtype=np.float64) for line in generator.lines(v)] for v in _values(levels)}
