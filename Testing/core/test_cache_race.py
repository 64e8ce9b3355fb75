"""Concurrent runs that compute the same cached entry (VSV kernel, photon factors) never crash or read half a
file: each writer uses its own temporary file and renames it into place."""
from __future__ import annotations

import json
import threading

import numpy as np

from DeepDoseLib import disk_cache


def test_concurrent_writers_of_one_cache_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPDOSE_CACHE_DIR", str(tmp_path))
    n_threads, rounds = 8, 5
    errors, results = [], []
    for round_ in range(rounds):
        params = {"round": round_, "what": "race"}
        barrier = threading.Barrier(n_threads)

        def compute():
            barrier.wait()  # every thread computes, then all write at the same moment
            return {"factors": [1.0, 2.0, float(round_)]}

        def worker():
            try:
                results.append(disk_cache.cached_json("race", params, True, compute)["factors"])
            except Exception as exc:  # noqa: BLE001 - the test records any failure
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        path = disk_cache.cache_path("race", params, ".json")
        assert json.loads(path.read_text())["factors"] == [1.0, 2.0, float(round_)]
    assert not errors, errors
    assert len(results) == n_threads * rounds
    assert not [p for p in (tmp_path / "vsv").iterdir() if p.name.endswith(".tmp")]  # no temporary file left


def test_npz_cache_writes_are_atomic_and_a_damaged_entry_is_recomputed(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPDOSE_CACHE_DIR", str(tmp_path))
    path = disk_cache.cache_path("k", {"a": 1}, ".npz")
    kernel = np.arange(27, dtype=np.float32).reshape(3, 3, 3)
    barrier = threading.Barrier(6)
    errors = []

    def worker():
        try:
            barrier.wait()
            disk_cache.write_cache_file(path, lambda f: np.savez_compressed(f, kernel=kernel, params="{}"))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with np.load(path) as data:
        np.testing.assert_array_equal(data["kernel"], kernel)
    # a damaged JSON entry (e.g. left by an older version) is recomputed, not a crash
    bad = disk_cache.cache_path("bad", {"b": 2}, ".json")
    bad.write_text('{"factors": [1')
    assert disk_cache.cached_json("bad", {"b": 2}, True, lambda: {"factors": [3.0]})["factors"] == [3.0]


def _process_worker(cache_dir: str, start, errors) -> None:
    import os

    os.environ["DEEPDOSE_CACHE_DIR"] = cache_dir
    start.wait()
    for round_ in range(40):
        try:
            disk_cache.cached_json("proc", {"round": round_}, True, lambda: {"factors": [float(round_)] * 200})
        except Exception as exc:  # noqa: BLE001
            errors.put(repr(exc))


def test_concurrent_processes(tmp_path):
    """Separate processes (as concurrent `deepdose` runs are) writing the same entries at once."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    start, errors = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_process_worker, args=(str(tmp_path), start, errors)) for _ in range(4)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert not found, found
    assert all(p.exitcode == 0 for p in procs)
