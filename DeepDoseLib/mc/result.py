"""What a Monte Carlo run returns, and the checks of its inputs (shared by both engines)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from ..errors import Cancelled, DeepDoseInputError


class MonteCarloCancelled(Cancelled):
    """Raised when the caller's cancel callback asked the simulation to stop (no result)."""


@dataclass
class MonteCarloResult:
    """Dose rate [mGy/h] and its relative standard uncertainty per voxel ((z, y, x) float32 arrays).

    Energy bookkeeping [MeV] over all simulated decays: ``energy_emitted_MeV`` (kinetic energy of all
    emitted particles + annihilation photons created) = ``energy_deposited_MeV`` + ``energy_escaped_MeV``.
    """

    dose_rate_mGy_per_h: np.ndarray
    relative_uncertainty: np.ndarray
    n_decays: int
    seed: int
    seconds: float
    device: str
    energy_emitted_MeV: float
    energy_deposited_MeV: float
    energy_escaped_MeV: float
    total_activity_Bq: float
    energy_annihilation_MeV: float = 0.0
    notes: List[str] = field(default_factory=list)
    #: the part of the dose rate [mGy/h] deposited by photon interactions (``split_photons=True`` only)
    photon_dose_rate_mGy_per_h: Optional[np.ndarray] = None
    #: that part split by the energy of the interacting photon, (bands, z, y, x) [mGy/h]
    #: (``photon_band_edges_MeV`` only; band 0 below the first edge)
    photon_band_dose_rate_mGy_per_h: Optional[np.ndarray] = None

    @property
    def decays_per_second(self) -> float:
        return self.n_decays / max(self.seconds, 1e-9)


def _validate(activity: np.ndarray, density: np.ndarray, labels: np.ndarray, n_decays: int) -> None:
    if activity.shape != density.shape or activity.shape != labels.shape:
        raise DeepDoseInputError(f"activity {activity.shape}, density {density.shape} and material {labels.shape} "
                                 "arrays must have the same (z, y, x) shape.")
    if not np.all(np.isfinite(activity)) or (activity < 0).any():
        raise DeepDoseInputError("Monte Carlo needs a finite, non-negative activity map (Bq/mL).")
    if not activity.any():
        raise DeepDoseInputError("The activity map is zero everywhere: nothing to simulate.")
    if not np.all(np.isfinite(density)) or (density <= 0).any():
        bad = int((~np.isfinite(density) | (density <= 0)).sum())
        raise DeepDoseInputError(f"{bad} voxel(s) have zero, negative or NaN density; every voxel needs a density "
                                 "> 0 g/cm³ (air is 0.0012).")
    if int(n_decays) < 1:
        raise DeepDoseInputError(f"The number of decays must be ≥ 1 (got {n_decays}).")
