"""Checks of the ``deepdose`` command's arguments, made before any work (reading images, computing dose).

Each ``check_<command>_args`` refuses bad values (:class:`~DeepDoseLib.errors.DeepDoseInputError`, exit 2)
and checks every output path of the run against every input path (:mod:`DeepDoseLib.output_paths`): a
mistake costs seconds, not the run. Checks that need the data (label maps against the dose grid, the
label given to ``--report-focus``, the Monte Carlo run time) are here too, called as soon as the data is read.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import List, Mapping, Optional, Sequence

import numpy as np
import SimpleITK as sitk

from .errors import DeepDoseInputError
from .image_io import IMAGE_SUFFIXES
from .output_paths import Output, check_outputs

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".tab")
#: A Monte Carlo run expected to last longer than this [s] needs ``--yes`` on the command line.
MC_CONFIRM_ABOVE_s = 3600.0
#: Decays of the calibration run that measures the Monte Carlo speed (only for runs of many more decays).
MC_CALIBRATION_DECAYS = 20_000


def finite_at_least(flag: str, value: Optional[float], minimum: float, *, strictly: bool = False) -> None:
    """Refuse a value that is not finite or below ``minimum`` (``strictly``: not above it)."""
    if value is None:
        return
    if not math.isfinite(value) or value < minimum or (strictly and value == minimum):
        relation = ">" if strictly else "≥"
        raise DeepDoseInputError(f"{flag} must be a finite number {relation} {minimum:g} (got {value}).")


def _model_inputs(model: Optional[Path]) -> List[Path]:
    if model is None:
        return []
    if model.suffix.lower() != ".pt":
        raise DeepDoseInputError(f"--model {model}: a TorchScript model file (.pt) with its .json card is expected.")
    return [model, model.with_suffix(".json")]


def check_method_args(args: argparse.Namespace) -> None:
    """Numbers of the dose methods (``dose``, ``demo`` and ``mc``)."""
    finite_at_least("--decays", args.decays, 1)
    finite_at_least("--batches", getattr(args, "batches", None), 1)
    finite_at_least("--kernel-radius-mm", getattr(args, "kernel_radius_mm", None), 0, strictly=True)
    finite_at_least("--kernel-decays", getattr(args, "kernel_decays", None), 1)
    if getattr(args, "seed", 0) < 0:
        raise DeepDoseInputError(f"--seed must be ≥ 0 (got {args.seed}).")


def check_dose_args(args: argparse.Namespace) -> None:
    """``deepdose dose``: numbers, label options and every output against every input."""
    check_method_args(args)
    if args.report_focus is not None and args.labels is None:
        raise DeepDoseInputError("--report-focus LABEL needs --labels LABELS.")
    if args.report_focus is not None and args.report is None:
        raise DeepDoseInputError("--report-focus centres the report's slices: it needs --report DIR.")
    inputs = [args.ct, args.pet, args.labels, args.label_names, args.hu_density_table] + _model_inputs(args.model)
    check_outputs([Output("--out", args.out, IMAGE_SUFFIXES), Output("--uncertainty", args.uncertainty, IMAGE_SUFFIXES),
                   Output("--organ-table", args.organ_table, TABLE_SUFFIXES),
                   Output("--report", args.report / "report.html" if args.report else None, (".html",))],
                  inputs, args.overwrite)


def check_mc_args(args: argparse.Namespace) -> None:
    """``deepdose mc``: numbers and outputs."""
    check_method_args(args)
    check_outputs([Output("--out", args.out, IMAGE_SUFFIXES), Output("--uncertainty", args.uncertainty, IMAGE_SUFFIXES)],
                  [args.ct, args.density, args.activity], args.overwrite)


def check_integrate_args(args: argparse.Namespace) -> None:
    """``deepdose integrate``: times, half-life and outputs."""
    paths = args.dose_rate or args.activity
    for t in args.time_h:
        finite_at_least("--time-h", t, 0)
    if len(set(args.time_h)) != len(args.time_h):
        raise DeepDoseInputError(f"--time-h {args.time_h}: two maps at the same time; give each map its own time.")
    finite_at_least("--effective-half-life-h", args.effective_half_life_h, 0, strictly=True)
    check_outputs([Output("--out", args.out, IMAGE_SUFFIXES), Output("--r-squared-out", args.r_squared_out,
                                                                     IMAGE_SUFFIXES),
                   Output("--table", args.table, TABLE_SUFFIXES)],
                  list(paths) + [args.labels, args.label_names], args.overwrite)


def check_demo_args(args: argparse.Namespace) -> None:
    """``deepdose demo``: numbers and the output folder."""
    check_method_args(args)
    check_outputs([Output("--out", args.out, folder=True)], [args.model, args.hu_density_table], True)


def check_dataset_args(args: argparse.Namespace) -> None:
    """``deepdose dataset``: numbers (the folder is resumed, so it may exist)."""
    finite_at_least("--decays", args.decays, 1)
    finite_at_least("--spacing-mm", args.spacing_mm, 0, strictly=True)
    finite_at_least("--n", args.n, 0)
    for flag in ("val_fraction", "test_fraction", "truncated_fov_fraction", "block_fraction"):
        value = getattr(args, flag)
        finite_at_least("--" + flag.replace("_", "-"), value, 0)
        if value > 1:
            raise DeepDoseInputError(f"--{flag.replace('_', '-')} is a share between 0 and 1 (got {value}).")
    check_outputs([Output("--out", args.out, folder=True)], [], True)


def check_train_args(args: argparse.Namespace) -> None:
    """``deepdose train``: numbers, the model file's suffix and folder (the model and its card are replaced when
    they exist: training resumes and rewrites its own model; the data folders are written by --generate-train)."""
    finite_at_least("--decays", args.decays, 1)
    finite_at_least("--learning-rate", args.learning_rate, 0, strictly=True)
    finite_at_least("--time-limit-min", args.time_limit_min, 0, strictly=True)
    check_outputs([Output("--out", args.out, (".pt",)), Output("--out (card)", args.out.with_suffix(".json"))],
                  [], True)


def check_evaluate_args(args: argparse.Namespace) -> None:
    """``deepdose evaluate``: a TorchScript model file."""
    _model_inputs(args.model)


def check_labels(labels: sitk.Image, grid: sitk.Image, *, names: Optional[Mapping[int, str]] = None,
                 focus_label: Optional[int] = None, what: str = "--labels") -> List[str]:
    """Refuse a label map with negative or non-integer values or without any labelled voxel on the dose grid,
    and a ``focus_label`` it does not hold; returns notes on labels that miss the grid.

    ``labels`` and ``grid`` may lie on different grids (compared in physical space, nearest neighbour).
    """
    array = sitk.GetArrayViewFromImage(labels)
    if array.size and float(array.min()) < 0:
        raise DeepDoseInputError(f"{what}: the label map holds negative values (down to {float(array.min()):g}); "
                                 "labels are integers ≥ 0 (0 = background).")
    sample = array.ravel()[:: max(1, array.size // 500000)]
    if not np.all(sample == np.round(sample)):
        raise DeepDoseInputError(f"{what}: the label map holds non-integer values (a probability map or a label map "
                                 "resampled with linear interpolation?); labels are integers.")
    present = {int(v) for v in np.unique(array) if v > 0}
    if not present:
        raise DeepDoseInputError(f"{what}: the label map holds no label (every voxel is 0).")
    from .geometry import resample_to_grid

    on_grid = sitk.GetArrayFromImage(resample_to_grid(labels, grid, interpolator=sitk.sitkNearestNeighbor,
                                                          default_value=0.0))
    hit = {int(v) for v in np.unique(on_grid) if v > 0}
    if not hit:
        raise DeepDoseInputError(f"{what}: no labelled voxel lies on the dose grid (the label map and the PET do "
                                 "not overlap in space); check that both belong to the same scan and frame of "
                                 "reference.")
    if focus_label is not None and int(focus_label) not in present:
        raise DeepDoseInputError(f"--report-focus {focus_label}: the label map has no label {focus_label} "
                                 f"(labels: {', '.join(str(v) for v in sorted(present)[:20])}).")
    missing = sorted(present - hit)
    notes = []
    if missing:
        label_names = names or {}
        notes.append(f"WARNING: label(s) {', '.join(str(label_names.get(m, m)) for m in missing[:20])} lie outside "
                     "the dose grid: no dose is reported for them")
    return notes


def confirm_mc_run_time(inputs, nuclide: str, n_decays: int, *, seed: int, device: str, yes: bool,
                        out=None) -> Optional[float]:
    """Measure the Monte Carlo speed on these inputs with a short run (:data:`MC_CALIBRATION_DECAYS` decays),
    print the expected run time and refuse a run expected to last over :data:`MC_CONFIRM_ABOVE_s` without
    ``yes``. Returns the estimate [s] (None when the run is too short to need one)."""
    if n_decays <= 50 * MC_CALIBRATION_DECAYS:
        return None
    from .dose import resolve_device
    from .mc import run_monte_carlo

    calibration = run_monte_carlo(inputs.activity_Bq_per_mL, inputs.density_g_per_cm3, inputs.material_labels,
                                  inputs.spacing_mm, nuclide, MC_CALIBRATION_DECAYS, seed=seed,
                                  device=resolve_device(device), n_batches=2)
    seconds = n_decays / max(calibration.decays_per_second, 1e-9)
    hours = seconds / 3600.0
    text = f"{seconds:.0f} s" if seconds < 3600 else f"{hours:.3g} h"
    print(f"Monte Carlo: {n_decays:.3g} decays at {calibration.decays_per_second:,.0f} decays/s (calibration run of "
          f"{MC_CALIBRATION_DECAYS:,} decays) -> expected run time {text}", file=out or sys.stderr)
    if seconds > MC_CONFIRM_ABOVE_s and not yes:
        raise DeepDoseInputError(f"--decays {n_decays:.3g} would run for about {text}; pass --yes to start it "
                                 "anyway, or lower --decays.")
    return seconds
