"""Dose-rate methods. Each takes :class:`DeepDoseLib.dose.DoseInputs` and returns mGy/h on its grid.

Available: ``led`` (local energy deposition), ``vsv`` (voxel S-value convolution, kernels by the
Monte Carlo engine), ``mc`` (Monte Carlo reference), ``deepdose`` (3D U-Net,
:mod:`DeepDoseLib.deepdose`). Planned: ``mird`` (organ-level S-values).
"""
from __future__ import annotations

from .led import led_dose_rate, local_energy_per_decay_MeV

#: Methods that this version can run.
METHODS = ("led", "vsv", "mc", "mird", "deepdose")
#: Methods announced in the command line and GUI but not yet implemented in this version.
PLANNED_METHODS = ()

__all__ = ["METHODS", "PLANNED_METHODS", "led_dose_rate", "local_energy_per_decay_MeV"]
