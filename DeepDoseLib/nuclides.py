"""Radionuclide decay data (ICRP Publication 107) as used by every dose method.

The data files in ``DeepDoseLib/data/nuclides/`` are generated, unmodified, from ICRP-107 by
``tools/make_nuclide_data.py``. Energies are in MeV, yields in particles per decay.

Emission kinds follow ICRP-107: ``beta-`` and ``beta+`` (mean energy and yield of each branch),
``IE`` (internal-conversion electrons), ``auger``, ``alpha``, ``alpha recoil`` (charged, deposited
locally at voxel scale), and ``gamma``, ``X``, ``annihilation`` (photons).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

import numpy as np

from .errors import DeepDoseInputError

DATA_DIR = Path(__file__).resolve().parent / "data" / "nuclides"

#: Charged-particle emission kinds (kinetic energy deposited locally in the LED method).
CHARGED_KINDS: Tuple[str, ...] = ("beta-", "beta+", "IE", "auger", "alpha", "alpha recoil")
#: Photon emission kinds.
PHOTON_KINDS: Tuple[str, ...] = ("gamma", "X", "annihilation")


@dataclass(frozen=True)
class EmissionLines:
    """Discrete emission lines: energies [MeV] and yields [per decay] (1-D arrays of equal length)."""

    energies_MeV: np.ndarray
    yields_per_decay: np.ndarray

    @property
    def energy_per_decay_MeV(self) -> float:
        """Σ E·y [MeV per decay]."""
        return float(np.sum(self.energies_MeV * self.yields_per_decay))

    @property
    def yield_per_decay(self) -> float:
        """Σ y [particles per decay]."""
        return float(np.sum(self.yields_per_decay))


@dataclass(frozen=True)
class Nuclide:
    """Decay data of one radionuclide.

    Attributes:
        name: compact name used across DeepDose, e.g. ``"Ga68"``.
        symbol: ICRP-107 name, e.g. ``"Ga-68"``.
        half_life_s: physical half-life [s].
        emissions: emission kind → :class:`EmissionLines`.
        beta_spectrum_energy_MeV, beta_spectrum_per_MeV: continuous beta spectrum, β− and β+
            together, in particles per MeV per decay (integrates to the total beta yield).
        source: provenance of the data.
    """

    name: str
    symbol: str
    half_life_s: float
    emissions: Dict[str, EmissionLines]
    beta_spectrum_energy_MeV: np.ndarray
    beta_spectrum_per_MeV: np.ndarray
    source: str = ""
    _empty: EmissionLines = field(default=EmissionLines(np.zeros(0), np.zeros(0)), repr=False)

    def lines(self, kind: str) -> EmissionLines:
        """Emission lines of one ICRP-107 kind (empty when the nuclide has none)."""
        return self.emissions.get(kind, self._empty)

    def energy_per_decay_MeV(self, kinds: Iterable[str]) -> float:
        """Mean energy emitted per decay [MeV] summed over the given emission kinds."""
        return float(sum(self.lines(k).energy_per_decay_MeV for k in kinds))

    @property
    def charged_energy_per_decay_MeV(self) -> float:
        """Kinetic energy of electrons, positrons and alphas per decay [MeV]."""
        return self.energy_per_decay_MeV(CHARGED_KINDS)

    @property
    def photon_energy_per_decay_MeV(self) -> float:
        """Energy of gamma, X-ray and annihilation photons per decay [MeV]."""
        return self.energy_per_decay_MeV(PHOTON_KINDS)

    @property
    def positron_yield(self) -> float:
        """Positrons per decay."""
        return self.lines("beta+").yield_per_decay

    @property
    def mean_positron_energy_MeV(self) -> float:
        """Mean kinetic energy of a positron [MeV] (0 when the nuclide emits none)."""
        y = self.positron_yield
        return self.lines("beta+").energy_per_decay_MeV / y if y > 0 else 0.0

    @property
    def mean_beta_minus_energy_MeV(self) -> float:
        """Mean kinetic energy of a β− particle [MeV] (0 when the nuclide emits none)."""
        lines = self.lines("beta-")
        return lines.energy_per_decay_MeV / lines.yield_per_decay if lines.yield_per_decay > 0 else 0.0

    @property
    def decay_constant_per_s(self) -> float:
        """λ = ln 2 / T½ [1/s]."""
        return math.log(2.0) / self.half_life_s


def _canonical(name: str) -> str:
    """Normalise ``Ga68``, ``Ga-68``, ``68Ga``, ``ga 68``, ``Tc-99m`` → ``Ga68`` / ``Tc99m``."""
    text = re.sub(r"[\s_\-]", "", str(name).strip())
    m = re.fullmatch(r"([A-Za-z]{1,2})(\d{1,3})([mM]?)", text) or None
    if m is None:
        m2 = re.fullmatch(r"(\d{1,3})([mM]?)([A-Za-z]{1,2})", text)
        if m2 is None:
            return text
        mass, meta, elem = m2.groups()
    else:
        elem, mass, meta = m.groups()
    return elem.capitalize() + mass + meta.lower()


def list_nuclides() -> List[str]:
    """Names of the nuclides shipped with DeepDose, e.g. ``["Cu64", "F18", "Ga68", ...]``."""
    return sorted(p.stem for p in DATA_DIR.glob("*.json"))


@lru_cache(maxsize=None)
def get_nuclide(name: str) -> Nuclide:
    """Load a nuclide by name (``"Ga68"``, ``"Ga-68"`` and ``"68Ga"`` are equivalent).

    Raises:
        DeepDoseInputError: the nuclide is not shipped, with the list of known nuclides.
    """
    canonical = _canonical(name)
    path = DATA_DIR / f"{canonical}.json"
    if not path.is_file():
        raise DeepDoseInputError(
            f"Unknown radionuclide {name!r}. Known: {', '.join(list_nuclides())} "
            "(add more with tools/make_nuclide_data.py)."
        )
    record = json.loads(path.read_text())
    emissions = {
        kind: EmissionLines(np.array([e for e, _ in rows], dtype=np.float64),
                            np.array([w for _, w in rows], dtype=np.float64))
        for kind, rows in record["emissions"].items()
    }
    spectrum = record["beta_spectrum"]
    return Nuclide(
        name=record["name"],
        symbol=record["symbol"],
        half_life_s=float(record["half_life_s"]),
        emissions=emissions,
        beta_spectrum_energy_MeV=np.array(spectrum["energy_MeV"], dtype=np.float64),
        beta_spectrum_per_MeV=np.array(spectrum["particles_per_MeV_per_decay"], dtype=np.float64),
        source=record.get("source", ""),
    )
