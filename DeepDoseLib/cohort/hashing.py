"""Content hashes of a study's inputs: a finished study is recognised by what it was computed from.

The hash covers the *contents* of every input (a DICOM folder: every file below it, by relative name
and content), the nuclide, method and time of the row, and the settings that change the numbers
(:meth:`StudySettings.hash_fields`). Paths, file names of the top-level inputs and dates do not enter:
moving or renaming a study's files does not trigger a recomputation, editing one does.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional

from ..errors import DeepDoseInputError

#: bumped when the meaning of the hash changes (every study is then recomputed once)
HASH_FORMAT = 1
_CHUNK_BYTES = 1 << 20


def hash_path(path: Path, digest=None):
    """Feed the content of a file, or of every file below a folder (sorted, with relative names), to ``digest``.

    Raises:
        DeepDoseInputError: the path does not exist or cannot be read.
    """
    digest = digest if digest is not None else hashlib.sha256()
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        if not files:
            raise DeepDoseInputError(f"{path} is an empty folder.")
        for file in files:
            digest.update(b"\0file\0" + file.relative_to(path).as_posix().encode())
            _feed(file, digest)
    elif path.is_file():
        _feed(path, digest)
    else:
        raise DeepDoseInputError(f"{path} does not exist.")
    return digest


def _feed(file: Path, digest) -> None:
    try:
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(_CHUNK_BYTES), b""):
                digest.update(chunk)
    except OSError as exc:
        raise DeepDoseInputError(f"{file} cannot be read ({exc}).")


def study_inputs_sha256(study, settings, model_path: Optional[Path] = None) -> str:
    """SHA-256 (hex) of a :class:`StudyRow`'s inputs and of the settings that change its numbers.

    Raises:
        DeepDoseInputError: an input is missing or unreadable (the message names its role, e.g. ``pet``).
    """
    digest = hashlib.sha256()
    header = {"format": HASH_FORMAT, "nuclide": study.nuclide, "method": study.method, "time_h": study.time_h,
              "settings": settings.hash_fields()}
    digest.update(json.dumps(header, sort_keys=True).encode())
    inputs = dict(study.input_paths())
    if model_path is not None:
        inputs["model"] = Path(model_path)
    for role in sorted(inputs):
        digest.update(f"\0role\0{role}\0".encode())
        try:
            hash_path(inputs[role], digest)
        except DeepDoseInputError as exc:
            raise DeepDoseInputError(f"{role}: {exc}")
    return digest.hexdigest()
