"""DeepDose's Monte Carlo reference engine (torch; one code path on CPU and CUDA).

See :mod:`DeepDoseLib.mc.transport` for the physics and its approximations, and
:func:`run_monte_carlo` for the entry point.
"""
from __future__ import annotations

from .engine import MonteCarloCancelled, MonteCarloResult, run_monte_carlo
from .transport import TransportSettings

__all__ = ["MonteCarloCancelled", "MonteCarloResult", "TransportSettings", "run_monte_carlo"]
