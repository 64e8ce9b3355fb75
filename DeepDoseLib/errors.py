"""Exceptions raised at the boundary where bad input enters DeepDose."""
from __future__ import annotations


class DeepDoseError(Exception):
    """Base class of DeepDose errors."""


class DeepDoseInputError(DeepDoseError, ValueError):
    """Input data that DeepDose cannot use safely (units, geometry, values)."""
