"""Dose-rate methods as registered objects: one module per method (see :mod:`.base`).

Adding a method is one new module here that defines a :class:`~.base.DoseMethod` subclass with a
``name``; the registry (:mod:`.registry`) finds it, and every front end (command line,
Slicer CLI XML, Slicer panel, report) lists it with its options. Numerics live in
:mod:`DeepDoseLib.methods`, :mod:`DeepDoseLib.mc` and :mod:`DeepDoseLib.deepdose`; the modules
here only declare options and call them (no torch import at registration time).
"""
from __future__ import annotations

from .base import DoseMethod, MethodOutput, OptionSpec, RunContext, option, option_specs
from .registry import declared_options, get_method, method_names, register, registered_methods

__all__ = ["declared_options", "DoseMethod", "MethodOutput", "OptionSpec", "RunContext", "get_method", "method_names", "option",
           "option_specs", "register", "registered_methods"]

