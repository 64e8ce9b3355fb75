"""The cohort manifest: a CSV (or TSV) with one row per study (or per time point of a study).

Columns (header names, any order)::

    study_id     required  folder name of the study's results: letters, digits, ``.``, ``_``, ``-``
    ct           required  CT in HU: image file or DICOM folder
    pet          required  PET/SPECT activity: image file (unit: ``--pet-unit``) or DICOM folder
    nuclide      required  radionuclide, e.g. Lu177, Ga68
    labels       optional  label map of the structures (organs, lesions)
    label_names  optional  JSON ``{"1": "liver", ...}`` naming the labels (needs ``labels``)
    method       optional  dose method of this row (default: the command's ``--method``)
    time_h       optional  time of the scan [h after administration]

Several rows with one ``study_id`` are the time points of one study: each needs its own ``time_h``,
and each is computed as its own task into ``DIR/<study_id>/t<time_h>h/`` (their time integration is
left to ``deepdose therapy``). Relative paths are relative to the manifest's folder. Empty cells are
absent values; lines starting with ``#`` are comments.

Every problem of the manifest itself (a missing column, an unknown nuclide or method, a duplicate
study) is refused before anything runs, with its line number; a missing or unreadable image is a
failure of that study alone (recorded in ``cohort.tsv``; the others go on).
"""
from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..errors import DeepDoseInputError

REQUIRED_COLUMNS = ("study_id", "ct", "pet", "nuclide")
OPTIONAL_COLUMNS = ("labels", "label_names", "method", "time_h")
_STUDY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class StudyRow:
    """One task of a cohort: a study, or one time point of a study (``time_h`` [h after administration]).

    Paths are absolute. ``line`` is the manifest line (for messages).
    """

    study_id: str
    ct: Path
    pet: Path
    nuclide: str
    method: str
    labels: Optional[Path] = None
    label_names: Optional[Path] = None
    time_h: Optional[float] = None
    line: int = 0
    multi_time: bool = False

    @property
    def key(self) -> str:
        """Unique name of the task: ``study_id`` or ``study_id/t<time_h>h`` for time points of one study."""
        return f"{self.study_id}/{time_tag(self.time_h)}" if self.multi_time else self.study_id

    @property
    def output_subdir(self) -> Path:
        """Where the results go, relative to the output folder."""
        return Path(self.key)

    def input_paths(self) -> Dict[str, Path]:
        """The input files/folders by role (ct, pet, labels, label_names), absent ones left out."""
        paths = {"ct": self.ct, "pet": self.pet, "labels": self.labels, "label_names": self.label_names}
        return {role: path for role, path in paths.items() if path is not None}


def time_tag(time_h: Optional[float]) -> str:
    """Folder name of a time point: ``t4h``, ``t24h``, ``t0.5h``."""
    return f"t{time_h:g}h"


def _cell(row: Dict[str, Optional[str]], name: str) -> Optional[str]:
    value = row.get(name)
    value = value.strip() if isinstance(value, str) else None
    return value or None


def read_manifest(path, default_method: str = "led", methods: Optional[Sequence[str]] = None) -> List[StudyRow]:
    """Parse and validate a manifest (see the module docstring); returns its rows in file order.

    Args:
        path: the ``.csv`` (comma) or ``.tsv`` (tab) file.
        default_method: dose method of rows without a ``method`` cell.
        methods: accepted methods (default: the registered methods, :func:`DeepDoseLib.dose_methods.method_names`).

    Raises:
        DeepDoseInputError: the manifest cannot be used, with the line and what to fix.
    """
    from ..dose_methods import method_names
    from ..nuclides import get_nuclide

    path = Path(path)
    methods = tuple(methods or method_names())
    if not path.is_file():
        raise DeepDoseInputError(f"Manifest {path} does not exist.")
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DeepDoseInputError(f"Manifest {path} cannot be read as UTF-8 text ({exc}).")
    lines = [(number, line) for number, line in enumerate(text.splitlines(), start=1)
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise DeepDoseInputError(f"Manifest {path} is empty: it needs a header ({', '.join(REQUIRED_COLUMNS)}) "
                                 "and one row per study.")
    reader = csv.reader([line for _, line in lines], delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader)]
    header_line = lines[0][0]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        separator = "tab" if delimiter == "\t" else "comma"
        raise DeepDoseInputError(f"{path}:{header_line}: missing column(s) {', '.join(missing)}; the header is "
                                 f"{', '.join(header) or '(empty)'} ({separator}-separated; required: "
                                 f"{', '.join(REQUIRED_COLUMNS)}).")
    unknown = [c for c in header if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise DeepDoseInputError(f"{path}:{header_line}: unknown column(s) {', '.join(unknown)}; known: "
                                 f"{', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}.")
    if len(set(header)) != len(header):
        raise DeepDoseInputError(f"{path}:{header_line}: a column is named twice ({', '.join(header)}).")
    base = path.resolve().parent
    rows: List[StudyRow] = []
    for (number, _), cells in zip(lines[1:], reader):
        where = f"{path}:{number}"
        if len(cells) != len(header):
            raise DeepDoseInputError(f"{where}: {len(cells)} cell(s) for {len(header)} column(s).")
        row = dict(zip(header, cells))
        values = {c: _cell(row, c) for c in REQUIRED_COLUMNS + OPTIONAL_COLUMNS}
        empty = [c for c in REQUIRED_COLUMNS if values[c] is None]
        if empty:
            raise DeepDoseInputError(f"{where}: empty {', '.join(empty)}.")
        study_id = values["study_id"]
        if not _STUDY_ID.match(study_id):
            raise DeepDoseInputError(f"{where}: study_id {study_id!r} must be a folder name: letters, digits, "
                                     "'.', '_' or '-', not starting with '.' or '-'.")
        try:
            nuclide = get_nuclide(values["nuclide"]).name
        except DeepDoseInputError as exc:
            raise DeepDoseInputError(f"{where}: {exc}")
        method = (values["method"] or default_method).lower()
        if method not in methods:
            raise DeepDoseInputError(f"{where}: unknown method {method!r}; use one of {', '.join(methods)}.")
        time_h = None
        if values["time_h"] is not None:
            try:
                time_h = float(values["time_h"])
            except ValueError:
                raise DeepDoseInputError(f"{where}: time_h {values['time_h']!r} is not a number of hours.")
            if not math.isfinite(time_h) or time_h < 0:
                raise DeepDoseInputError(f"{where}: time_h must be ≥ 0 hours after administration (got {time_h:g}).")
        if values["label_names"] is not None and values["labels"] is None:
            raise DeepDoseInputError(f"{where}: label_names needs a labels map in the same row.")

        def resolve(cell: Optional[str]) -> Optional[Path]:
            return None if cell is None else (base / Path(cell).expanduser()).resolve()

        rows.append(StudyRow(study_id, resolve(values["ct"]), resolve(values["pet"]), nuclide, method,
                             resolve(values["labels"]), resolve(values["label_names"]), time_h, number))
    if not rows:
        raise DeepDoseInputError(f"Manifest {path} has a header but no study.")
    return _group_time_points(rows, path)


def _group_time_points(rows: List[StudyRow], path: Path) -> List[StudyRow]:
    """Mark the rows of studies with several time points; refuse duplicates."""
    by_id: Dict[str, List[StudyRow]] = {}
    for row in rows:
        by_id.setdefault(row.study_id, []).append(row)
    out = []
    for row in rows:
        group = by_id[row.study_id]
        if len(group) == 1:
            out.append(row)
            continue
        lines = ", ".join(str(r.line) for r in group)
        if any(r.time_h is None for r in group):
            raise DeepDoseInputError(f"{path}: study {row.study_id!r} appears on lines {lines}: rows of one study "
                                     "are its time points and each needs a time_h (or give each row its own study_id).")
        tags = [time_tag(r.time_h) for r in group]
        if len(set(tags)) != len(tags):
            raise DeepDoseInputError(f"{path}: study {row.study_id!r} has two rows at the same time_h "
                                     f"(lines {lines}).")
        out.append(StudyRow(**{**row.__dict__, "multi_time": True}))
    return out
