"""CT-based tissue model: HU → mass density [g/cm³] and HU → material class.

Both calibrations are data files with their provenance (``data/hu_to_density_schneider2000.csv``,
``data/hu_to_material.csv``, ``data/materials.json``) and can be replaced by the user's own
scanner calibration (a CSV with the same columns).
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from .errors import DeepDoseInputError

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_DENSITY_TABLE = DATA_DIR / "hu_to_density_schneider2000.csv"
DEFAULT_MATERIAL_TABLE = DATA_DIR / "hu_to_material.csv"
MATERIALS_FILE = DATA_DIR / "materials.json"

PathLike = Union[str, Path]

#: Lightest voxel that counts as tissue [g/cm³]: lung (≈ 0.2–0.5) is tissue, air and bowel gas are not.
#: Used for the tissue maximum, the evaluation masks, the scatter medium and the activity-in-air warning.
TISSUE_MIN_DENSITY_g_per_cm3 = 0.05
#: HU given to dose-grid voxels that the CT does not cover (water: see :func:`DeepDoseLib.inputs.prepare_inputs`).
HU_OUTSIDE_CT = 0.0


def tissue_mask(density_g_per_cm3: np.ndarray) -> np.ndarray:
    """Voxels of tissue: density ≥ :data:`TISSUE_MIN_DENSITY_g_per_cm3` (bool array of the same shape)."""
    return np.asarray(density_g_per_cm3) >= TISSUE_MIN_DENSITY_g_per_cm3


def tissue_maximum_index(values: np.ndarray, density_g_per_cm3: Optional[np.ndarray]):
    """(value, (z, y, x) index) of the largest finite value among tissue voxels.

    Activity blurred into air gives per-gram-of-air dose rates that would dwarf every organ, so the
    maximum is taken over tissue; over all voxels when no density is given or no voxel is tissue.
    Returns (0.0, None) when no value is finite.
    """
    array = np.asarray(values)
    candidates = np.isfinite(array)
    if density_g_per_cm3 is not None:
        tissue = tissue_mask(density_g_per_cm3)
        if (tissue & candidates).any():
            candidates &= tissue
    if not candidates.any():
        return 0.0, None
    index = np.unravel_index(int(np.argmax(np.where(candidates, array, -np.inf))), array.shape)
    return float(array[index]), index


def _read_csv_rows(path: PathLike) -> List[List[str]]:
    try:
        with open(path, newline="") as handle:
            rows = [r for r in csv.reader(line for line in handle if not line.lstrip().startswith("#"))]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DeepDoseInputError(f"Cannot read the table {path}: {exc}") from exc
    rows = [r for r in rows if r and any(c.strip() for c in r)]
    if not rows:
        raise DeepDoseInputError(f"The table {path} is empty.")
    return rows


@dataclass(frozen=True)
class HUDensityCalibration:
    """Piecewise-linear HU → mass-density calibration (values clamped outside the table)."""

    hu: np.ndarray
    density_g_per_cm3: np.ndarray
    source: str = ""

    def __post_init__(self) -> None:
        if self.hu.ndim != 1 or self.hu.shape != self.density_g_per_cm3.shape or self.hu.size < 2:
            raise DeepDoseInputError("HU-density table needs at least two (HU, density) rows.")
        if not (np.all(np.isfinite(self.hu)) and np.all(np.isfinite(self.density_g_per_cm3))):
            raise DeepDoseInputError(f"The HU-density table holds NaN or infinite values ({self.source}).")
        if np.any(np.diff(self.hu) <= 0):
            raise DeepDoseInputError(f"HU values of the density table must increase strictly ({self.source}).")
        if np.any(self.density_g_per_cm3 <= 0):
            raise DeepDoseInputError(f"Densities of the HU-density table must be > 0 g/cm³ ({self.source}).")

    @classmethod
    def from_csv(cls, path: PathLike) -> "HUDensityCalibration":
        """Read a CSV with header ``hu,density_g_per_cm3`` (``#`` comment lines allowed)."""
        rows = _read_csv_rows(path)
        header = [c.strip() for c in rows[0]]
        if header != ["hu", "density_g_per_cm3"]:
            raise DeepDoseInputError(
                f"{path}: expected header 'hu,density_g_per_cm3' (density in g/cm³), found {','.join(header)!r}."
            )
        try:
            values = np.array([[float(a), float(b)] for a, b in rows[1:]], dtype=np.float64)
        except ValueError as exc:
            raise DeepDoseInputError(f"{path}: non-numeric row in the HU-density table ({exc}).") from exc
        return cls(values[:, 0], values[:, 1], source=str(path))

    def __call__(self, hu: np.ndarray) -> np.ndarray:
        """Mass density [g/cm³] for an array of HU values (float32, same shape)."""
        hu = np.asarray(hu, dtype=np.float64)
        return np.interp(hu, self.hu, self.density_g_per_cm3).astype(np.float32)


@lru_cache(maxsize=None)
def default_density_calibration() -> HUDensityCalibration:
    """The Schneider et al. (2000) calibration shipped with DeepDose."""
    return HUDensityCalibration.from_csv(DEFAULT_DENSITY_TABLE)


def hu_to_density(hu: np.ndarray, calibration: Optional[HUDensityCalibration] = None) -> np.ndarray:
    """Convert CT numbers [HU] to mass density [g/cm³] (float32)."""
    return (calibration or default_density_calibration())(hu)


@dataclass(frozen=True)
class Material:
    """A tissue class with its elemental composition (mass fractions summing to 1)."""

    name: str
    label: int
    nominal_density_g_per_cm3: float
    mean_excitation_energy_eV: float
    mass_fractions: Dict[str, float]


@lru_cache(maxsize=None)
def materials() -> Dict[str, Material]:
    """Material name → :class:`Material`, from ``data/materials.json`` (ICRU 46 compositions)."""
    record = json.loads(MATERIALS_FILE.read_text())["materials"]
    out = {}
    for name, m in record.items():
        total = sum(m["mass_percent"].values())
        out[name] = Material(name, int(m["label"]), float(m["nominal_density_g_per_cm3"]),
                             float(m["mean_excitation_energy_eV"]),
                             {el: pct / total for el, pct in m["mass_percent"].items()})
    return out


@dataclass(frozen=True)
class HUMaterialTable:
    """HU bins → material class: voxel gets the row with ``hu_min[i] <= HU < hu_min[i+1]``."""

    hu_min: np.ndarray
    names: Tuple[str, ...]
    source: str = ""

    @classmethod
    def from_csv(cls, path: PathLike) -> "HUMaterialTable":
        """Read a CSV with header ``hu_min,material``; material names must exist in materials.json."""
        rows = _read_csv_rows(path)
        if [c.strip() for c in rows[0]] != ["hu_min", "material"]:
            raise DeepDoseInputError(f"{path}: expected header 'hu_min,material'.")
        hu_min = np.array([-math.inf if r[0].strip() == "-inf" else float(r[0]) for r in rows[1:]])
        names = tuple(r[1].strip() for r in rows[1:])
        unknown = [n for n in names if n not in materials()]
        if unknown:
            raise DeepDoseInputError(f"{path}: unknown material(s) {unknown}; known: {sorted(materials())}.")
        if np.any(np.diff(hu_min) <= 0):
            raise DeepDoseInputError(f"{path}: hu_min must increase strictly.")
        return cls(hu_min, names, source=str(path))

    def labels(self, hu: np.ndarray) -> np.ndarray:
        """Material label (see :func:`materials`) per voxel, uint8, same shape as ``hu``."""
        index = np.searchsorted(self.hu_min, np.asarray(hu, dtype=np.float64), side="right") - 1
        index = np.clip(index, 0, len(self.names) - 1)
        lut = np.array([materials()[n].label for n in self.names], dtype=np.uint8)
        return lut[index]


@lru_cache(maxsize=None)
def default_material_table() -> HUMaterialTable:
    """The HU → material bins shipped with DeepDose (Schneider 2000 tissue segments)."""
    return HUMaterialTable.from_csv(DEFAULT_MATERIAL_TABLE)


def hu_to_material(hu: np.ndarray, table: Optional[HUMaterialTable] = None) -> np.ndarray:
    """Material label per voxel (uint8) for CT numbers [HU]; names via :func:`material_names`."""
    return (table or default_material_table()).labels(hu)


def material_names() -> Dict[int, str]:
    """Material label → name."""
    return {m.label: m.name for m in materials().values()}


#: Density → material class thresholds [g/cm³] used when only a density map is given (no CT):
#: air < 0.0505 ≤ lung < 0.91 ≤ adipose < 0.995 ≤ soft tissue < 1.12 ≤ bone: the Schneider densities of
#: the HU bin edges of ``hu_to_material.csv`` (-950 HU → 0.0505, -120 HU → 0.91, -22 HU → 0.995).
#: Bone starts at 1.12 g/cm³ (≈ 175 HU), above the 1.1199 g/cm³ of soft tissue at 100 HU, because the
#: Schneider curve is not monotonic at the soft-tissue/bone step; 120–175 HU (marrow-rich bone) is
#: therefore soft tissue when only densities are known.
DENSITY_MATERIAL_THRESHOLDS = ((0.0505, "lung"), (0.91, "adipose"), (0.995, "soft_tissue"), (1.12, "bone"))


def density_to_material(density_g_per_cm3: np.ndarray) -> np.ndarray:
    """Material label per voxel (uint8) from mass density alone (see ``DENSITY_MATERIAL_THRESHOLDS``)."""
    rho = np.asarray(density_g_per_cm3, dtype=np.float64)
    labels = np.full(rho.shape, materials()["air"].label, dtype=np.uint8)
    for threshold, name in DENSITY_MATERIAL_THRESHOLDS:
        labels[rho >= threshold] = materials()[name].label
    return labels
