"""Local energy deposition (LED): every emitted particle deposits its energy in its source voxel.

    dose rate [mGy/h] = A [Bq/mL] × E_local [MeV/decay] × 1.602e-13 J/MeV / (ρ [g/cm³] × 1e-3 kg/g)
                        × 3600 s/h × 1000 mGy/Gy

E_local is the kinetic energy of the charged emissions (β−, β+, conversion and Auger electrons,
alphas) per decay; with ``include_photons`` the gamma, X-ray and annihilation photon energy is added
(an upper bound that ignores photon escape). The method is exact in the limit of charged-particle
equilibrium in a uniform medium and is the first baseline of DeepDose.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from ..nuclides import CHARGED_KINDS, PHOTON_KINDS, Nuclide
from ..units import MGY_PER_H_PER_BQ_PER_ML_MEV_PER_G_PER_CM3


def local_energy_per_decay_MeV(nuclide: Nuclide, include_photons: bool = False,
                               kinds: Optional[Sequence[str]] = None) -> float:
    """Energy assumed absorbed in the source voxel per decay [MeV].

    Args:
        kinds: explicit ICRP-107 emission kinds (overrides ``include_photons``), e.g. ``["beta+"]``.
    """
    if kinds is None:
        kinds = CHARGED_KINDS + (PHOTON_KINDS if include_photons else ())
    return nuclide.energy_per_decay_MeV(kinds)


def led_dose_rate(activity_Bq_per_mL: np.ndarray, density_g_per_cm3: np.ndarray, nuclide: Nuclide, *,
                  include_photons: bool = False, kinds: Optional[Sequence[str]] = None,
                  device: str = "cpu") -> np.ndarray:
    """Dose-rate map [mGy/h] (float32, same shape) by local energy deposition.

    Args:
        activity_Bq_per_mL: activity concentration per voxel.
        density_g_per_cm3: mass density per voxel; must be > 0 wherever activity is > 0.
    """
    energy_MeV = local_energy_per_decay_MeV(nuclide, include_photons, kinds)
    # float32 throughout (relative rounding 1e-7); as_tensor shares memory with float32 inputs, and the
    # arithmetic below allocates new tensors, so the caller's arrays are never modified.
    activity = torch.as_tensor(np.asarray(activity_Bq_per_mL, dtype=np.float32), device=device)
    density = torch.as_tensor(np.asarray(density_g_per_cm3, dtype=np.float32), device=device)
    factor = float(energy_MeV * MGY_PER_H_PER_BQ_PER_ML_MEV_PER_G_PER_CM3)
    dose = torch.mul(activity, factor).div_(density.clamp_min(1e-12))
    return dose.cpu().numpy()
