"""Electron stopping powers, CSDA ranges and first transport mean free paths per material (analytic).

Everything is computed from the composition, mean excitation energy I and nominal density of
``data/materials.json`` (no tabulated electron data is shipped):

* **Collision stopping power**: Bethe formula for electrons without shell corrections, as in ICRU
  Report 37 (1984) and NIST ESTAR, with the density-effect correction δ of the general formulas of
  Sternheimer & Peierls (Phys. Rev. B 3, 3681, 1971) from I and the plasma energy. δ uses the nominal
  density (the transport engine scales by the voxel density; δ's own density dependence is ignored).
  Shell corrections are missing, as in ESTAR: values below ~10 keV are too high (ICRU 37: ~10 % at
  1 keV in water).
* **Radiative stopping power**: the Bethe–Heitler Born-approximation cross-section without screening
  (Koch & Motz, Rev. Mod. Phys. 31, 920, 1959, formula 3BN) integrated over the photon energy, in the
  field of the nuclei (Z²). Electron–electron bremsstrahlung and the Elwert/Coulomb correction are
  left out (they partly cancel below ~1 MeV); screening is negligible below 4 MeV for these elements.
  Water vs ESTAR: −4 % at 1 MeV; S_rad is < 1 % of the total below 1.5 MeV.
* **CSDA range**: ∫ dE/S_total from 1 keV, plus R(1 keV) = E₀/(S(E₀)(1+p)) for a power law
  S ∝ E^−p fitted between 1 and 1.2 keV (a few % of the range at 10 keV, < 0.1 % above 100 keV).
* **First transport mean free path** λ1 = 1/(N_A Σ w_i/A_i σ1,i): screened-Rutherford (Wentzel)
  cross-section with Molière's screening parameter η = ¼(αZ^{1/3}/(0.885 βγ))²(1.13 + 3.76(αZ/β)²),
  σ1 = 2π r_e² Z(Z+1)/(β⁴γ²) [ln(1 + 1/η) − 1/(1 + η)] (the Z+1 counts the atomic electrons).
  No Mott (spin) correction: for low Z this overestimates σ1 by about β²/ln(1/η), ~ 8 % at 1 MeV.

Positrons: :func:`electron_collision_stopping_power` takes ``positron=True`` (Bethe formula with the
positron F⁺ term). In water the positron value is +10 % at 10 keV, +4 % at 100 keV, −2 % at 1 MeV
relative to electrons; the runtime tables hold the electron values for both.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Dict, Tuple, Union

import numpy as np

from ..errors import DeepDoseInputError
from ..tissue import Material
from .constants import (AVOGADRO_per_mol, BETHE_PREFACTOR_MeV_cm2_per_mol, CLASSICAL_ELECTRON_RADIUS_cm,
                        ELECTRON_REST_ENERGY_MeV, FINE_STRUCTURE, PLASMA_ENERGY_CONSTANT_eV, element_z_a,
                        resolve_material, z_over_a)

MC2 = ELECTRON_REST_ENERGY_MeV
#: Energies of the range integration [MeV] and its refinement of the 241-point table grid.
RANGE_LOW_MeV = 1.0e-3
RANGE_HIGH_MeV = 4.0
_FINE_POINTS = 1921
_GAUSS_POINTS = 128          # quadrature of the bremsstrahlung spectrum: 2e-5 relative accuracy
MaterialLike = Union[str, Material]
_GAS_X0_X1 = ((10.0, 1.6, 4.0), (10.5, 1.7, 4.0), (11.0, 1.8, 4.0), (11.5, 1.9, 4.0), (12.25, 2.0, 4.0),
              (13.804, 2.0, 5.0))


def _energy(energy_MeV: np.ndarray) -> np.ndarray:
    energy = np.asarray(energy_MeV, dtype=np.float64)
    if np.any(~np.isfinite(energy)) or np.any(energy <= 0):
        raise DeepDoseInputError("Electron kinetic energies must be finite and > 0 MeV.")
    return energy


def _kinematics(energy_MeV: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """τ = T/mc², β², βγ."""
    tau = energy_MeV / MC2
    gamma = tau + 1.0
    beta2 = tau * (tau + 2.0) / gamma ** 2
    return tau, beta2, np.sqrt(tau * (tau + 2.0))


def sternheimer_peierls_parameters(material: MaterialLike) -> Dict[str, float]:
    """Density-effect parameters C̄, X0, X1, a (m = 3) of the Sternheimer–Peierls (1971) general formulas.

    Gas or condensed phase is decided by the nominal density (< 0.01 g/cm³: gas).
    """
    m = resolve_material(material)
    plasma_eV = PLASMA_ENERGY_CONSTANT_eV * math.sqrt(m.nominal_density_g_per_cm3 * z_over_a(m.mass_fractions))
    c_bar = 1.0 + 2.0 * math.log(m.mean_excitation_energy_eV / plasma_eV)
    if m.nominal_density_g_per_cm3 < 0.01:                      # gases: (C̄ upper bound, X0, X1)
        for c_upper, x0, x1 in _GAS_X0_X1:
            if c_bar < c_upper:
                break
        else:
            x0, x1 = 0.326 * c_bar - 2.5, 5.0
    elif m.mean_excitation_energy_eV < 100.0:                   # solids and liquids
        x0, x1 = (0.2 if c_bar < 3.681 else 0.326 * c_bar - 1.0), 2.0
    else:
        x0, x1 = (0.2 if c_bar < 5.215 else 0.326 * c_bar - 1.5), 3.0
    a = (c_bar - 2.0 * math.log(10.0) * x0) / (x1 - x0) ** 3
    return {"plasma_energy_eV": plasma_eV, "C": c_bar, "X0": x0, "X1": x1, "a": a, "m": 3.0}


def density_effect_delta(material: MaterialLike, energy_MeV: np.ndarray) -> np.ndarray:
    """Density-effect correction δ (dimensionless) for electrons of kinetic energy [MeV]."""
    p = sternheimer_peierls_parameters(material)
    x = np.log10(_kinematics(_energy(energy_MeV))[2])
    two_ln10 = 2.0 * math.log(10.0)
    delta = two_ln10 * x - p["C"] + np.where(x < p["X1"], p["a"] * np.clip(p["X1"] - x, 0.0, None) ** 3, 0.0)
    return np.where(x < p["X0"], 0.0, delta)


def electron_collision_stopping_power(material: MaterialLike, energy_MeV: np.ndarray,
                                      positron: bool = False) -> np.ndarray:
    """Mass collision stopping power [MeV cm²/g] (ICRU 37 Bethe formula, no shell correction)."""
    m = resolve_material(material)
    energy = _energy(energy_MeV)
    tau, beta2, _ = _kinematics(energy)
    i_rel = m.mean_excitation_energy_eV * 1.0e-6 / MC2
    if positron:
        y = tau + 2.0
        f = 2.0 * math.log(2.0) - beta2 / 12.0 * (23.0 + 14.0 / y + 10.0 / y ** 2 + 4.0 / y ** 3)
    else:
        f = 1.0 - beta2 + (tau ** 2 / 8.0 - (2.0 * tau + 1.0) * math.log(2.0)) / (tau + 1.0) ** 2
    bracket = np.log(tau ** 2 * (tau + 2.0) / (2.0 * i_rel ** 2)) + f - density_effect_delta(m, energy)
    return BETHE_PREFACTOR_MeV_cm2_per_mol * z_over_a(m.mass_fractions) / beta2 * bracket


def bremsstrahlung_scaled_cross_section(energy_MeV: np.ndarray) -> np.ndarray:
    """φ_rad(T) = (1/(α r_e² Z² (T+mc²))) ∫₀ᵀ k dσ/dk dk of the Bethe–Heitler 3BN formula (unscreened).

    Z-independent; limits: 16/3 for T ≪ mc², 4 ln(2E/mc²) − 4/3 for mc² ≪ E (E = T + mc²).
    """
    t0 = _energy(energy_MeV)[..., None] / MC2
    e0 = 1.0 + t0
    p0 = np.sqrt(t0 * (t0 + 2.0))
    nodes, weights = np.polynomial.legendre.leggauss(_GAUSS_POINTS)
    k = t0 * 0.5 * (nodes + 1.0)                      # photon energy [mc²]
    e = e0 - k
    p = np.sqrt((e - 1.0) * (e + 1.0))
    eps0 = 2.0 * np.arctanh(p0 / e0)
    eps = 2.0 * np.arctanh(p / e)
    big_l = 2.0 * np.log((e0 * e + p0 * p - 1.0) / k)
    pp = p ** 2 * p0 ** 2
    bracket = (4.0 / 3.0 - 2.0 * e0 * e * (p ** 2 + p0 ** 2) / pp + eps0 * e / p0 ** 3 + eps * e0 / p ** 3
               - eps * eps0 / (p0 * p)
               + big_l * (8.0 * e0 * e / (3.0 * p0 * p) + k ** 2 * (e0 ** 2 * e ** 2 + pp) / (p0 * p) ** 3
                          + k / (2.0 * p0 * p) * (eps0 * (e0 * e + p0 ** 2) / p0 ** 3 - eps * (e0 * e + p ** 2) / p ** 3
                                                  + 2.0 * k * e0 * e / pp)))
    integral = np.sum(0.5 * weights * t0 * (p / p0) * bracket, axis=-1)   # ∫ k dσ/dk dk / (α r_e² Z²) in mc²
    return integral / e0[..., 0]


def electron_radiative_stopping_power(material: MaterialLike, energy_MeV: np.ndarray) -> np.ndarray:
    """Mass radiative stopping power [MeV cm²/g]: α r_e² N_A Σ(w Z²/A) (T + mc²) φ_rad(T)."""
    m = resolve_material(material)
    energy = _energy(energy_MeV)
    z2_over_a = sum(w * element_z_a(el)[0] ** 2 / element_z_a(el)[1] for el, w in m.mass_fractions.items())
    return (FINE_STRUCTURE * CLASSICAL_ELECTRON_RADIUS_cm ** 2 * AVOGADRO_per_mol * z2_over_a
            * (energy + MC2) * bremsstrahlung_scaled_cross_section(energy))


def electron_stopping_power(material: MaterialLike, energy_MeV: np.ndarray) -> np.ndarray:
    """Total (collision + radiative) mass stopping power [MeV cm²/g]."""
    return (electron_collision_stopping_power(material, energy_MeV)
            + electron_radiative_stopping_power(material, energy_MeV))


def _material_key(m: Material) -> tuple:
    return (m.name, m.mean_excitation_energy_eV, m.nominal_density_g_per_cm3, tuple(sorted(m.mass_fractions.items())))


@lru_cache(maxsize=64)
def _range_table(key: tuple) -> Tuple[np.ndarray, np.ndarray]:
    name, i_eV, rho, fractions = key
    m = Material(name, -1, rho, i_eV, dict(fractions))
    log_e = np.linspace(math.log(RANGE_LOW_MeV), math.log(RANGE_HIGH_MeV), _FINE_POINTS)
    energy = np.exp(log_e)
    stopping = electron_stopping_power(m, energy)
    low = electron_stopping_power(m, np.array([RANGE_LOW_MeV, 1.2 * RANGE_LOW_MeV]))
    p = -math.log(low[1] / low[0]) / math.log(1.2)               # S ∝ E^-p near 1 keV
    r_low = RANGE_LOW_MeV / (low[0] * (1.0 + p))
    integrand = energy / stopping                                # dR/d(ln E)
    steps = 0.5 * (integrand[1:] + integrand[:-1]) * np.diff(log_e)
    return log_e, r_low + np.concatenate([[0.0], np.cumsum(steps)])


def electron_csda_range(material: MaterialLike, energy_MeV: np.ndarray) -> np.ndarray:
    """CSDA range [g/cm²] for electrons of kinetic energy [MeV] (1 keV – 4 MeV; clamped outside)."""
    m = resolve_material(material)
    log_e, range_g = _range_table(_material_key(m))
    return np.exp(np.interp(np.log(_energy(energy_MeV)), log_e, np.log(range_g)))


def electron_transport_mfp(material: MaterialLike, energy_MeV: np.ndarray) -> np.ndarray:
    """First transport mean free path λ1 [g/cm²] (Wentzel model, Molière screening; see module doc)."""
    m = resolve_material(material)
    energy = _energy(energy_MeV)
    tau, beta2, beta_gamma = _kinematics(energy)
    gamma2 = (tau + 1.0) ** 2
    sigma1_per_gram = np.zeros_like(energy)
    for el, w in m.mass_fractions.items():
        z, a = element_z_a(el)
        eta = 0.25 * (FINE_STRUCTURE * z ** (1.0 / 3.0) / (0.885 * beta_gamma)) ** 2 \
            * (1.13 + 3.76 * (FINE_STRUCTURE * z) ** 2 / beta2)
        sigma1 = (2.0 * math.pi * CLASSICAL_ELECTRON_RADIUS_cm ** 2 * z * (z + 1.0) / (beta2 ** 2 * gamma2)
                  * (np.log1p(1.0 / eta) - 1.0 / (1.0 + eta)))
        sigma1_per_gram += AVOGADRO_per_mol * w / a * sigma1
    return 1.0 / sigma1_per_gram
