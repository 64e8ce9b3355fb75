"""Output safety: which paths may be written, checked before any work, and atomic writing.

Rules (:func:`check_outputs`, called by every command before it reads or computes anything):

- an output never replaces an input: paths are compared by file identity (device and inode, so a hard link
  or a symbolic link to an input is recognised) and an output may not lie inside an input folder (DICOM);
- two outputs of one run never share a path;
- an existing output is replaced only with ``overwrite``; a folder is never replaced by a file;
- the output's suffix is one the writer understands;
- the target folder (or the nearest existing folder above it) is writable: a probe file is created and
  removed there, so that a run that would end in "permission denied" or a path below a file (``/proc``,
  ``out.nii/x.nrrd``) fails before the work, not after an hour of Monte Carlo.

Writing (:func:`atomic_write`): the data go to a temporary file in the target folder that is then renamed
onto the target (:func:`os.replace`, atomic on one file system): a crash or Ctrl-C never leaves half a file,
and the old file's inode (which a hard link may share with an input) is never truncated.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from .errors import DeepDoseInputError

PathLike = Union[str, "os.PathLike[str]"]
#: Suffixes of the tables DeepDose writes (tab- or comma-separated text).
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".tab")


def file_identity(path: PathLike) -> Optional[Tuple[int, int]]:
    """(st_dev, st_ino) of an existing path (links followed), or None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _full_suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


@dataclass
class Output:
    """One output of a run: ``flag`` names it in messages (e.g. ``--out``); ``suffixes`` (lower case, with the
    dot) are those its writer understands (empty: any); ``folder``: the output is a folder (e.g. a report)."""

    flag: str
    path: Optional[Path]
    suffixes: Sequence[str] = ()
    folder: bool = False


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_writable_folder(folder: Path, flag: str) -> None:
    """Refuse when files cannot be created in ``folder`` (or, if it does not exist yet, in the nearest existing
    folder above it, where it would be created): a probe file is created and removed."""
    base = _nearest_existing(folder)
    if not base.is_dir():
        raise DeepDoseInputError(f"{flag} {folder}: {base} is a file, not a folder; choose another output path.")
    try:
        fd, probe = tempfile.mkstemp(prefix=".deepdose-probe-", dir=str(base))
    except OSError as exc:
        raise DeepDoseInputError(f"{flag} {folder}: cannot write in {base} ({exc.strerror or exc}); choose a "
                                 "writable folder.") from exc
    os.close(fd)
    os.unlink(probe)


def check_outputs(outputs: Iterable[Output], inputs: Iterable[Optional[PathLike]], overwrite: bool) -> None:
    """Refuse the run before any work when an output would replace an input, two outputs share a path, an
    output exists (without ``overwrite``), has a suffix its writer does not know, or cannot be written.

    ``inputs``: every path the run reads (files or folders; None entries are skipped).
    """
    given = [o for o in outputs if o.path is not None]
    input_paths = [Path(p) for p in inputs if p is not None]
    input_ids = {file_identity(p): p for p in input_paths if file_identity(p) is not None}
    seen: Dict[object, Output] = {}
    for out in given:
        path = Path(out.path)
        if out.suffixes and not out.folder and _full_suffix(path) not in out.suffixes:
            raise DeepDoseInputError(f"{out.flag} {path}: use one of the suffixes {', '.join(out.suffixes)}.")
        ident = file_identity(path)
        if ident is not None and ident in input_ids:
            raise DeepDoseInputError(f"{out.flag} {path} is the input {input_ids[ident]} (same file"
                                     f"{', a link to it' if Path(input_ids[ident]).absolute() != path.absolute() else ''}"
                                     "); refusing to overwrite an input with an output.")
        for folder in (p for p in input_paths if p.is_dir()):
            if _inside(path, folder) or (out.folder and _inside(folder, path) and path.exists()):
                raise DeepDoseInputError(f"{out.flag} {path} lies in the input folder {folder}; write the output "
                                         "elsewhere (inputs are never written).")
        keys = [str(path.absolute().resolve())] + ([ident] if ident is not None else [])
        for key in keys:
            if key in seen:
                raise DeepDoseInputError(f"{out.flag} and {seen[key].flag} are the same path {path}: give "
                                         "each output its own file.")
        seen.update({key: out for key in keys})
        if out.folder:
            if path.exists() and not path.is_dir():
                raise DeepDoseInputError(f"{out.flag} {path} is a file; a folder is expected.")
            check_writable_folder(path, out.flag)
            continue
        if path.is_dir():
            raise DeepDoseInputError(f"{out.flag} {path} is a folder; give a file name.")
        if path.exists() and not overwrite:
            raise DeepDoseInputError(f"{path} exists; choose another name or pass --overwrite.")
        check_writable_folder(path.parent, out.flag)


def atomic_write(path: PathLike, write: Callable[[Path], None], *,
                 protected: Optional[List[PathLike]] = None) -> Path:
    """Call ``write(tmp)`` on a temporary file in ``path``'s folder (same suffix, so format-by-suffix writers
    work), then rename it onto ``path``. The temporary file is removed if ``write`` fails; ``path`` is then
    unchanged. ``protected`` paths (inputs) are refused by file identity, again, at writing time."""
    path = Path(path)
    ident = file_identity(path)
    for other in protected or []:
        if ident is not None and ident == file_identity(other):
            raise DeepDoseInputError(f"Refusing to overwrite the input {other} with the output {path}.")
        if Path(other).is_dir() and _inside(path, Path(other)):
            raise DeepDoseInputError(f"Refusing to write {path} into the input folder {other}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = _full_suffix(path)
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    fd, tmp_name = tempfile.mkstemp(prefix=f".{stem}.", suffix=".tmp" + suffix, dir=str(path.parent))
    os.close(fd)
    tmp = Path(tmp_name)
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes 0600; give the file the mode a plain open() would
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    return path


def atomic_write_text(path: PathLike, text: str, *, protected: Optional[List[PathLike]] = None,
                      encoding: str = "utf-8") -> Path:
    """:func:`atomic_write` of a text file."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding=encoding), protected=protected)
