"""Dose-rate methods as registered objects: one module per method (see :mod:`.base`).

Adding a method is one new module here that defines a :class:`~.base.DoseMethod` subclass decorated
with :func:`~.base.register`; it is found at import time, and every front end (command line,
Slicer CLI XML, Slicer panel, report) lists it with its options. Numerics live in
:mod:`DeepDoseLib.methods`, :mod:`DeepDoseLib.mc` and :mod:`DeepDoseLib.deepdose`; the modules
here only declare options and call them (no torch import at registration time).
"""
from __future__ import annotations

import importlib
import pkgutil

from .base import (DoseMethod, MethodOutput, OptionSpec, RunContext, get_method, method_names, option, option_specs,
                   register, registered_methods)

__all__ = ["DoseMethod", "MethodOutput", "OptionSpec", "RunContext", "get_method", "method_names", "option",
           "option_specs", "register", "registered_methods"]

_loaded = False


def _discover() -> None:
    """Import every method module of this package once (each registers itself)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_") and info.name != "base":
            importlib.import_module(f"{__name__}.{info.name}")
