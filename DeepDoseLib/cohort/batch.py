"""``run_cohort()``: every study of a manifest as one Dask task, finished studies skipped, a cohort summary.

Layout of the output folder ``DIR``::

    DIR/<study_id>/                  one study's outputs (see :mod:`.pipeline`) + deepdose_study.json
    DIR/<study_id>/t<time_h>h/       the same per time point, for studies with several rows
    DIR/cohort.tsv                   one row per study and structure (see :mod:`.summary`)
    DIR/cohort_report.html           distributions per structure, outliers, failures
    DIR/.deepdose_failed/<key>.json  why a study failed (kept until it succeeds)

Re-running the same command computes only what is not done: a study is done when its folder holds a
done-marker whose inputs' hash (:mod:`.hashing`) equals the hash of its inputs now; a study refused for
its input is not retried while its inputs are unchanged (``retry_failed`` forces it); a study that
failed otherwise (a crash, workers dying) is retried on the next run. One run per output folder at a
time: a run removes the temporary folders of dead workers when its own tasks are finished. After Ctrl-C
with a remote scheduler, a study already running on a worker may still finish and be published (whole).
"""
from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..errors import DeepDoseError
from .hashing import study_inputs_sha256
from .manifest import StudyRow
from .pipeline import StudySettings
from .summary import write_cohort_report, write_cohort_tsv
from .tasks import MARKER, PARTIAL_DIR, base_record, read_done_marker, study_task

FAILED_DIR = ".deepdose_failed"
#: methods that use a GPU when the worker has one (tasks then ask for the workers' "GPU" resource)
GPU_METHODS = ("mc", "deepdose", "vsv", "vsv_scaled")


@dataclass
class CohortResult:
    """What a run did: every study's record (manifest order) and the keys computed, reused, failed now."""

    records: List[dict]
    computed: List[str] = field(default_factory=list)
    reused: List[str] = field(default_factory=list)
    failed: List[str] = field(default_factory=list)
    interrupted: bool = False
    tsv: Optional[Path] = None
    report: Optional[Path] = None

    @property
    def n_failed(self) -> int:
        return sum(r["status"] == "failed" for r in self.records)


def _failure_path(out_dir: Path, key: str) -> Path:
    return out_dir / FAILED_DIR / (key.replace("/", "__") + ".json")


def _write_failure(out_dir: Path, record: dict) -> None:
    path = _failure_path(out_dir, record["key"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1))


def _read_failure(out_dir: Path, key: str) -> Optional[dict]:
    try:
        return json.loads(_failure_path(out_dir, key).read_text())
    except (OSError, ValueError):
        return None


def plan_cohort(rows: Sequence[StudyRow], out_dir: Path, settings: StudySettings, *, retry_failed: bool = False,
                progress: bool = True) -> Tuple[Dict[str, dict], List[Tuple[StudyRow, str]], List[str]]:
    """Hash every study's inputs and sort the studies: (records known now, studies to run with their
    hash, keys reused). Studies whose inputs cannot be read fail here, without a task."""
    from tqdm import tqdm

    records: Dict[str, dict] = {}
    to_run: List[Tuple[StudyRow, str]] = []
    reused: List[str] = []
    model = Path(settings.model_path) if settings.model_path else None
    for row in tqdm(rows, desc="hashing inputs", unit="study", disable=not progress or len(rows) < 20,
                    file=sys.stderr):
        try:
            digest = study_inputs_sha256(row, settings, model)
        except DeepDoseError as exc:
            record = base_record(row, None)
            record.update(status="failed", error=str(exc), error_kind="input")
            records[row.key] = record
            _write_failure(out_dir, record)
            continue
        final = out_dir / row.output_subdir
        if final.exists() and not (final / MARKER).is_file():  # not ours: never replaced
            record = base_record(row, digest)
            record.update(status="failed", error_kind="input",
                          error=f"{final} exists and was not written by deepdose batch (no {MARKER}); "
                                "move it away or choose another --out")
            records[row.key] = record
            continue
        done = read_done_marker(out_dir, row)
        if done is not None and done.get("inputs_sha256") == digest:
            records[row.key] = done
            reused.append(row.key)
            continue
        failure = _read_failure(out_dir, row.key)
        if (not retry_failed and failure is not None and failure.get("inputs_sha256") == digest
                and failure.get("error_kind") == "input"):
            records[row.key] = failure
            reused.append(row.key)
            continue
        to_run.append((row, digest))
    return records, to_run, reused


def run_cohort(rows: Sequence[StudyRow], out_dir, settings: StudySettings = StudySettings(), *,
               scheduler: Optional[str] = None, n_workers: Optional[int] = None, retries: int = 1,
               retry_failed: bool = False, progress: bool = True, dashboard_address: Optional[str] = ":8787",
               task: Callable = study_task) -> CohortResult:
    """Compute every study of ``rows`` not yet done into ``out_dir`` on a Dask cluster; write the summary.

    Args:
        scheduler: address of an existing Dask scheduler (or its scheduler file); None starts a local
            cluster of ``n_workers`` processes (default one per core) only if some study needs computing.
        retries: re-runs of a study whose task raised an unexpected exception.
        retry_failed: also re-run the studies refused for their input at an earlier run.
        task: the per-study task (default :func:`.tasks.study_task`; same signature).

    Returns:
        A :class:`CohortResult`. ``KeyboardInterrupt`` propagates after the client and a local cluster
        are closed and the summary of the studies finished so far is written.
    """
    from tqdm import tqdm

    from .runner import dask_client, gpu_resources, run_tasks

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records, to_run, reused = plan_cohort(rows, out_dir, settings, retry_failed=retry_failed, progress=progress)
    result = CohortResult(records=[], reused=reused)
    result.failed = [k for k, r in records.items() if r["status"] == "failed" and k not in reused]
    by_key = {row.key: (row, digest) for row, digest in to_run}
    try:
        if to_run:
            with dask_client(scheduler, n_workers, dashboard_address=dashboard_address, quiet=not progress) as client:
                gpu = gpu_resources(client) if settings.device != "cpu" else None
                jobs = [(row.key, (row, str(out_dir), settings, digest)) for row, digest in to_run]
                needs = (lambda key: gpu if by_key[key][0].method in GPU_METHODS else None) if gpu else None
                for key, record, error in run_tasks(client, task, jobs, resources=needs, retries=retries,
                                                    failed=lambda r: r.get("status") != "done", progress=progress):
                    row, digest = by_key[key]
                    if error is not None:
                        record = base_record(row, digest)
                        record.update(status="failed", error_kind="crash",
                                      error=f"{type(error).__name__}: {error}".rstrip(": "))
                    records[key] = record
                    if record["status"] == "done":
                        result.computed.append(key)
                        _failure_path(out_dir, key).unlink(missing_ok=True)
                    else:
                        result.failed.append(key)
                        _write_failure(out_dir, record)
                        if progress:
                            tqdm.write(f"{key}: FAILED: {record['error']}", file=sys.stderr)
            shutil.rmtree(out_dir / PARTIAL_DIR, ignore_errors=True)  # debris of workers that died mid-study
    except KeyboardInterrupt:
        result.interrupted = True
        raise
    finally:
        for row in rows:
            record = records.get(row.key)
            if record is None:
                record = base_record(row, by_key.get(row.key, (None, None))[1])
                record["status"] = "not run"
                record["error"] = "interrupted" if result.interrupted else ""
            result.records.append(record)
        result.tsv = write_cohort_tsv(result.records, out_dir / "cohort.tsv")
        result.report = write_cohort_report(result.records, out_dir / "cohort_report.html")
    return result
