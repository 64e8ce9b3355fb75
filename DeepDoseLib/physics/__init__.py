"""Interaction data for DeepDose's Monte Carlo engine and the kernel methods.

* :func:`load_physics_tables` → :class:`PhysicsTables`: torch tensors on one log-energy grid (1 keV –
  4 MeV, 241 points), rows indexed by material label, with vectorised log-log interpolation and the
  inverse CSDA-range lookup.
* Plain-numpy helpers for tests, VSV/MIRD and reports: :func:`photon_mu_rho`,
  :func:`electron_collision_stopping_power`, :func:`electron_radiative_stopping_power`,
  :func:`electron_stopping_power`, :func:`electron_csda_range`, :func:`electron_transport_mfp`.

Photon data: Elam tables (PyPI ``xraydb``) below 800 keV, Klein–Nishina above, shipped as
``data/physics/photon_tables.json`` (see its README). Electron data: computed from the ICRU 46
compositions and ICRU 37 I-values (Bethe + Sternheimer–Peierls density effect, Bethe–Heitler
bremsstrahlung, Wentzel–Molière transport cross-section).
"""
from __future__ import annotations

from .electrons import (density_effect_delta, electron_collision_stopping_power, electron_csda_range,
                        electron_radiative_stopping_power, electron_stopping_power, electron_transport_mfp)
from .photons import (PHOTON_CHANNELS, PHOTON_KINDS, klein_nishina_cross_section_cm2,
                      klein_nishina_energy_transfer_fraction, pair_production_mu_rho, photon_mu_rho)
from .tables import PhysicsTables, load_physics_tables

__all__ = [
    "PHOTON_CHANNELS", "PHOTON_KINDS", "PhysicsTables", "density_effect_delta", "electron_collision_stopping_power",
    "electron_csda_range", "electron_radiative_stopping_power", "electron_stopping_power", "electron_transport_mfp",
    "klein_nishina_cross_section_cm2", "klein_nishina_energy_transfer_fraction", "load_physics_tables",
    "pair_production_mu_rho", "photon_mu_rho",
]
