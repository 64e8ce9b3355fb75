"""Time ``deepdose demo`` (Deep-dose beside vsv_scaled on the embedded demo PET/CT) as a user runs it.

Runs the console command in a fresh process ``--repeats`` times with ``--threads`` torch/OpenMP threads
and prints, per run, the wall-clock time, the CPU time of the process (user + system, from
``resource.getrusage`` of the child) and the machine's 1-minute load average before the run: on a
shared machine the wall time says little, the CPU time bounds it (wall >= CPU / threads when the
cores are free). The issue's target is < 30 s wall on 2 free cores.

    python benchmarks/bench_demo.py [--threads 2] [--repeats 3] [--method deepdose]
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time


def run_once(threads: int, method: str) -> tuple:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "DeepDoseLib", "demo", "--out", out, "--quiet", "--method", method],
                       check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, load


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--method", default="deepdose")
    args = parser.parse_args(argv)
    print(f"deepdose demo --method {args.method}, {args.threads} thread(s), {os.cpu_count()} CPU(s) on the machine")
    print("| run | wall [s] | CPU user+sys [s] | load average before |\n|---|---|---|---|")
    for i in range(args.repeats):
        wall, cpu, load = run_once(args.threads, args.method)
        print(f"| {i + 1} | {wall:.1f} | {cpu:.1f} | {load:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
