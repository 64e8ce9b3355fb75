"""Photon interaction data per material: mass attenuation and energy-absorption coefficients.

The runtime reads ``data/physics/photon_tables.json`` (written by ``tools/make_photon_tables.py``
from the Elam tables of PyPI ``xraydb``, with the Klein–Nishina continuation above 800 keV; the
README beside the file gives the provenance). xraydb is *not* needed at runtime.

Channels (cm²/g): ``photo`` (photoelectric), ``incoherent`` (Compton, bound), ``coherent``
(Rayleigh), ``total`` = their sum, ``energy_absorption`` = μ_en/ρ. Pair production is not a channel:
it starts at 1.022 MeV and is 0.8 % of the total in water at 2 MeV and 2.8 % at 3 MeV
(:func:`pair_production_mu_rho`); the transport engine neglects it.

The analytic Klein–Nishina formulas used to build the tables live here too, so that the generator
and the tests share one implementation.
"""
from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Dict, Mapping, Union

import numpy as np

from ..errors import DeepDoseInputError
from ..tissue import Material
from .constants import (AVOGADRO_per_mol, CLASSICAL_ELECTRON_RADIUS_cm, ELECTRON_REST_ENERGY_MeV, FINE_STRUCTURE,
                        element_z_a, resolve_material)

PHOTON_TABLE_FILE = Path(__file__).resolve().parents[1] / "data" / "physics" / "photon_tables.json"
#: Channels stored in the table file, in the order of ``PhysicsTables.photon_mu_rho_cm2_per_g``.
PHOTON_CHANNELS = ("photo", "incoherent", "coherent")
PHOTON_KINDS = PHOTON_CHANNELS + ("total", "energy_absorption")
_KIND_ALIASES = {"photoelectric": "photo", "incoh": "incoherent", "compton": "incoherent", "coh": "coherent",
                 "rayleigh": "coherent", "mu_en": "energy_absorption"}


def klein_nishina_cross_section_cm2(energy_MeV: np.ndarray) -> np.ndarray:
    """Klein–Nishina total cross-section per free electron σ_KN [cm²] (float64, same shape)."""
    k = np.asarray(energy_MeV, dtype=np.float64) / ELECTRON_REST_ENERGY_MeV
    log = np.log1p(2.0 * k)
    bracket = ((1.0 + k) / k ** 2 * (2.0 * (1.0 + k) / (1.0 + 2.0 * k) - log / k)
               + log / (2.0 * k) - (1.0 + 3.0 * k) / (1.0 + 2.0 * k) ** 2)
    return 2.0 * math.pi * CLASSICAL_ELECTRON_RADIUS_cm ** 2 * bracket


def klein_nishina_energy_transfer_fraction(energy_MeV: np.ndarray) -> np.ndarray:
    """Mean fraction of the photon energy given to the Compton electron, σ_tr/σ (Klein–Nishina).

    Closed form of the Klein–Nishina energy-transfer cross-section (Evans 1955; Attix 1986, ch. 7);
    the tests check it against direct quadrature of dσ/dΩ · T/E.
    """
    k = np.asarray(energy_MeV, dtype=np.float64) / ELECTRON_REST_ENERGY_MeV
    log = np.log1p(2.0 * k)
    one2k = 1.0 + 2.0 * k
    sigma_tr = (2.0 * (1.0 + k) ** 2 / (k ** 2 * one2k) - (1.0 + 3.0 * k) / one2k ** 2
                - (1.0 + k) * (2.0 * k ** 2 - 2.0 * k - 1.0) / (k ** 2 * one2k ** 2) - 4.0 * k ** 2 / (3.0 * one2k ** 3)
                - ((1.0 + k) / k ** 3 - 1.0 / (2.0 * k) + 1.0 / (2.0 * k ** 3)) * log)
    return sigma_tr * 2.0 * math.pi * CLASSICAL_ELECTRON_RADIUS_cm ** 2 / klein_nishina_cross_section_cm2(energy_MeV)


def pair_production_mu_rho(mass_fractions: Mapping[str, float], energy_MeV: np.ndarray) -> np.ndarray:
    """Pair production in the nuclear field, μ_pair/ρ [cm²/g], near threshold (not part of the tables).

    Maximon's (1968) expansion of the Bethe–Heitler cross-section near threshold, as used by Hubbell,
    Gimm & Øverbø (J. Phys. Chem. Ref. Data 9, 1023, 1980) below ~4 MeV:
    σ = (2π/3) α r_e² Z² ((k−2)/k)³ [1 + ε/2 + 23ε²/40 + 11ε³/60 + 29ε⁴/960], ε = (2k−4)/(2+k+2√(2k)),
    k = E/mc². Triplet production (threshold 2.04 MeV) is smaller still and left out. For water this
    gives 3.9×10⁻⁴ cm²/g at 2 MeV (0.8 % of μ/ρ) and 1.1×10⁻³ cm²/g at 3 MeV (2.8 %): neglecting pair
    production below 3 MeV leaves the total at most ~3 % low (the tests check table + this term against
    the XCOM totals).
    """
    k = np.asarray(energy_MeV, dtype=np.float64) / ELECTRON_REST_ENERGY_MeV
    above = k > 2.0
    kk = np.where(above, k, 3.0)
    eps = (2.0 * kk - 4.0) / (2.0 + kk + 2.0 * np.sqrt(2.0 * kk))
    series = 1.0 + eps / 2.0 + 23.0 * eps ** 2 / 40.0 + 11.0 * eps ** 3 / 60.0 + 29.0 * eps ** 4 / 960.0
    threshold = ((kk - 2.0) / kk) ** 3
    per_z2_cm2 = (2.0 * math.pi / 3.0) * FINE_STRUCTURE * CLASSICAL_ELECTRON_RADIUS_cm ** 2 * threshold * series
    z2_per_gram = AVOGADRO_per_mol * sum(w * element_z_a(el)[0] ** 2 / element_z_a(el)[1]
                                         for el, w in mass_fractions.items())
    return np.where(above, per_z2_cm2 * z2_per_gram, 0.0)


@lru_cache(maxsize=None)
def _table_file() -> dict:
    if not PHOTON_TABLE_FILE.is_file():
        raise DeepDoseInputError(f"Photon cross-section table {PHOTON_TABLE_FILE} is missing; regenerate it with "
                                 "`python tools/make_photon_tables.py` (needs `pip install xraydb`).")
    return json.loads(PHOTON_TABLE_FILE.read_text())


def photon_energy_grid_MeV() -> np.ndarray:
    """Energy grid of the shipped photon tables [MeV] (float64, uniform in ln E)."""
    grid = _table_file()["grid"]
    return np.exp(np.linspace(math.log(grid["energy_min_MeV"]), math.log(grid["energy_max_MeV"]), grid["n_points"]))


@lru_cache(maxsize=None)
def _material_table(name: str, mass_percent_key: tuple) -> Dict[str, np.ndarray]:
    record = _table_file()["materials"].get(name)
    if record is None:
        raise DeepDoseInputError(f"Material {name!r} is not in {PHOTON_TABLE_FILE.name}; rerun "
                                 "`python tools/make_photon_tables.py` after editing materials.json.")
    stored = tuple(sorted((el, round(float(p), 6)) for el, p in record["mass_percent"].items()))
    if stored != mass_percent_key:
        raise DeepDoseInputError(f"{PHOTON_TABLE_FILE.name} was made for another composition of {name!r} "
                                 f"({dict(stored)} %); rerun `python tools/make_photon_tables.py`.")
    out = {kind: np.asarray(record[kind], dtype=np.float64) for kind in PHOTON_CHANNELS + ("energy_absorption",)}
    out["total"] = out["photo"] + out["incoherent"] + out["coherent"]
    return out


def photon_material_table(material: Union[str, Material]) -> Dict[str, np.ndarray]:
    """Tabulated coefficients [cm²/g] of one material on :func:`photon_energy_grid_MeV`, kind → (nE,) array.

    Raises :class:`DeepDoseInputError` when the table file lacks the material or was generated for a
    different composition than ``data/materials.json`` holds now.
    """
    m = resolve_material(material)
    total = sum(m.mass_fractions.values())
    key = tuple(sorted((el, round(100.0 * w / total, 6)) for el, w in m.mass_fractions.items()))
    return _material_table(m.name, key)


def loglog_interp(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """Log-log linear interpolation of positive data (clamped to the ends of ``xp``)."""
    return np.exp(np.interp(np.log(np.asarray(x, dtype=np.float64)), np.log(xp), np.log(fp)))


def photon_mu_rho(material: Union[str, Material], energy_MeV: np.ndarray, kind: str = "total") -> np.ndarray:
    """Mass attenuation (or energy-absorption) coefficient [cm²/g] at photon energies [MeV].

    ``kind``: ``photo``, ``incoherent``, ``coherent``, ``total`` or ``energy_absorption`` (μ_en/ρ).
    Log-log interpolation of the shipped table (1 keV – 4 MeV); energies outside are clamped.
    """
    kind = _KIND_ALIASES.get(kind, kind)
    if kind not in PHOTON_KINDS:
        raise DeepDoseInputError(f"Unknown photon coefficient {kind!r}; choose one of {', '.join(PHOTON_KINDS)}.")
    energy = np.asarray(energy_MeV, dtype=np.float64)
    if np.any(~np.isfinite(energy)) or np.any(energy <= 0):
        raise DeepDoseInputError("Photon energies must be finite and > 0 MeV.")
    return loglog_interp(energy, photon_energy_grid_MeV(), photon_material_table(material)[kind])
