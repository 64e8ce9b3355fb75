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
from .inputs import check_labels, labels_present  # noqa: F401  (re-exported: the checks of the command line)
from .output_paths import TABLE_SUFFIXES, Output, check_outputs

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


def model_inputs(model: Optional[Path], flag: str = "--model") -> List[Path]:
    if model is None:
        return []
    if model.suffix.lower() != ".pt":
        raise DeepDoseInputError(f"{flag} {model}: a TorchScript model file (.pt) with its .json card is expected.")
    return [model, model.with_suffix(".json")]


def check_dose_args(args: argparse.Namespace) -> None:
    """``deepdose dose``: the report options (the method's numbers are checked by its registry entry, the outputs
    by :meth:`DeepDoseLib.study.StudyOutputs.check`)."""
    if args.report_focus is not None and args.labels is None:
        raise DeepDoseInputError("--report-focus LABEL needs --labels LABELS.")
    if args.report_focus is not None and args.report is None:
        raise DeepDoseInputError("--report-focus centres the report's slices: it needs --report DIR.")


def check_mc_args(args: argparse.Namespace) -> None:
    """``deepdose mc``: the outputs (the numbers are checked by the ``mc`` registry entry)."""
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
    """``deepdose demo``: the output folder."""
    check_outputs([Output("--out", args.out, folder=True)], [args.model_path, args.hu_density_table], True)


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
    # the range declared by vsv_scaled's option of the same name (one declaration for both front ends)
    from .dose_methods.base import option_specs
    from .dose_methods.vsv_scaled import ScaledVSVOptions

    spec = next(s for s in option_specs(ScaledVSVOptions) if s.name == "photon_radius_mm")
    radius = args.photon_radius_mm
    if not (math.isfinite(radius) and spec.minimum <= radius <= spec.maximum):
        raise DeepDoseInputError(f"--photon-radius-mm must lie between {spec.minimum:g} and {spec.maximum:g} mm "
                                 f"(got {radius}).")
    if args.init_from is not None:  # a readable model of this nuclide and architecture, before any work
        from .deepdose.training import starting_weights

        starting_weights(args.init_from, args.nuclide, args.base_channels, args.depth)
    check_outputs([Output("--out", args.out, (".pt",)), Output("--out (card)", args.out.with_suffix(".json"))],
                  model_inputs(args.init_from, "--init-from"), True)


def check_evaluate_args(args: argparse.Namespace) -> None:
    """``deepdose evaluate``: a TorchScript model file."""
    model_inputs(args.model)


def confirm_mc_run_time(inputs, nuclide: str, n_decays: int, *, seed: int, device: str, yes: bool,
                        out=None) -> Optional[float]:
    """Measure the Monte Carlo speed on these inputs with a short run (:data:`MC_CALIBRATION_DECAYS` decays),
    print the expected run time and refuse a run expected to last over :data:`MC_CONFIRM_ABOVE_s` without
    ``yes``. Returns the estimate [s] (None when the run is too short to need one)."""
    if n_decays <= 50 * MC_CALIBRATION_DECAYS:
        return None
    from .devices import resolve_device
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
