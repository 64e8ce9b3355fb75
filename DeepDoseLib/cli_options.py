"""Command-line flags of the dose methods, derived from the registry (one flag per declared option).

Used by the ``deepdose`` command and by scripts with an argparse front end (the batch tools), so that
a method's option, its default and its range are written in one place: its declaration in
:mod:`DeepDoseLib.dose_methods`.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Iterable, Sequence

from .dose_methods import DoseMethod, declared_options

__all__ = ["add_method_options", "options_from_args"]


def add_method_options(parser: argparse.ArgumentParser, methods: Sequence[DoseMethod],
                       required: Iterable[str] = ()) -> None:
    """Add the options of ``methods`` as ``--flag`` arguments (dest = the option's field name).

    An option shared by several methods is added once, its help naming the methods; flags in
    ``required`` must be given. Numbers are parsed as floats (``1e7`` works) and checked later against
    the option's type and range by :func:`options_from_args`.
    """
    required = set(required)
    for spec, users in declared_options(methods):
        help_text = f"{spec.help} [{', '.join(users)}]".replace("%", "%%")  # argparse formats help with %
        if spec.type is bool:
            parser.add_argument(spec.cli_flag, dest=spec.name, action="store_true", help=help_text)
            continue
        kind = Path if spec.is_path else (float if spec.type in (int, float) and not spec.percent else str)
        if spec.default is not None and spec.flag not in required:
            help_text += f" (default {spec.default:g})" if spec.type in (int, float) else f" (default {spec.default})"
        parser.add_argument(spec.cli_flag, dest=spec.name, type=kind, default=spec.default, choices=spec.choices,
                            required=spec.flag in required, help=help_text)


def options_from_args(args: argparse.Namespace, method: str):
    """The checked options of ``method`` from parsed flags (refused with the flag's name before any work)."""
    from .dose import MethodOptions, method_options

    values = {name: getattr(args, name) for name in MethodOptions.__dataclass_fields__ if hasattr(args, name)}
    if isinstance(values.get("model_path"), Path):
        values["model_path"] = str(values["model_path"])
    return method_options(method, MethodOptions(**values))
