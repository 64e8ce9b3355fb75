"""MIRD organ-level method (sphere model): one uniform dose rate per organ, the conventional baseline.

Assumptions (the ones Deep-dose argues against), stated so the numbers are read correctly:

- activity is uniform within each organ (the organ's total activity from the PET, Bq);
- self-dose only: no cross-dose between organs, and nothing outside the segmented organs (those
  voxels are 0 in the map);
- charged particles (β±, conversion and Auger electrons, alphas) are absorbed completely in the organ;
- photons (gamma, X-ray, annihilation lines of ICRP-107) deposit the self-absorbed fraction φ(E, m) of a
  unit-density soft-tissue sphere of the organ's mass, computed by DeepDose's Monte Carlo engine
  (``data/mird/photon_sphere_absorbed_fractions.json``, rebuilt by
  ``tools/make_sphere_absorbed_fractions.py``; 15 keV–3 MeV, 1–3000 g; clamped outside, with a note);
- organ mass = Σ voxel density × voxel volume from the CT (not a reference phantom mass).

Dose rate [mGy/h] = A [Bq] × E_abs [MeV/decay] × 1.602e-13 J/MeV / m [kg] × 3600 × 1000.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from ..errors import DeepDoseInputError
from ..nuclides import CHARGED_KINDS, Nuclide
from ..units import J_PER_MEV, KG_PER_G, MGY_PER_GY, S_PER_H

AF_FILE = Path(__file__).resolve().parents[1] / "data" / "mird" / "photon_sphere_absorbed_fractions.json"
PHOTON_LINE_KINDS = ("gamma", "X", "annihilation")


@dataclass
class OrganDoseRate:
    """MIRD self-dose rate of one organ."""

    name: str
    label: int
    activity_MBq: float
    mass_g: float
    absorbed_energy_MeV_per_decay: float
    photon_absorbed_energy_MeV_per_decay: float
    dose_rate_mGy_per_h: float


@lru_cache(maxsize=1)
def _af_table() -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    record = json.loads(AF_FILE.read_text())
    return (np.log(np.array(record["energy_MeV"])), np.log(np.array(record["mass_g"])),
            np.array(record["absorbed_fraction"], dtype=np.float64))


def photon_absorbed_fraction(energy_MeV: np.ndarray, mass_g: float) -> np.ndarray:
    """Self-absorbed fraction of photons of ``energy_MeV`` in a unit-density sphere of ``mass_g`` (clamped
    to the table: 15 keV–3 MeV, 1–3000 g); bilinear in (ln E, ln m)."""
    ln_e, ln_m, table = _af_table()
    x = np.clip(np.log(np.asarray(energy_MeV, dtype=np.float64)), ln_e[0], ln_e[-1])
    y = float(np.clip(np.log(mass_g), ln_m[0], ln_m[-1]))
    j = np.clip(np.searchsorted(ln_m, y) - 1, 0, len(ln_m) - 2)
    wy = (y - ln_m[j]) / (ln_m[j + 1] - ln_m[j])
    row = (1 - wy) * table[j] + wy * table[j + 1]
    return np.interp(x, ln_e, row)


def organ_absorbed_energy_MeV(nuclide: Nuclide, mass_g: float) -> Tuple[float, float]:
    """(total, photon part) of the energy absorbed in the organ per decay [MeV]."""
    photon = 0.0
    for kind in PHOTON_LINE_KINDS:
        lines = nuclide.lines(kind)
        if lines.energies_MeV.size:
            phi = photon_absorbed_fraction(lines.energies_MeV, mass_g)
            photon += float(np.sum(lines.energies_MeV * lines.yields_per_decay * phi))
    return nuclide.energy_per_decay_MeV(CHARGED_KINDS) + photon, photon


def mird_organ_dose_rates(activity_Bq_per_mL: np.ndarray, density_g_per_cm3: np.ndarray, labels: np.ndarray,
                          names: Dict[int, str], spacing_mm, nuclide: Nuclide) -> Tuple[List[OrganDoseRate], List[str]]:
    """Organ self-dose rates; ``labels`` (z, y, x) on the same grid as the activity (0 = background)."""
    if labels.shape != activity_Bq_per_mL.shape:
        raise DeepDoseInputError("MIRD: the label map must lie on the dose grid.")
    voxel_mL = float(np.prod([float(s) for s in spacing_mm])) * 1e-3
    rows, notes = [], []
    for value in (int(v) for v in np.unique(labels) if v != 0):
        mask = labels == value
        activity_Bq = float(activity_Bq_per_mL[mask].sum(dtype=np.float64)) * voxel_mL
        mass_g = float(density_g_per_cm3[mask].sum(dtype=np.float64)) * voxel_mL
        if not 1.0 <= mass_g <= 3000.0:
            notes.append(f"MIRD: {names.get(value, value)} weighs {mass_g:.3g} g, outside the 1–3000 g sphere table: "
                         "photon absorbed fractions clamped")
        energy, photon = organ_absorbed_energy_MeV(nuclide, mass_g)
        gy_per_s = activity_Bq * energy * J_PER_MEV / (mass_g * KG_PER_G)
        rows.append(OrganDoseRate(names.get(value, f"label {value}"), value, activity_Bq * 1e-6, mass_g, energy,
                                  photon, gy_per_s * S_PER_H * MGY_PER_GY))
    return rows, notes


def mird_dose_rate_map(labels: np.ndarray, rows: List[OrganDoseRate]) -> np.ndarray:
    """Voxel map [mGy/h] with each organ's MIRD dose rate, 0 outside the organs."""
    out = np.zeros(labels.shape, dtype=np.float32)
    for row in rows:
        out[labels == row.label] = row.dose_rate_mGy_per_h
    return out
