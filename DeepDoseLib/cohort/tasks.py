"""The Dask task of one study: compute into a temporary folder, then publish it with one rename.

``DIR/<key>/`` therefore either holds every output of a study together with its done-marker
``deepdose_study.json`` (the record below, with the inputs' content hash) or does not exist: a worker
killed mid-study leaves only a folder under ``DIR/.deepdose_partial/`` (removed by the next run).

A study refused for its input (:class:`~DeepDoseLib.errors.DeepDoseError`) is *returned* as a failed
record (deterministic: retrying would fail again); any other exception propagates, so that Dask
retries the task (``retries``), and a worker that dies has its task rescheduled by the scheduler.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import time
import uuid
from pathlib import Path
from typing import Optional

from .._version import __version__
from ..errors import DeepDoseError
from .pipeline import StudySettings, compute_study

MARKER = "deepdose_study.json"
PARTIAL_DIR = ".deepdose_partial"


def base_record(study, inputs_sha256: Optional[str]) -> dict:
    """The fields of a study's record known before it runs."""
    return {"study_id": study.study_id, "key": study.key, "time_h": study.time_h, "nuclide": study.nuclide,
            "method": study.method, "status": "pending", "error": "", "inputs_sha256": inputs_sha256,
            "output": study.output_subdir.as_posix(), "structures": [], "notes": [], "outputs": [],
            "seconds": None, "deepdose_version": __version__}


def read_done_marker(out_root: Path, study) -> Optional[dict]:
    """The done-marker record of a study in ``out_root``, or None (absent or unreadable)."""
    marker = Path(out_root) / study.output_subdir / MARKER
    try:
        record = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("status") == "done" else None


def publish(partial: Path, final: Path) -> None:
    """Move a completed folder into place with renames; a previous result of this tool (other inputs) is
    replaced, a folder of anything else never is."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if final.exists() and not (final / MARKER).is_file():
        raise DeepDoseError(f"{final} exists and was not written by deepdose batch (no {MARKER}); not replaced.")
    if final.exists():
        old = partial.with_name(partial.name + ".old")
        final.rename(old)
    try:
        partial.rename(final)
    except OSError:
        if old is not None and not final.exists():
            old.rename(final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def study_task(study, out_root: str, settings: StudySettings, inputs_sha256: str) -> dict:
    """Compute one study into ``out_root/<key>/`` atomically; returns its record (``status`` done or failed)."""
    start, cpu_start = time.perf_counter(), time.process_time()
    out_root = Path(out_root)
    record = base_record(study, inputs_sha256)
    record["worker"] = f"{socket.gethostname()}:{os.getpid()}"
    partial = out_root / PARTIAL_DIR / f"{study.key.replace('/', '__')}-{uuid.uuid4().hex[:12]}"
    try:
        outputs = compute_study(study, partial, settings)  # the one pipeline call (see pipeline.py)
    except DeepDoseError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        record.update(status="failed", error=str(exc), error_kind="input",
                      seconds=round(time.perf_counter() - start, 3))
        return record
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    record.update(outputs, status="done", seconds=round(time.perf_counter() - start, 3),
                  cpu_seconds=round(time.process_time() - cpu_start, 3),  # of the worker process, all threads
                  finished_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    (partial / MARKER).write_text(json.dumps(record, indent=1))
    publish(partial, out_root / study.output_subdir)
    return record
