"""Shared set-up of the Deep-dose timing benchmarks on the demo torso (bench_deepdose_tiles, bench_deepdose_precision):
the command-line options they share, the torch threads, the demo torso's inputs and the model, and the timer."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from DeepDoseLib.deepdose.model_io import resolve_model
from DeepDoseLib.demo import make_demo_case
from DeepDoseLib.dose import prepare_inputs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=None, help="default: the bundled model of --nuclide")
    parser.add_argument("--nuclide", default="Ga68")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)


def demo_torso_and_model(args: argparse.Namespace) -> tuple:
    """(activity [Bq/mL], density [g/cm³], spacing (x, y, z) [mm], model) with ``args.threads`` torch threads."""
    torch.set_num_threads(args.threads)
    case = make_demo_case()
    inputs = prepare_inputs(case.ct, case.pet)
    model = resolve_model(args.model, args.nuclide, "cpu")
    return inputs.activity_Bq_per_mL, inputs.density_g_per_cm3, inputs.spacing_mm, model


def best_of(fn, repeats: int) -> tuple:
    """(result of the last call, fastest wall time [s]) of ``repeats`` calls of ``fn()``."""
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, min(times)
