"""Per-organ statistics of a dose or dose-rate map: volume, mass, means, median, extremes, Dx and Vx.

Structures come as a label map (SimpleITK, on the dose grid or any other grid) with a names dict, or
as a mapping name → mask. Label maps on another grid become **fractional masks** on the dose grid
(each dose voxel supersampled ``oversampling``³ times, nearest neighbour into the label grid; see
:mod:`.masks`), and every statistic weights a voxel by its fraction: a voxel half inside the liver
adds half its volume and mass. Statistic definitions (Dx, Vx, cumulative DVH) are those of
:mod:`.dvh`, evaluated on the unbinned voxel values.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import SimpleITK as sitk

from ..errors import DeepDoseInputError
from ..geometry import resample_to_grid, same_grid
from ..output_paths import atomic_write
from .dvh import WeightedDoses, check_dose_unit, dose_array, table_delimiter, unit_token, voxel_volume_mL
from .masks import DEFAULT_OVERSAMPLING, CroppedMask, fractional_mask, fractional_masks

MaskLike = Union[np.ndarray, sitk.Image, CroppedMask]


@dataclass
class OrganStatistics:
    """Statistics of one structure; every dose value is in ``unit`` (e.g. ``"mGy/h"`` or ``"Gy"``).

    Attributes:
        volume_mL: structure volume inside the dose grid (sum of voxel fractions × voxel volume).
        structure_volume_mL: volume of the whole structure in its own grid (label maps), so that
            ``volume_mL / structure_volume_mL`` is the fraction covered by the dose grid; equals
            ``volume_mL`` for masks given on the dose grid.
        mass_g: Σ fraction × density × voxel volume; NaN without a density map.
        mean_mass_weighted: Σ f ρ D / Σ f ρ (the MIRD mean absorbed dose); NaN without density.
        mean_voxel_weighted: Σ f D / Σ f (voxel-weighted mean with partial-volume fractions f).
        median: volume-weighted median (= D50).
        min, max: extreme voxel values among voxels with a non-zero fraction.
        D2, D50, D98: dose received by the hottest 2, 50, 98 % of the volume (cumulative DVH, unbinned).
        v_percent: dose level → % of the volume receiving ≥ that level.
        fallback_percent: % of the structure's volume (voxel fractions as weights) where a learned method
            returned its physics baseline (Deep-dose → density-scaled VSV); None when the method has no
            fallback mask, NaN for a structure outside the dose grid.
    """

    name: str
    label: int
    unit: str
    volume_mL: float
    structure_volume_mL: float
    mass_g: float
    mean_mass_weighted: float
    mean_voxel_weighted: float
    median: float
    min: float
    max: float
    D2: float
    D50: float
    D98: float
    v_percent: Dict[float, float] = field(default_factory=dict)
    fallback_percent: Optional[float] = None

    @property
    def mean_weighting(self) -> str:
        """``"mass"`` when a density map was given (then :attr:`mean` is mass-weighted), else ``"voxel"``."""
        return "voxel" if math.isnan(self.mean_mass_weighted) else "mass"

    @property
    def mean(self) -> float:
        """The preferred mean: mass-weighted when density was given, voxel(volume)-weighted otherwise."""
        return self.mean_voxel_weighted if math.isnan(self.mean_mass_weighted) else self.mean_mass_weighted

    def _in_mGy_per_h(self, value: float) -> float:
        if self.unit != "mGy/h":
            raise AttributeError(f"statistics of {self.name} are in {self.unit}, not mGy/h")
        return value

    @property
    def mean_mGy_per_h(self) -> float:
        """:attr:`mean` of a dose-rate map in mGy/h (kept for callers of the first version)."""
        return self._in_mGy_per_h(self.mean)

    @property
    def max_mGy_per_h(self) -> float:
        return self._in_mGy_per_h(self.max)


def _statistics(name: str, label: int, unit: str, dose: np.ndarray, mask: CroppedMask, voxel_mL: float,
                density: Optional[np.ndarray], structure_volume_mL: Optional[float],
                dose_levels: Sequence[float], fallback: Optional[np.ndarray] = None) -> OrganStatistics:
    nan = float("nan")
    if mask.is_empty:
        return OrganStatistics(name, label, unit, 0.0, structure_volume_mL or 0.0, nan if density is None else 0.0,
                               nan, nan, nan, nan, nan, nan, nan, nan, {float(v): nan for v in dose_levels},
                               None if fallback is None else nan)
    values, fractions = mask.values_and_weights(dose)
    volume = float(fractions.sum() * voxel_mL)
    mean_volume = float(np.dot(values, fractions) / fractions.sum())
    mass = mean_mass = nan
    if density is not None:
        rho = mask.values_and_weights(density)[0].astype(np.float64) * fractions
        mass = float(rho.sum() * voxel_mL)
        mean_mass = float(np.dot(values, rho) / rho.sum()) if rho.sum() > 0 else nan
    ranked = WeightedDoses(values, fractions)
    d2, d50, d98 = (float(v) for v in ranked.dose_at_volume([2.0, 50.0, 98.0]))
    levels = [float(v) for v in dose_levels]
    v_percent = dict(zip(levels, (100.0 * ranked.volume_fraction_at_dose(levels)).tolist())) if levels else {}
    fallback_percent = None
    if fallback is not None:
        fell_back = mask.values_and_weights(fallback)[0].astype(np.float64)
        fallback_percent = float(100.0 * np.dot(fell_back, fractions) / fractions.sum())
    return OrganStatistics(name, label, unit, volume, volume if structure_volume_mL is None else structure_volume_mL,
                           mass, mean_mass, mean_volume, d50, float(values.min()), float(values.max()),
                           d2, d50, d98, v_percent, fallback_percent)


def _density_on_grid(density: Union[np.ndarray, sitk.Image, None], dose_image: sitk.Image) -> Optional[np.ndarray]:
    if density is None:
        return None
    if isinstance(density, sitk.Image):
        if not same_grid(density, dose_image):
            density = resample_to_grid(sitk.Cast(density, sitk.sitkFloat32), dose_image, default_value=1.0)
        density = sitk.GetArrayFromImage(density)
    density = np.asarray(density)
    shape = tuple(reversed(dose_image.GetSize()))
    if density.shape != shape:
        raise DeepDoseInputError(f"The density map has shape {density.shape}, the dose grid {shape} (z, y, x).")
    if not np.all(np.isfinite(density)) or density.min() < 0:
        raise DeepDoseInputError("The density map must hold finite, non-negative values (g/cm³).")
    return density


def _fallback_on_grid(fallback: Union[np.ndarray, sitk.Image, None], dose_image: sitk.Image) -> Optional[np.ndarray]:
    """The fallback mask as a bool (z, y, x) array on the dose grid (an image must lie on that grid)."""
    if fallback is None:
        return None
    if isinstance(fallback, sitk.Image):
        if not same_grid(fallback, dose_image):
            raise DeepDoseInputError("The fallback mask does not lie on the dose grid.")
        fallback = sitk.GetArrayFromImage(fallback)
    fallback = np.asarray(fallback) != 0
    shape = tuple(reversed(dose_image.GetSize()))
    if fallback.shape != shape:
        raise DeepDoseInputError(f"The fallback mask has shape {fallback.shape}, the dose grid {shape} (z, y, x).")
    return fallback


def organ_statistics(dose_image: sitk.Image, labels_image: Union[sitk.Image, Mapping[str, MaskLike]],
                     names: Optional[Mapping[int, str]] = None,
                     density_g_per_cm3: Union[np.ndarray, sitk.Image, None] = None, unit: str = "mGy/h",
                     dose_levels: Sequence[float] = (), oversampling: int = DEFAULT_OVERSAMPLING,
                     skip_labels: Sequence[int] = (0,),
                     fallback: Union[np.ndarray, sitk.Image, None] = None) -> List[OrganStatistics]:
    """Statistics of each structure of a dose (``unit="Gy"``) or dose-rate (``"mGy/h"``) map.

    Args:
        dose_image: dose or dose-rate map (SimpleITK, values in ``unit``).
        labels_image: an integer label map on any grid (every label present except ``skip_labels``
            gets a row, sorted by label value), or a mapping name → mask (fractions as a numpy
            (z, y, x) array on the dose grid, a :class:`CroppedMask`, or a binary SimpleITK image on
            any grid), one row per entry in order.
        names: label value → structure name for label maps (missing ones are called ``"label N"``).
        density_g_per_cm3: mass density on the dose grid ((z, y, x) array, or an image resampled
            linearly onto it); gives masses and mass-weighted means.
        dose_levels: levels (in ``unit``) for the V-levels of :attr:`OrganStatistics.v_percent`.
        oversampling: sub-samples per axis and dose voxel for masks on another grid (see :mod:`.masks`).
        fallback: voxels where a learned method returned its physics baseline (bool (z, y, x) array or a
            0/1 image on the dose grid, :attr:`DeepDoseLib.dose.DoseResult.fallback`); gives each row's
            :attr:`OrganStatistics.fallback_percent`. None: the rows have none.
    """
    check_dose_unit(unit)
    dose = dose_array(dose_image)
    density = _density_on_grid(density_g_per_cm3, dose_image)
    fallback = _fallback_on_grid(fallback, dose_image)
    voxel_mL = voxel_volume_mL(dose_image)
    rows = []
    if isinstance(labels_image, sitk.Image):
        names = dict(names or {})
        stats = sitk.LabelShapeStatisticsImageFilter()
        stats.Execute(sitk.Cast(labels_image, sitk.sitkUInt32) if labels_image.GetPixelID() in
                      (sitk.sitkFloat32, sitk.sitkFloat64) else labels_image)
        values = sorted(int(v) for v in stats.GetLabels() if int(v) not in set(skip_labels))
        label_mL = voxel_volume_mL(labels_image)
        masks = fractional_masks(labels_image, dose_image, values, oversampling)
        for value in values:
            rows.append(_statistics(names.get(value, f"label {value}"), value, unit, dose, masks[value], voxel_mL,
                                    density, stats.GetNumberOfPixels(value) * label_mL, dose_levels, fallback))
        return rows
    if not isinstance(labels_image, Mapping):
        raise DeepDoseInputError("Structures must be a label image or a mapping name → mask.")
    for index, (name, mask) in enumerate(labels_image.items(), start=1):
        structure_mL = None
        if isinstance(mask, sitk.Image):  # binary: every non-zero voxel belongs to the structure
            mask = sitk.Cast(mask != 0, sitk.sitkUInt8)
            structure_mL = float(np.count_nonzero(sitk.GetArrayViewFromImage(mask))) * voxel_volume_mL(mask)
        cropped = fractional_mask(mask, dose_image, 1, oversampling)
        rows.append(_statistics(str(name), index, unit, dose, cropped, voxel_mL, density, structure_mL, dose_levels,
                                fallback))
    return rows


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.6g}"


def organ_table_rows(rows: List[OrganStatistics]) -> List[List[str]]:
    """Header and rows of the full organ table (all statistics, dose columns named with their unit)."""
    if not rows:
        return [["organ"]]
    units = {r.unit for r in rows}
    if len(units) > 1:
        raise DeepDoseInputError(f"Organ rows mix dose units: {', '.join(sorted(units))}.")
    token = unit_token(rows[0].unit)
    levels = list(rows[0].v_percent)
    header = ["organ", "label", "volume_mL", "structure_volume_mL", "mass_g", f"mean_mass_weighted_{token}",
              f"mean_voxel_weighted_{token}", f"median_{token}", f"min_{token}", f"max_{token}", f"D2_{token}",
              f"D50_{token}", f"D98_{token}"] + [f"V{level:g}_{token}_percent" for level in levels]
    fallback = any(r.fallback_percent is not None for r in rows)
    if fallback:
        header.append("fallback_pct")
    table = [header]
    for r in rows:
        table.append([r.name, str(r.label)] + [_fmt(v) for v in (
            r.volume_mL, r.structure_volume_mL, r.mass_g, r.mean_mass_weighted, r.mean_voxel_weighted, r.median,
            r.min, r.max, r.D2, r.D50, r.D98)] + [_fmt(r.v_percent.get(level, float("nan"))) for level in levels]
            + ([_fmt(float("nan") if r.fallback_percent is None else r.fallback_percent)] if fallback else []))
    return table


def write_organ_table(rows: List[OrganStatistics], path: Union[str, Path]) -> Path:
    """Write the full organ table (see :func:`organ_table_rows`) as CSV (``.csv``) or TSV (``.tsv``)."""
    path = Path(path)
    delimiter = table_delimiter(path)
    table = organ_table_rows(rows)

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as handle:
            csv.writer(handle, delimiter=delimiter).writerows(table)
    return atomic_write(path, write)  # temporary file renamed into place


def format_organ_table(rows: List[OrganStatistics]) -> str:
    """A compact plain-text table (tab-separated header + rows) for terminals and TSV files."""
    token = unit_token(rows[0].unit) if rows else "mGy_per_h"
    lines = [f"organ\tvolume_mL\tmass_g\tmean_{token}\tmax_{token}\tmean_weighting"]
    for r in rows:
        lines.append(f"{r.name}\t{r.volume_mL:.1f}\t{r.mass_g:.1f}\t{r.mean:.4g}\t{r.max:.4g}\t{r.mean_weighting}")
    return "\n".join(lines)
