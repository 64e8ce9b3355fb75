"""The registry of dose methods: every :class:`~.base.DoseMethod` subclass of this package's modules.

Adding a method is one new module in :mod:`DeepDoseLib.dose_methods` that defines a subclass with a
``name``: the registry imports every module of the package once and registers what it finds. Methods
defined elsewhere (a user's own) are added with :func:`register`.
"""
from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import DeepDoseInputError
from .base import DoseMethod, OptionSpec

__all__ = ["declared_options", "get_method", "method_names", "register", "registered_methods"]

_REGISTRY: Dict[str, DoseMethod] = {}
_loaded = False


def register(cls: type) -> type:
    """Add one instance of the :class:`DoseMethod` subclass ``cls`` under ``cls.name`` (usable as a decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, DoseMethod)) or not cls.name:
        raise ValueError(f"{cls!r} is not a named DoseMethod subclass")
    if cls.name in _REGISTRY and type(_REGISTRY[cls.name]) is not cls:
        raise ValueError(f"dose method {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls()
    return cls


def registered_methods() -> List[DoseMethod]:
    """Every registered method, in display order."""
    _load_all()
    return sorted(_REGISTRY.values(), key=lambda m: (m.order, m.name))


def method_names() -> Tuple[str, ...]:
    """Names of the registered methods, in display order."""
    return tuple(m.name for m in registered_methods())


def declared_options(methods: Optional[Sequence[DoseMethod]] = None,
                     key: str = "flag") -> List[Tuple[OptionSpec, List[str]]]:
    """Every option of ``methods`` (default: all registered) once, with the names of the methods that use it.

    Options are the same when their ``key`` (``"flag"`` for the command line, ``"slicer_name"`` for Slicer)
    is; the first declaration is returned (the registry test checks that shared declarations agree).
    """
    methods = registered_methods() if methods is None else list(methods)
    found: Dict[str, Tuple[OptionSpec, List[str]]] = {}
    for method in methods:
        for spec in method.specs():
            found.setdefault(getattr(spec, key), (spec, []))[1].append(method.name)
    return list(found.values())


def get_method(name: str) -> DoseMethod:
    """The method called ``name``; unknown names are refused with the list of known ones."""
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise DeepDoseInputError(f"Unknown method {name!r}; available: {', '.join(method_names())}.") from None


def _load_all() -> None:
    """Import every method module of this package once and register the methods it defines."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    package = __name__.rpartition(".")[0]
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name.startswith("_") or info.name in ("base", "registry"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, DoseMethod) and obj.__module__ == module.__name__ \
                    and obj.name:
                register(obj)
