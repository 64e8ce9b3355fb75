"""Numerics of the dose-rate methods (their registry entries are :mod:`DeepDoseLib.dose_methods`). Each takes :class:`DeepDoseLib.dose.DoseInputs` and returns mGy/h on its grid.

Available: ``led`` (local energy deposition), ``vsv`` (voxel S-value convolution, kernels by the
Monte Carlo engine), ``vsv_scaled`` (charged-particle kernels scaled to the density, photon kernel of
soft tissue: :mod:`.scaled_vsv`), ``mc`` (Monte Carlo reference), ``mird`` (organ-level sphere model),
``deepdose`` (3D U-Net on the density-scaled VSV, :mod:`DeepDoseLib.deepdose`).
"""
from __future__ import annotations

from .led import led_dose_rate, local_energy_per_decay_MeV

__all__ = ["led_dose_rate", "local_energy_per_decay_MeV"]
