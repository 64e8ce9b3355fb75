"""Benchmark of ``deepdose batch`` on Dask: studies per hour on 1 and 2 local workers, and the engine's overhead.

Every study is the demo PET/CT (91 x 72 x 220 voxels of 4 mm, Ga-68, 10 labelled structures) written as
NRRD files; each row of the manifest is its own study (own output folder). Two measurements, each on a
warm LocalCluster (workers started and DeepDose/torch imported before the clock starts; the start-up is
printed apart):

1. throughput: ``--studies`` studies with ``--method`` (default deepdose) on 1 worker, then on 2
   workers (one thread each): studies/hour and the scaling ratio, measured in one run;
2. engine overhead per study: wall time of ``run_cohort`` on 1 worker minus the time spent inside the
   study tasks, divided by the number of studies (hashing the inputs, submitting, scheduling, result
   transfer, done-markers, cohort.tsv and report included), with LED studies (the method barely enters),
   as a fraction of one Deep-dose study measured in step 1.

    python benchmarks/bench_batch.py [--studies 4] [--method deepdose] [--overhead-studies 20]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def _warm_cluster(n_workers: int):
    from distributed import Client, LocalCluster

    start = time.perf_counter()
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = Client(cluster)
    client.run(lambda: __import__("DeepDoseLib.cohort.tasks") and __import__("torch") and None)
    return cluster, client, time.perf_counter() - start


def _manifest(root: Path, files: dict, n: int, nuclide: str) -> Path:
    lines = ["study_id,ct,pet,nuclide,labels,label_names"]
    lines += [f"s{i:03d},{files['ct']},{files['pet']},{nuclide},{files['labels']},{files['label_names']}"
              for i in range(n)]
    path = root / f"manifest_{n}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(manifest: Path, out: Path, n_workers: int, method: str):
    from DeepDoseLib.cohort import read_manifest
    from DeepDoseLib.cohort.batch import run_cohort
    from DeepDoseLib.cohort.pipeline import StudySettings

    rows = read_manifest(manifest, default_method=method)
    cluster, client, startup_s = _warm_cluster(n_workers)
    try:
        start = time.perf_counter()
        result = run_cohort(rows, out, StudySettings(), scheduler=cluster.scheduler_address, progress=False)
        wall_s = time.perf_counter() - start
    finally:
        client.close()
        cluster.close()
    if result.n_failed:
        raise SystemExit(f"{result.n_failed} studies failed: {[r['error'] for r in result.records if r['error']]}")
    task_s = [r["seconds"] for r in result.records]
    cpu_share = sum(r["cpu_seconds"] for r in result.records) / sum(task_s)
    return wall_s, task_s, startup_s, cpu_share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=4, help="studies of the throughput runs (default 4)")
    parser.add_argument("--method", default="deepdose", help="method of the throughput runs (default deepdose)")
    parser.add_argument("--overhead-studies", type=int, default=20, help="LED studies of the overhead run")
    args = parser.parse_args()
    from DeepDoseLib.demo import make_demo_case, write_demo_case

    root = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    try:
        case = make_demo_case()
        files = write_demo_case(case, root / "demo")
        files = {k: Path(v) for k, v in files.items()}
        for key in ("ct", "pet", "labels"):  # NRRD, as scanners' exports converted once
            import SimpleITK as sitk

            nrrd = root / "demo" / f"{key}.nrrd"
            sitk.WriteImage(sitk.ReadImage(str(files[key])), str(nrrd))
            files[key] = nrrd
        print(f"study: demo PET/CT {'x'.join(map(str, case.ct.GetSize()))} voxels, {case.nuclide}, "
              f"{len(case.label_names)} label names; {os.cpu_count()} CPU cores, load average "
              f"{os.getloadavg()[0]:.1f} at start")
        manifest = _manifest(root, files, args.studies, case.nuclide)
        rates = {}
        study_s = None
        for n_workers in (1, 2):
            wall, tasks, startup, cpu_share = _run(manifest, root / f"out_{args.method}_{n_workers}", n_workers,
                                                   args.method)
            rates[n_workers] = 3600.0 * len(tasks) / wall
            if n_workers == 1:
                study_s = statistics.mean(tasks)
            print(f"{args.method}, {n_workers} worker(s): {len(tasks)} studies in {wall:.1f} s -> "
                  f"{rates[n_workers]:.0f} studies/hour (mean task {statistics.mean(tasks):.1f} s; cluster start-up "
                  f"{startup:.1f} s, once per run, not counted; CPU time / wall time inside the tasks "
                  f"{cpu_share:.2f} core per worker: below 1, the worker waited for a core)")
        print(f"scaling 2 workers / 1 worker: {rates[2] / rates[1]:.2f}x (ideal 2.00x on 2 free cores)")

        manifest = _manifest(root, files, args.overhead_studies, case.nuclide)
        wall, tasks, _, _ = _run(manifest, root / "out_led_overhead", 1, "led")
        overhead = (wall - sum(tasks)) / len(tasks)
        print(f"engine overhead: LED, 1 worker, {len(tasks)} studies: wall {wall:.2f} s, inside tasks "
              f"{sum(tasks):.2f} s -> {overhead * 1000:.0f} ms per study")
        print(f"overhead / one {args.method} study ({study_s:.1f} s on 1 worker): {100 * overhead / study_s:.2f} %")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
