"""Dose-volume histograms (cumulative and differential, absolute and relative volume) and CSV/TSV tables.

Definitions used throughout :mod:`DeepDoseLib.analysis` (volumes are partial-volume weighted, see
:mod:`.masks`):

* **cumulative DVH** V(D): volume of the structure receiving a dose (or dose rate) **≥ D**, in mL or
  in % of the structure's volume inside the dose grid;
* **differential DVH**: volume whose dose lies in ``[edge_i, edge_i + bin_width)``;
* **Dx**: the dose received by the hottest x % of the volume, i.e. the highest D with V(D) ≥ x %
  (D2 ≈ near-maximum, D50 = median, D98 ≈ near-minimum); **Vx**: V(x) for a dose level x.

:class:`DVH` answers Dx and Vx from its binned cumulative DVH, linear between bin edges (exact if the
dose is uniformly spread within each bin). Organ tables (:mod:`.organs`) use the same definitions on
the unbinned voxel values (:func:`exact_dose_at_volume`). The mean is always the exact voxel mean.
The same code serves dose rates (mGy/h) and absorbed doses (Gy): the unit is carried, never assumed.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence, Union

import numpy as np
import SimpleITK as sitk

from ..errors import DeepDoseInputError
from .masks import DEFAULT_OVERSAMPLING, CroppedMask, fractional_mask

#: Units a dose map may carry (rates and absorbed doses); "%" for relative dose.
DOSE_UNITS = ("mGy/h", "Gy/h", "uGy/h", "Gy", "mGy", "cGy", "%")
#: Number of bins an automatic bin width aims at, up to the structure's maximum.
AUTO_BINS = 1000


def check_dose_unit(unit: str) -> str:
    """Return ``unit`` if it is one of :data:`DOSE_UNITS`, else raise :class:`DeepDoseInputError`."""
    if unit not in DOSE_UNITS:
        raise DeepDoseInputError(f"Unknown dose unit {unit!r}; use one of {', '.join(DOSE_UNITS)}.")
    return unit


def unit_token(unit: str) -> str:
    """The unit as it appears in column and field names: ``"mGy/h"`` → ``"mGy_per_h"``, ``"%"`` → ``"percent"``."""
    return check_dose_unit(unit).replace("/", "_per_").replace("%", "percent")


def table_delimiter(path: Union[str, Path]) -> str:
    """Field separator from a table file's suffix: ``.csv`` → comma, ``.tsv``/``.txt`` → tab."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return ","
    if suffix in (".tsv", ".txt", ".tab"):
        return "\t"
    raise DeepDoseInputError(f"Table {path}: use a .csv or .tsv file name.")


def dose_array(dose_image: Union[sitk.Image, np.ndarray]) -> np.ndarray:
    """The dose values as a float64 (z, y, x) array, refusing NaN and infinite voxels."""
    array = sitk.GetArrayViewFromImage(dose_image) if isinstance(dose_image, sitk.Image) else np.asarray(dose_image)
    if array.ndim != 3:
        raise DeepDoseInputError(f"The dose map must be 3D, got {array.ndim} dimensions.")
    array = array.astype(np.float64, copy=False)
    if not np.all(np.isfinite(array)):
        raise DeepDoseInputError(f"The dose map holds {int(np.sum(~np.isfinite(array)))} NaN or infinite voxels.")
    return array


def voxel_volume_mL(image: sitk.Image) -> float:
    """Volume of one voxel of ``image`` in mL (spacing in mm)."""
    return float(np.prod(image.GetSpacing())) * 1e-3


class WeightedDoses:
    """Unbinned voxel doses with volume weights: exact Dx and Vx in O(N), without sorting all voxels.

    Dx is found in two passes: a 4096-bin weighted histogram locates the bin where the cumulative
    volume (from the hottest voxel down) reaches x %, then only the voxels of that bin are sorted.
    """

    N_BINS = 4096

    def __init__(self, dose: np.ndarray, weights: np.ndarray) -> None:
        self.dose = np.asarray(dose, np.float64).ravel()
        self.weights = np.asarray(weights, np.float64).ravel()
        if self.dose.size == 0 or self.dose.size != self.weights.size:
            raise DeepDoseInputError("Dose statistics need at least one voxel and one weight per voxel.")
        self.total = float(self.weights.sum())
        self.low, self.high = float(self.dose.min()), float(self.dose.max())
        scale = self.N_BINS / (self.high - self.low) if self.high > self.low else 0.0
        self.index = np.minimum(((self.dose - self.low) * scale).astype(np.int64), self.N_BINS - 1)
        per_bin = np.bincount(self.index, weights=self.weights, minlength=self.N_BINS)
        self.weight_from_bin = np.cumsum(per_bin[::-1])[::-1]  # weight in bins >= b (non-increasing)

    def dose_at_volume(self, percent: Union[float, Sequence[float]]) -> np.ndarray:
        """Dx: the lowest dose within the hottest x % of the volume (x = 0 → max, 100 → min)."""
        x = np.atleast_1d(np.asarray(percent, np.float64))
        if np.any((x < 0) | (x > 100)):
            raise DeepDoseInputError("Dx needs a volume percentage in [0, 100].")
        out = np.empty(x.size)
        for i, target in enumerate(np.maximum(x / 100.0 * self.total * (1 - 1e-12), 1e-300)):
            b = int(np.clip(np.searchsorted(-self.weight_from_bin, -target, side="right") - 1, 0, self.N_BINS - 1))
            above = float(self.weight_from_bin[b + 1]) if b + 1 < self.N_BINS else 0.0
            in_bin = self.index == b
            values, weights = self.dose[in_bin], self.weights[in_bin]
            order = np.argsort(-values, kind="stable")
            cumulative = above + np.cumsum(weights[order])
            k = min(int(np.searchsorted(cumulative, target, side="left")), values.size - 1)
            out[i] = values[order][k]
        return out

    def volume_fraction_at_dose(self, level: Union[float, Sequence[float]]) -> np.ndarray:
        """Vx: fraction (0..1) of the volume receiving a dose ≥ each level."""
        levels = np.atleast_1d(np.asarray(level, np.float64))
        return np.array([float(self.weights[self.dose >= v].sum()) / self.total for v in levels])


def exact_dose_at_volume(dose: np.ndarray, weights: np.ndarray, percent: Union[float, Sequence[float]]) -> np.ndarray:
    """Dx of unbinned voxel values ``dose`` with volume weights ``weights`` (see the module docstring)."""
    return WeightedDoses(dose, weights).dose_at_volume(percent)


def _nice_ceil(value: float) -> float:
    """Smallest of 1, 2, 2.5, 5 × 10^k that is ≥ ``value``."""
    exponent = math.floor(math.log10(value))
    for mantissa in (1.0, 2.0, 2.5, 5.0, 10.0):
        if mantissa * 10.0 ** exponent >= value * (1 - 1e-12):
            return mantissa * 10.0 ** exponent
    return 10.0 ** (exponent + 1)


@dataclass
class DVH:
    """Dose-volume histogram of one structure.

    Attributes:
        name: structure name.
        unit: dose unit of the bins (e.g. ``"mGy/h"`` or ``"Gy"``).
        bin_edges: (n + 1,) dose bin edges, equally spaced by ``bin_width``.
        differential_volume_mL: (n,) volume with dose in ``[bin_edges[i], bin_edges[i + 1])``.
        total_volume_mL: structure volume inside the dose grid (partial-volume weighted).
        mean: exact volume-weighted mean dose of the voxels (not from the bins).
        min, max: lowest and highest dose of voxels with a non-zero fraction.
    """

    name: str
    unit: str
    bin_edges: np.ndarray
    differential_volume_mL: np.ndarray
    total_volume_mL: float
    mean: float
    min: float
    max: float

    @property
    def bin_width(self) -> float:
        return float(self.bin_edges[1] - self.bin_edges[0])

    @property
    def dose_bins(self) -> np.ndarray:
        """(n,) lower bin edges: ``cumulative_volume_mL[i]`` is the volume receiving ≥ ``dose_bins[i]``."""
        return self.bin_edges[:-1]

    @property
    def cumulative_volume_mL(self) -> np.ndarray:
        """(n,) volume receiving a dose ≥ ``dose_bins[i]`` [mL]."""
        return np.cumsum(self.differential_volume_mL[::-1])[::-1]

    @property
    def cumulative_volume_percent(self) -> np.ndarray:
        """(n,) cumulative DVH in % of the structure's volume."""
        return 100.0 * self.cumulative_volume_mL / self.total_volume_mL

    @property
    def differential_volume_percent(self) -> np.ndarray:
        return 100.0 * self.differential_volume_mL / self.total_volume_mL

    def _cumulative_at_edges(self) -> np.ndarray:
        return np.append(self.cumulative_volume_mL, 0.0)

    def dose_at_volume(self, percent: Union[float, Sequence[float]]) -> Union[float, np.ndarray]:
        """Dx [unit]: highest dose received by at least ``percent`` % of the volume (linear between edges)."""
        x = np.asarray(percent, np.float64)
        if np.any((x < 0) | (x > 100)):
            raise DeepDoseInputError("Dx needs a volume percentage in [0, 100].")
        target = np.atleast_1d(x) / 100.0 * self.total_volume_mL
        cumulative = self._cumulative_at_edges()
        i = np.clip(np.searchsorted(-cumulative, -target * (1 - 1e-12), side="right") - 1, 0, cumulative.size - 2)
        drop = cumulative[i] - cumulative[i + 1]
        step = np.where(drop > 0, (cumulative[i] - target) / np.where(drop > 0, drop, 1.0), 0.0)
        result = self.bin_edges[i] + np.clip(step, 0.0, 1.0) * self.bin_width
        return float(result[0]) if x.ndim == 0 else result

    def volume_at_dose(self, level: Union[float, Sequence[float]], percent: bool = True) -> Union[float, np.ndarray]:
        """Vx: volume receiving ≥ ``level`` [unit], in % (default) or mL; linear between bin edges."""
        volume = np.interp(np.asarray(level, np.float64), self.bin_edges, self._cumulative_at_edges(),
                           left=self.total_volume_mL, right=0.0)
        if percent:
            volume = 100.0 * volume / self.total_volume_mL
        return float(volume) if np.ndim(volume) == 0 else volume


def dvh_from_values(dose: np.ndarray, volume_mL: np.ndarray, bin_width: Optional[float] = None,
                    unit: str = "mGy/h", name: str = "") -> DVH:
    """DVH of voxel doses ``dose`` with per-voxel volumes ``volume_mL`` (fraction × voxel volume).

    ``bin_width`` in the dose unit; automatic when None: the smallest of 1, 2, 2.5, 5 × 10^k that
    gives at most :data:`AUTO_BINS` bins up to the maximum. Bins start at 0 (or below, for negative doses).
    """
    check_dose_unit(unit)
    dose = np.asarray(dose, np.float64).ravel()
    volume_mL = np.asarray(volume_mL, np.float64).ravel()
    keep = volume_mL > 0
    dose, volume_mL = dose[keep], volume_mL[keep]
    if dose.size == 0:
        raise DeepDoseInputError(f"Structure {name or '(unnamed)'} has no volume inside the dose grid.")
    low, high = float(dose.min()), float(dose.max())
    if bin_width is None:
        span = max(high, -low)
        bin_width = _nice_ceil(span / AUTO_BINS) if span > 0 else 1.0
    elif not (np.isfinite(bin_width) and bin_width > 0):
        raise DeepDoseInputError(f"DVH bin width must be positive, got {bin_width!r}.")
    start = min(0.0, math.floor(low / bin_width) * bin_width)
    n_bins = int(math.floor((high - start) / bin_width)) + 1
    index = np.clip(np.floor((dose - start) / bin_width).astype(np.int64), 0, n_bins - 1)
    differential = np.bincount(index, weights=volume_mL, minlength=n_bins)
    total = float(volume_mL.sum())
    return DVH(name, unit, start + bin_width * np.arange(n_bins + 1), differential, total,
               float(np.dot(dose, volume_mL) / total), low, high)


def compute_dvh(dose_image: sitk.Image, mask: Union[np.ndarray, sitk.Image, CroppedMask],
                bin_width: Optional[float] = None, unit: str = "mGy/h", *, label: int = 1, name: str = "",
                oversampling: int = DEFAULT_OVERSAMPLING) -> DVH:
    """DVH of one structure on a dose (or dose-rate) image.

    Args:
        dose_image: dose map (SimpleITK, values in ``unit``).
        mask: fractions in [0, 1] as a numpy (z, y, x) array on the dose grid, a :class:`CroppedMask`,
            or a SimpleITK label map on any grid (voxels equal to ``label``; resampled to fractions with
            ``oversampling`` sub-samples per axis, see :mod:`.masks`).
        bin_width: dose bin width in ``unit`` (automatic when None).
    """
    dose = dose_array(dose_image)
    cropped = fractional_mask(mask, dose_image, label, oversampling)
    if cropped.is_empty:
        raise DeepDoseInputError(f"Structure {name or label} does not overlap the dose grid.")
    values, fractions = cropped.values_and_weights(dose)
    return dvh_from_values(values, fractions * voxel_volume_mL(dose_image), bin_width, unit, name)


def write_dvh_table(dvhs: Dict[str, DVH], path: Union[str, Path], kind: str = "cumulative",
                    volume: str = "percent") -> Path:
    """Write DVHs as one table: a dose column, then one column per structure (CSV or TSV by suffix).

    Args:
        kind: ``"cumulative"`` (rows: dose level D, values: volume ≥ D, last row 0) or
            ``"differential"`` (rows: bin start, values: volume in the bin).
        volume: ``"percent"`` of each structure's volume or ``"mL"``.

    Cumulative DVHs with different bin widths are tabulated on the finest width (values linear
    between each DVH's own edges); differential DVHs must share their bin width.
    """
    if not dvhs:
        raise DeepDoseInputError("No DVH to write.")
    if kind not in ("cumulative", "differential") or volume not in ("percent", "mL"):
        raise DeepDoseInputError("kind must be 'cumulative' or 'differential', volume 'percent' or 'mL'.")
    delimiter = table_delimiter(path)
    units = {d.unit for d in dvhs.values()}
    if len(units) > 1:
        raise DeepDoseInputError(f"DVHs in one table must share their dose unit, got {', '.join(sorted(units))}.")
    width = min(d.bin_width for d in dvhs.values())
    start = min(float(d.bin_edges[0]) for d in dvhs.values())
    stop = max(float(d.bin_edges[-1]) for d in dvhs.values())
    n_edges = int(round((stop - start) / width)) + 1
    edges = start + width * np.arange(n_edges)
    columns = []
    for d in dvhs.values():
        if kind == "cumulative":
            values = np.asarray(d.volume_at_dose(edges, percent=(volume == "percent")))
        else:
            if abs(d.bin_width - width) > 1e-9 * width:
                raise DeepDoseInputError("Differential DVHs in one table need the same bin width; compute them with "
                                         "an explicit bin_width.")
            values = np.zeros(n_edges - 1)
            first = int(round((float(d.bin_edges[0]) - start) / width))
            values[first:first + d.differential_volume_mL.size] = (
                d.differential_volume_percent if volume == "percent" else d.differential_volume_mL)
        columns.append(values)
    token = unit_token(units.pop())
    header = [f"dose_{token}" if kind == "cumulative" else f"dose_bin_start_{token}"]
    header += [f"{name} [{kind} {'%' if volume == 'percent' else 'mL'}]" for name in dvhs]
    rows = edges if kind == "cumulative" else edges[:-1]
    path = Path(path)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        for i, dose in enumerate(rows):
            writer.writerow([f"{dose:.6g}"] + [f"{column[i]:.6g}" for column in columns])
    return path


def dvhs_for_labels(dose_image: sitk.Image, labels: sitk.Image, names: Dict[int, str],
                    bin_width: Optional[float] = None, unit: str = "mGy/h",
                    oversampling: int = DEFAULT_OVERSAMPLING, skip_labels: Iterable[int] = (0,)) -> Dict[str, DVH]:
    """DVHs of every named label of a label map (any grid), keyed by name; labels absent from the grid are left out."""
    from .masks import fractional_masks

    dose = dose_array(dose_image)
    values = [v for v in names if v not in set(skip_labels)]
    out = {}
    for value, cropped in fractional_masks(labels, dose_image, values, oversampling).items():
        if not cropped.is_empty:
            doses, fractions = cropped.values_and_weights(dose)
            out[names[value]] = dvh_from_values(doses, fractions * voxel_volume_mL(dose_image), bin_width, unit,
                                                names[value])
    return out
