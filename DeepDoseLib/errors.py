"""Exceptions raised at the boundary where bad input enters DeepDose, and the one for a user's cancel."""
from __future__ import annotations


class DeepDoseError(Exception):
    """Base class of DeepDose errors (the command line exits with status 2)."""


class DeepDoseInputError(DeepDoseError, ValueError):
    """Input data that DeepDose cannot use safely (units, geometry, values)."""


class Cancelled(Exception):
    """The user asked a running computation to stop; no result. Not an input error (exit status 130)."""
