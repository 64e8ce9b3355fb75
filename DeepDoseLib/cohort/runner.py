"""Dask plumbing shared by ``deepdose batch`` and ``deepdose dataset``: the client, the futures loop, progress.

Nothing here computes dosimetry. :func:`dask_client` connects to an existing scheduler (a
``dask-jobqueue`` SLURM/PBS cluster, a Kubernetes operator, ``dask scheduler`` + ``dask worker`` on
the GPU nodes) or starts a :class:`distributed.LocalCluster` of worker *processes* on this machine;
:func:`run_tasks` submits one task per job and yields the outcomes as they complete, with a tqdm bar
counting done / failed / running. A worker that dies has its tasks rescheduled by the scheduler (up to
``distributed.scheduler.allowed-failures`` deaths per task, default 3); an exception inside a task is
retried ``retries`` times. On Ctrl-C the remaining tasks are cancelled and the client (and a local
cluster) closed by the caller's ``with`` block.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid
from typing import Callable, Iterator, Optional, Sequence, Tuple, Union

from ..errors import DeepDoseError

#: seconds between two refreshes of the "running" count (one scheduler round trip each)
_REFRESH_S = 1.0


def _require_distributed():
    try:
        import distributed
    except ImportError:  # pragma: no cover - dask is a dependency; this guards trimmed environments (Slicer)
        raise DeepDoseError("Dask is not installed: pip install 'dask[distributed]' (in Slicer: "
                            "slicer.util.pip_install('dask[distributed]')).")
    return distributed


def default_n_workers() -> int:
    """Worker processes of a local cluster: one per CPU core available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def dask_client(scheduler: Optional[str] = None, n_workers: Optional[int] = None, threads_per_worker: int = 1,
                dashboard_address: Optional[str] = ":8787", quiet: bool = False):
    """A Dask client: on ``scheduler`` (address or scheduler-file path) or on a new local cluster.

    Args:
        scheduler: ``tcp://host:8786``, or a path to a ``scheduler.json`` written by ``dask scheduler
            --scheduler-file``; None starts a LocalCluster of ``n_workers`` processes here.
        n_workers: local cluster only (default: one per core); threads_per_worker: threads of each.
        dashboard_address: local cluster's dashboard (``":0"``: any free port; None: none).

    The client and a local cluster are closed when the block exits, also on Ctrl-C or an error.
    """
    distributed = _require_distributed()
    import logging

    logging.getLogger("distributed").setLevel(logging.WARNING)  # the scheduler's INFO lines would bury the bar
    cluster = None
    if scheduler is not None and n_workers is not None:
        raise DeepDoseError("--workers starts a local cluster; with --scheduler the cluster's own workers are used.")
    try:
        if scheduler is None:
            cluster = distributed.LocalCluster(n_workers=n_workers or default_n_workers(),
                                               threads_per_worker=threads_per_worker, processes=True,
                                               dashboard_address=dashboard_address)
            client = distributed.Client(cluster)
        elif os.path.isfile(scheduler):
            client = distributed.Client(scheduler_file=scheduler)
        else:
            client = distributed.Client(scheduler)
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise DeepDoseError(f"Cannot reach the Dask scheduler {scheduler or '(local cluster)'}: {exc}")
    try:
        if not quiet:
            info = client.scheduler_info()
            workers = info.get("workers", {})
            dashboard = client.dashboard_link if _has_dashboard(cluster) else \
                "(none: pip install 'dask[diagnostics]' for it)"
            print(f"Dask: {'scheduler ' + scheduler if scheduler else 'local cluster'} with {len(workers)} worker(s); "
                  f"dashboard {dashboard}", file=sys.stderr, flush=True)
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()


def _has_dashboard(cluster) -> bool:
    if cluster is None:
        return True  # a remote scheduler: its own dashboard, if it has one
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return False
    return True


def gpu_resources(client) -> Optional[dict]:
    """``{"GPU": 1}`` when some worker declares a GPU resource (``dask worker --resources GPU=1``), else None.

    Tasks that ask for it run only on those workers, one per GPU at a time.
    """
    workers = client.scheduler_info().get("workers", {})
    return {"GPU": 1} if any(w.get("resources", {}).get("GPU", 0) >= 1 for w in workers.values()) else None


def _running(client, keys: set, threads: int) -> int:
    try:
        processing = client.processing()
    except Exception:  # a scheduler briefly unreachable: keep the bar going
        return 0
    count = sum(1 for tasks in processing.values() for key in tasks if key in keys)
    return min(count, threads) if threads else count


def run_tasks(client, function: Callable, jobs: Sequence[Tuple[str, tuple]], *,
              resources: Union[None, dict, Callable[[str], Optional[dict]]] = None,
              retries: int = 1, failed: Callable[[object], bool] = lambda result: False, desc: str = "studies",
              progress: bool = True) -> Iterator[Tuple[str, object, Optional[BaseException]]]:
    """Run ``function(*args)`` for every ``(name, args)`` job on the cluster; yield ``(name, result, error)``
    in completion order (``error`` is the task's exception after its retries, ``result`` None then).

    Args:
        resources: Dask resources each task needs (e.g. ``{"GPU": 1}``), or a function job name -> resources.
        retries: re-runs of a task that raised (a dead worker's tasks are rescheduled regardless).
        failed: whether a returned result counts as a failure on the bar.
    """
    distributed = _require_distributed()
    from tqdm import tqdm

    token = uuid.uuid4().hex[:8]
    futures = {}
    for name, args in jobs:
        needs = resources(name) if callable(resources) else resources
        future = client.submit(function, *args, key=f"deepdose-{name}-{token}", resources=needs,
                               retries=retries, pure=False)
        futures[future] = name
    keys = {f.key for f in futures}
    threads = sum(w.get("nthreads", 1) for w in client.scheduler_info().get("workers", {}).values())
    done = bad = 0
    # this client's loop, not the process's default client's (another client, e.g. a notebook's, would bind the
    # futures' events to its loop and a result lost with a dead worker could then not be awaited again)
    completed = distributed.as_completed(list(futures), loop=client.loop)
    bar = tqdm(total=len(futures), disable=not progress, unit="study" if desc == "studies" else "case", desc=desc,
               file=sys.stderr)
    try:
        last = 0.0
        while not completed.is_empty():
            batch = completed.next_batch(block=False)
            if not batch:
                if time.monotonic() - last > _REFRESH_S:
                    last = time.monotonic()
                    bar.set_postfix_str(f"done {done} failed {bad} running {_running(client, keys, threads)}")
                time.sleep(0.05)
                continue
            for future in batch:
                name = futures[future]
                if future.status in ("lost", "pending"):
                    # its result lived on a worker that died before we fetched it: the scheduler recomputes it
                    completed.add(future)
                    continue
                if future.status == "finished":
                    try:
                        result, error = future.result(), None
                    except Exception:  # lost while being fetched (its worker died): wait for the recomputation
                        if future.status in ("lost", "pending"):
                            completed.add(future)
                            continue
                        raise
                else:
                    result, error = None, future.exception() if future.status == "error" else \
                        DeepDoseError(f"task {future.status}")
                keys.discard(future.key)
                if error is not None or failed(result):
                    bad += 1
                else:
                    done += 1
                future.release()
                bar.update(1)
                bar.set_postfix_str(f"done {done} failed {bad} running {_running(client, keys, threads)}")
                yield name, result, error
    finally:
        bar.close()
        remaining = [f for f in futures if f.status == "pending"]
        if remaining:
            with contextlib.suppress(Exception):
                client.cancel(remaining)
