"""What a dose method is: a :class:`DoseMethod` with its options declared once.

Each method is a :class:`DoseMethod` subclass in its own module of this package (found by
:mod:`.registry`). Its options are a dataclass whose fields are made with :func:`option`: default,
help text, command-line flag, range and choices live there and nowhere else. The ``deepdose``
command line, the Slicer CLI XML, the Slicer panel and the report's method text are derived from
these declarations (:func:`option_specs`, :meth:`DoseMethod.describe`), as SlicerRT's dose engines
declare their own parameters and OpenGATE's ``user_info_defaults`` do.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, List, Optional, Tuple

import numpy as np

from ..errors import DeepDoseInputError
from ..progress import CancelCallback, ProgressCallback

__all__ = ["DoseMethod", "MethodOutput", "OptionSpec", "RunContext", "option", "option_specs"]


@dataclass(frozen=True)
class OptionSpec:
    """One user option of a dose method, as every front end sees it.

    Attributes
    ----------
    name : str
        Python field name of the options dataclass (e.g. ``"n_decays"``).
    type : type
        ``bool``, ``int``, ``float`` or ``str``; ``path`` options are ``str`` with ``is_path``.
    default : Any
        Default value (``None`` only for path options: "use the bundled file").
    help : str
        One sentence for the user, with the unit.
    flag : str or None
        Command-line flag without dashes (``"decays"`` → ``--decays``); None: not a user option.
    minimum, maximum : float or None
        Inclusive range of numeric options.
    choices : tuple or None
        Allowed values of string options.
    label : str
        Short label in the Slicer panel.
    slicer_name : str
        Parameter name in the Slicer CLI XML and the panel's parameter node (camelCase of the flag).
    is_path : bool
        An input file (e.g. a model); empty or None means "the default one".
    extensions : tuple of str
        File name endings accepted for a path option (e.g. ``(".pt",)``).
    percent : bool
        A fraction that may also be written in percent (``"2%"`` = 0.02).
    """

    name: str
    type: type
    default: Any
    help: str
    flag: Optional[str]
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    choices: Optional[Tuple[str, ...]] = None
    label: str = ""
    slicer_name: str = ""
    is_path: bool = False
    extensions: Tuple[str, ...] = ()
    percent: bool = False

    @property
    def cli_flag(self) -> str:
        """``--flag`` of the ``deepdose`` command."""
        return "--" + str(self.flag)

    def check(self, value: Any, method: str) -> Any:
        """``value`` converted to the option's type and checked against its range and choices.

        Raises
        ------
        DeepDoseInputError
            With the flag, the value and what is allowed.
        """
        where = f"{method}: {self.cli_flag if self.flag else self.name}"
        if self.is_path:
            if value is None or str(value) == "":
                return None
            if self.extensions and not str(value).lower().endswith(self.extensions):
                raise DeepDoseInputError(f"{where} {value}: expected a {self.label} ({', '.join(self.extensions)}).")
            return str(value)
        if self.type is bool:
            if not isinstance(value, (bool, np.bool_)):
                raise DeepDoseInputError(f"{where} must be true or false (got {value!r}).")
            return bool(value)
        if self.type in (int, float):
            if value is None and self.default is None:  # an optional number left unset
                return None
            try:
                text = str(value).strip()
                number = float(text[:-1]) / 100.0 if self.percent and text.endswith("%") else float(value)
            except (TypeError, ValueError):
                kind = "a fraction such as 0.02 or a percentage such as 2%" if self.percent else "a number"
                raise DeepDoseInputError(f"{where} must be {kind} (got {value!r}).") from None
            if not math.isfinite(number):
                raise DeepDoseInputError(f"{where} must be a finite number (got {value!r}).")
            if self.type is int:
                if number != round(number):
                    raise DeepDoseInputError(f"{where} must be a whole number (got {value!r}).")
                number = int(round(number))
            if (self.minimum is not None and number < self.minimum) or \
                    (self.maximum is not None and number > self.maximum):
                raise DeepDoseInputError(f"{where} must lie in [{_fmt(self.minimum, '−∞')}, {_fmt(self.maximum, '∞')}] "
                                         f"(got {value!r}).")
            return number
        text = "" if value is None else str(value)
        if self.choices is not None and text not in self.choices:
            raise DeepDoseInputError(f"{where} must be one of {', '.join(self.choices)} (got {value!r}).")
        return text


def _fmt(bound: Optional[float], unbounded: str) -> str:
    return unbounded if bound is None else f"{bound:g}"


def option(default: Any, help: str, *, flag: Optional[str] = None, minimum: Optional[float] = None,
           maximum: Optional[float] = None, choices: Optional[Tuple[str, ...]] = None, label: str = "",
           slicer_name: str = "", is_path: bool = False, extensions: Tuple[str, ...] = (), percent: bool = False) -> Any:
    """A field of a method's options dataclass that carries its user-facing declaration.

    Parameters are those of :class:`OptionSpec`; ``flag=None`` keeps the field out of the front ends
    (e.g. inputs that the study fills in, such as an organ label map).
    """
    metadata = dict(help=help, flag=flag, minimum=minimum, maximum=maximum, choices=choices, label=label,
                    slicer_name=slicer_name, is_path=is_path, extensions=tuple(extensions), percent=percent,
                    declared=True)
    return field(default=default, metadata=metadata)


def _camel(flag: str) -> str:
    head, *rest = flag.split("-")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def option_specs(options_type: type) -> List[OptionSpec]:
    """The user options (fields with a flag) of an options dataclass, in declaration order."""
    hints = typing.get_type_hints(options_type)
    specs = []
    for f in dataclasses.fields(options_type):
        meta = f.metadata
        if not meta.get("declared") or meta.get("flag") is None:
            continue
        kind = hints[f.name]
        if typing.get_origin(kind) is typing.Union:  # Optional[str] for paths
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        specs.append(OptionSpec(f.name, kind, f.default, meta["help"], meta["flag"], meta["minimum"],
                                meta["maximum"], meta["choices"], meta["label"] or meta["flag"].replace("-", " "),
                                meta["slicer_name"] or _camel(meta["flag"]), meta["is_path"], meta["extensions"], meta["percent"]))
    return specs


@dataclass
class RunContext:
    """What a method gets besides its inputs and options.

    Attributes
    ----------
    device : str
        Resolved torch device (``"cpu"``, ``"cuda"``...).
    progress : callable or None
        ``progress(fraction, message)`` for this method's share of the work (0 → 1).
    cancel : callable or None
        Polled between chunks; True stops the method with :class:`DeepDoseLib.errors.Cancelled`.
    labels : SimpleITK.Image or None
        Organ label map (any grid), for methods that need one.
    label_names : dict or None
        ``{label: name}``.
    """

    device: str = "cpu"
    progress: Optional[ProgressCallback] = None
    cancel: Optional[CancelCallback] = None
    labels: Any = None
    label_names: Optional[Dict[int, str]] = None


@dataclass
class MethodOutput:
    """A method's result on the inputs' grid.

    Attributes
    ----------
    dose_rate_mGy_per_h : numpy.ndarray
        Dose rate [mGy/h], (z, y, x) float32.
    relative_uncertainty : numpy.ndarray or None
        Relative standard uncertainty [fraction], (z, y, x); None when the method has none.
    notes : list of str
        What the user should know about this result.
    fallback : numpy.ndarray or None
        bool (z, y, x): voxels where a learned method returned its physics baseline (Deep-dose: the
        density-scaled VSV); None for methods without a fallback.
    """

    dose_rate_mGy_per_h: np.ndarray
    relative_uncertainty: Optional[np.ndarray] = None
    notes: List[str] = field(default_factory=list)
    fallback: Optional[np.ndarray] = None


class DoseMethod:
    """A dose-rate method. Subclasses set the class attributes and implement :meth:`run`.

    Attributes
    ----------
    name : str
        ``--method`` value.
    title : str
        Name shown to users and in the report.
    label : str
        Short name in tables and messages (default: ``name``).
    guidance : str
        One line for a clinician: what it is good for, accuracy and time.
    assumptions : tuple of str
        What the method assumes (the report's "Method and assumptions" list).
    Options : type
        Dataclass of the options (fields made with :func:`option`).
    order : int
        Position in lists of methods.
    needs_labels, has_uncertainty, has_fallback : bool
        The method needs an organ label map; it returns an uncertainty map; it returns a mask of the voxels
        where it fell back to a physics baseline (:attr:`MethodOutput.fallback`).
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    label: ClassVar[str] = ""
    guidance: ClassVar[str] = ""
    assumptions: ClassVar[Tuple[str, ...]] = ()
    Options: ClassVar[type]
    order: ClassVar[int] = 100
    needs_labels: ClassVar[bool] = False
    has_uncertainty: ClassVar[bool] = False
    has_fallback: ClassVar[bool] = False

    def __init__(self) -> None:
        if not self.label:
            self.label = self.name

    def options(self, **values: Any):
        """An options object with ``values`` checked (unknown names are refused)."""
        known = {f.name for f in dataclasses.fields(self.Options)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise DeepDoseInputError(f"{self.name}: unknown option(s) {', '.join(unknown)}; known: "
                                     f"{', '.join(sorted(known))}.")
        return self.checked(self.Options(**values))

    def checked(self, options):
        """``options`` with every declared option converted and range-checked (a new object), then
        :meth:`validate`."""
        values = {spec.name: spec.check(getattr(options, spec.name), self.name) for spec in self.specs()}
        options = dataclasses.replace(options, **values)
        self.validate(options)
        return options

    def validate(self, options) -> None:
        """Refuse combinations of options that are each valid alone (override; the default accepts all)."""

    def specs(self) -> List[OptionSpec]:
        """The user options of this method."""
        return option_specs(self.Options)

    def run(self, inputs, nuclide, options, context: RunContext) -> MethodOutput:  # pragma: no cover - abstract
        """Dose rate on ``inputs.grid`` (see :class:`MethodOutput`)."""
        raise NotImplementedError

    def describe(self, options=None) -> Tuple[str, List[str]]:
        """(title with the options that change it, list of assumptions) for the report and notes."""
        return self.title, list(self.assumptions)
