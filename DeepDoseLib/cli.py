"""The ``deepdose`` command: a thin layer over :mod:`DeepDoseLib` (argparse subcommands).

    deepdose demo [--out DIR]
    deepdose dose --ct CT --pet PET --nuclide Ga68 --method led --out DOSE.nii.gz [--labels L --report DIR]
    deepdose integrate --dose-rate T1 --time-h 4 --dose-rate T2 --time-h 24 --nuclide Lu177 --out DOSE_Gy.nii.gz
    deepdose dataset --n 20 --tracer Ga68-PSMA-11 --out DIR [--spacing-mm 4] [--decays 2e7] [--seed 0]
                     [--truncated-fov-fraction F] [--block-fraction F]
    deepdose nuclides

Exit status: 0 success, 2 bad input (message on stderr), 1 unexpected failure, 130 interrupted.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import List, Optional

from ._version import __version__
from .errors import DeepDoseError
from .methods import METHODS, PLANNED_METHODS


class _Progress:
    """tqdm progress bar (to stderr) adapted to DeepDose's progress(fraction, message) callbacks."""

    def __init__(self, enabled: bool = True) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=100, disable=not enabled, unit="%", bar_format="{l_bar}{bar}| {elapsed}<{remaining}")

    def __call__(self, fraction: float, message: str) -> None:
        self.bar.set_description_str(message[:60])
        self.bar.update(max(0, round(100 * fraction) - self.bar.n))

    def close(self) -> None:
        self.bar.close()


def _add_dose_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nuclide", default="Ga68", help="radionuclide, e.g. Ga68, Lu177, F18 (see `deepdose nuclides`)")
    p.add_argument("--method", default="led", choices=METHODS + PLANNED_METHODS,
                   help=f"dose method; available now: {', '.join(METHODS)}")
    p.add_argument("--include-photons", action="store_true",
                   help="LED: also deposit photon energy locally (default: charged particles only)")
    p.add_argument("--clip-negative", action="store_true", help="set negative PET voxels to 0 instead of failing")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--decays", type=float, default=1e7, help="MC: number of decays to simulate (default 1e7)")
    p.add_argument("--seed", type=int, default=0, help="MC/VSV: random seed (results are reproducible)")
    p.add_argument("--batches", type=int, default=10, help="MC: batches for the statistical uncertainty")
    p.add_argument("--vsv-density-correction", action="store_true",
                   help="VSV: scale the dose by kernel density / local density")
    p.add_argument("--kernel-medium", default="soft_tissue", help="VSV: kernel medium (soft_tissue, water, ...)")
    p.add_argument("--kernel-decays", type=float, default=2e6, help="VSV: decays simulated for the kernel")
    p.add_argument("--kernel-radius-mm", type=float, default=150.0, help="VSV: kernel extent from its centre [mm]")
    p.add_argument("--model", type=Path, default=None,
                   help="deepdose: model file (.pt/.pt2 with its .json card); default: the bundled model of the nuclide")
    p.add_argument("--hu-density-table", type=Path,
                   help="CSV 'hu,density_g_per_cm3' replacing the Schneider 2000 calibration")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deepdose", description="Voxel dosimetry from quantitative PET/SPECT and CT "
                                     "(activity Bq/mL, dose rate mGy/h).")
    parser.add_argument("--version", action="version", version=f"DeepDose {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    dose = sub.add_parser("dose", help="compute a dose-rate map [mGy/h]")
    dose.add_argument("--ct", required=True, type=Path, help="CT in HU: NIfTI/NRRD/MHA file or DICOM folder")
    dose.add_argument("--pet", required=True, type=Path,
                      help="PET/SPECT activity: file (unit from --pet-unit) or DICOM folder (BQML, SUV or counts)")
    dose.add_argument("--pet-unit", default="Bq/mL", choices=["Bq/mL", "kBq/mL", "MBq/mL"],
                      help="unit of a non-DICOM PET file (default Bq/mL)")
    dose.add_argument("--out", required=True, type=Path, help="output dose-rate image (.nii.gz, .nrrd, .mha)")
    dose.add_argument("--overwrite", action="store_true", help="replace an existing output file (never an input)")
    dose.add_argument("--uncertainty", type=Path, help="MC: also write the relative standard uncertainty map")
    _add_label_options(dose, "--organ-table", "organ statistics table (.tsv or .csv; needs --labels)")
    dose.add_argument("--report", type=Path, metavar="DIR", help="write a self-contained HTML report to DIR/report.html")
    dose.add_argument("--report-focus", type=int, metavar="LABEL",
                      help="centre the report's slices on this label instead of the maximum")
    _add_dose_options(dose)

    demo = sub.add_parser("demo", help="run the embedded demo PET/CT case end to end")
    demo.add_argument("--out", type=Path, default=Path("deepdose_demo"), help="output folder (default ./deepdose_demo)")
    _add_dose_options(demo)

    mc = sub.add_parser("mc", help="Monte Carlo reference dose rate [mGy/h] with its uncertainty")
    source = mc.add_mutually_exclusive_group(required=True)
    source.add_argument("--ct", type=Path, help="CT in HU (file or DICOM folder): density and materials")
    source.add_argument("--density", type=Path, help="mass-density map in g/cm³ (materials from density)")
    mc.add_argument("--activity", "--pet", dest="activity", required=True, type=Path,
                    help="activity map: file (unit from --pet-unit) or PET DICOM folder")
    mc.add_argument("--pet-unit", default="Bq/mL", choices=["Bq/mL", "kBq/mL", "MBq/mL"])
    mc.add_argument("--nuclide", required=True, help="radionuclide, e.g. Ga68, Lu177")
    mc.add_argument("--decays", type=float, required=True, help="number of decays to simulate, e.g. 1e7")
    mc.add_argument("--seed", type=int, default=0)
    mc.add_argument("--batches", type=int, default=10, help="batches for the statistical uncertainty")
    mc.add_argument("--device", default="auto", help="auto, cpu or cuda")
    mc.add_argument("--engine", default="kernel", choices=["kernel", "torch"],
                    help="kernel: compiled transport kernel (default); torch: the reference engine")
    mc.add_argument("--target-uncertainty", metavar="PCT",
                    help="e.g. 2%%: after --decays, simulate on until the median relative uncertainty in tissue voxels "
                         "above half the maximum reaches it (kernel engine)")
    mc.add_argument("--max-decays", type=float, help="decay limit of --target-uncertainty (default 100 × --decays)")
    mc.add_argument("--clip-negative", action="store_true", help="set negative activity voxels to 0")
    mc.add_argument("--out", required=True, type=Path, help="dose-rate image [mGy/h]")
    mc.add_argument("--uncertainty", type=Path, help="relative standard uncertainty image (fraction)")
    mc.add_argument("--overwrite", action="store_true")
    mc.add_argument("--quiet", action="store_true")

    from .analysis.time_integration import MODELS

    integ = sub.add_parser("integrate", help="absorbed dose [Gy] from dose-rate maps at several time points")
    maps = integ.add_mutually_exclusive_group(required=True)
    maps.add_argument("--dose-rate", action="append", type=Path, metavar="MAP",
                      help="dose-rate map [mGy/h] at one time point; repeat, one per --time-h (registered, one grid)")
    maps.add_argument("--activity", action="append", type=Path, metavar="MAP",
                      help="activity map [Bq/mL] instead: gives time-integrated activity [Bq·h/mL]")
    integ.add_argument("--time-h", action="append", type=float, required=True,
                       help="time of each map [h after administration], in the order of the maps")
    integ.add_argument("--nuclide", required=True, help="radionuclide (physical decay), e.g. Lu177")
    integ.add_argument("--model", default="trapezoid", choices=MODELS, help="time-integration model")
    integ.add_argument("--head", default="zero", choices=["zero", "constant"],
                       help="trapezoid before the first point: linear rise from 0 (default) or constant")
    integ.add_argument("--tail", default="physical", choices=["physical", "fit", "none"],
                       help="trapezoid after the last point: physical decay (default), last-two-point fit, none")
    integ.add_argument("--no-physical-bound", action="store_true",
                       help="fits: allow decay constants below the physical one")
    integ.add_argument("--effective-half-life-h", type=float,
                       help="stp: population effective half-life [h] (default: Hänscheid 2t/ln2)")
    integ.add_argument("--integrate-from", default="injection", choices=["injection", "reference"],
                       help="physical: integrate from the injection (decay-corrected back) or from the map's time")
    integ.add_argument("--out", required=True, type=Path, help="absorbed-dose image [Gy] (or [Bq·h/mL])")
    integ.add_argument("--r-squared-out", type=Path, help="fits: also write the R² map")
    _add_label_options(integ, "--table", "per-organ time-integration table (.tsv; needs --labels)")
    integ.add_argument("--device", default="auto", help="auto, cpu or cuda")
    integ.add_argument("--overwrite", action="store_true")
    integ.add_argument("--quiet", action="store_true", help="no progress bar")

    data = sub.add_parser("dataset", help="build (or resume) a training/evaluation set of synthetic PET/CT cases "
                          "with Monte Carlo dose-rate ground truth")
    data.add_argument("--n", type=int, required=True, help="number of procedural cases")
    data.add_argument("--tracer", nargs="+", default=["Ga68-PSMA-11"],
                      help="tracer(s), cycled over the cases: Ga68-PSMA-11, Ga68-DOTATATE, Ga68-NOTA-RGD, "
                           "Lu177-PSMA-617, Lu177-DOTATATE")
    data.add_argument("--out", type=Path, required=True, help="dataset folder (re-run the same command to resume)")
    data.add_argument("--spacing-mm", type=float, default=4.0, help="isotropic voxel size [mm] (default 4)")
    data.add_argument("--decays", type=float, default=2e7, help="Monte Carlo decays per case (default 2e7)")
    data.add_argument("--seed", type=int, default=0, help="dataset seed (every case follows from it)")
    data.add_argument("--val-fraction", type=float, default=0.1, help="validation share (unseen anatomies)")
    data.add_argument("--test-fraction", type=float, default=0.1, help="test share (held-out anatomy family)")
    data.add_argument("--reference-anatomies", action="store_true",
                      help="add test cases on the real anatomies of ../shared/data (ICRP-110 AF, TotalSegmentator)")
    data.add_argument("--truncated-fov-fraction", type=float, default=0.0,
                      help="share of the cases cropped to an axial field of view (--fov-range-mm) before the MC run")
    data.add_argument("--fov-range-mm", type=float, nargs=2, default=[60.0, 200.0], metavar=("LO", "HI"),
                      help="axial field of view of the truncated cases [mm], drawn uniformly (default 60 200)")
    data.add_argument("--block-fraction", type=float, default=0.0,
                      help="share of the cases that are soft-tissue blocks with uniform lung/adipose/bone inserts")
    data.add_argument("--engine", choices=["mc", "led"], default="mc",
                      help="ground truth: mc (default); led is a fast stand-in for testing pipelines only")
    data.add_argument("--device", default="auto", help="auto, cpu or cuda")
    data.add_argument("--quiet", action="store_true", help="no progress bar")

    from .deepdose.commands import add_evaluate_parser, add_train_parser

    add_train_parser(sub)
    add_evaluate_parser(sub)
    sub.add_parser("nuclides", help="list the radionuclides and their emitted energies")
    return parser


def _add_label_options(p: argparse.ArgumentParser, table_flag: str, table_help: str) -> None:
    p.add_argument("--labels", type=Path, help="label map (organs/structures; any grid: partial-volume fractions)")
    p.add_argument("--label-names", type=Path, help='JSON {"1": "liver", ...} naming the labels')
    p.add_argument(table_flag, type=Path, help=table_help)


def _read_labels(labels: Optional[Path], names: Optional[Path], *needing: Optional[Path]):
    """(label image, {label: name}) or (None, None); options that need --labels are refused without it."""
    import json

    from .image_io import read_image

    if labels is None:
        if names is not None or any(p is not None for p in needing):
            raise DeepDoseError("--label-names and the organ table need --labels LABELS.")
        return None, None
    try:
        mapping = json.loads(names.read_text()) if names is not None else {}
        return read_image(labels), {int(k): str(v) for k, v in mapping.items()}
    except (OSError, ValueError, AttributeError) as exc:
        raise DeepDoseError(f"--label-names {names}: expected a JSON object {{\"1\": \"liver\", ...}} ({exc}).")


def _organ_outputs(dose, labels, names, density, table: Optional[Path], report: Optional[Path], **report_options):
    """Organ table and/or HTML report of a dose-rate map (both optional); returns the organ rows or None."""
    from .analysis.organs import organ_statistics, write_organ_table

    rows = organ_statistics(dose, labels, names, density) if labels is not None else None
    if table is not None:
        write_organ_table(rows, table)
        print(f"organ table written to {table}", file=sys.stderr)
    if report is not None:
        from .report import write_report

        path = write_report(report, dose, labels=labels, label_names=names, density_g_per_cm3=density,
                            organ_rows=rows, **report_options)
        print(f"report written to {path}", file=sys.stderr)
    return rows


def _options(args: argparse.Namespace):
    from .dose import MethodOptions

    if args.decays < 1:
        raise DeepDoseError(f"--decays must be ≥ 1 (got {args.decays:g}).")
    return MethodOptions(include_photons=getattr(args, "include_photons", False), n_decays=int(args.decays),
                         seed=args.seed, n_batches=args.batches,
                         density_correction=getattr(args, "vsv_density_correction", False),
                         kernel_medium=getattr(args, "kernel_medium", "soft_tissue"),
                         kernel_decays=int(getattr(args, "kernel_decays", 2e6)),
                         kernel_radius_mm=getattr(args, "kernel_radius_mm", 150.0),
                         model_path=str(args.model) if isinstance(getattr(args, "model", None), Path) else None)


def _check_outputs(args: argparse.Namespace, *paths: Optional[Path]) -> None:
    for path in paths:  # fail before computing, not after
        if path is not None and path.exists() and not args.overwrite:
            raise DeepDoseError(f"{path} exists; choose another name or pass --overwrite.")


def _run_dose(args: argparse.Namespace) -> int:
    from .dose import prepare_inputs, run_dose_method
    from .image_io import read_ct, read_pet, write_image
    from .tissue import HUDensityCalibration

    calibration = HUDensityCalibration.from_csv(args.hu_density_table) if args.hu_density_table else None
    ct = read_ct(args.ct)
    pet = read_pet(args.pet, pet_unit=args.pet_unit)
    for note in ct.notes + pet.notes:
        print(note, file=sys.stderr)
    _check_outputs(args, args.out, args.uncertainty, args.organ_table, args.report and args.report / "report.html")
    labels, names = _read_labels(args.labels, args.label_names, args.organ_table)
    options = _options(args)
    options.labels, options.label_names = labels, names
    progress = _Progress(not args.quiet)
    try:
        inputs = prepare_inputs(ct.image, pet.image, density_calibration=calibration,
                                clip_negative=args.clip_negative)
        for note in inputs.notes:
            print(note, file=sys.stderr)
        result = run_dose_method(inputs, args.nuclide, args.method, options, device=args.device, progress=progress)
    finally:
        progress.close()
    for note in result.notes:
        print(note, file=sys.stderr)
    protected = [args.ct, args.pet]
    write_image(result.dose_rate, args.out, overwrite=args.overwrite, protected=protected)
    if args.uncertainty is not None:
        if result.relative_uncertainty is None:
            print(f"note: method {args.method} has no statistical uncertainty; {args.uncertainty} not written",
                  file=sys.stderr)
        else:
            write_image(result.relative_uncertainty, args.uncertainty, overwrite=args.overwrite, protected=protected)
    print(f"dose rate [mGy/h] written to {args.out} ({result.method.upper()}, {result.seconds:.1f} s)",
          file=sys.stderr)
    from .report import ReportInput

    files = [ReportInput("CT", str(args.ct), "HU", ct.notes), ReportInput("PET", str(args.pet), "Bq/mL", pet.notes)]
    files += [ReportInput("labels", str(args.labels), "label values", [str(args.label_names or "no names")])] \
        if labels is not None else []
    _organ_outputs(result.dose_rate, labels, names, inputs.density_g_per_cm3, args.organ_table, args.report,
                   ct_HU=ct.image, nuclide=args.nuclide, method=result.method, include_photons=args.include_photons,
                   inputs=files, notes=inputs.notes + result.notes, focus_label=args.report_focus)
    return 0


def _run_mc(args: argparse.Namespace) -> int:
    import numpy as np
    import SimpleITK as sitk

    from .dose import DoseInputs, check_activity, prepare_inputs, run_dose_method
    from .geometry import check_ct_covers_activity, resample_to_grid
    from .image_io import read_ct, read_image, read_pet, write_image
    from .tissue import density_to_material

    args.method = "mc"
    pet = read_pet(args.activity, pet_unit=args.pet_unit)
    _check_outputs(args, args.out, args.uncertainty)
    options = _options(args)
    from .mc.kernel_engine import parse_target_uncertainty

    options.mc_engine = args.engine
    options.target_uncertainty = parse_target_uncertainty(args.target_uncertainty)
    options.max_decays = int(args.max_decays) if args.max_decays else None
    if args.engine == "torch" and (options.target_uncertainty or options.max_decays):
        raise DeepDoseError("--target-uncertainty and --max-decays need --engine kernel.")
    if args.ct is not None:
        ct = read_ct(args.ct)
        inputs = prepare_inputs(ct.image, pet.image, clip_negative=args.clip_negative)
        protected = [args.ct, args.activity]
    else:
        density_image = read_image(args.density)
        check_ct_covers_activity(density_image, pet.image)
        rho_image = resample_to_grid(density_image, pet.image, default_value=1.0)
        rho = sitk.GetArrayFromImage(rho_image).astype(np.float32)
        activity = sitk.GetArrayFromImage(pet.image).astype(np.float32)
        notes = check_activity(activity, args.clip_negative)
        inputs = DoseInputs(pet.image, activity, np.full(rho.shape, np.nan, np.float32), rho,
                            density_to_material(rho), notes + ["materials assigned from density alone"])
        protected = [args.density, args.activity]
    for note in pet.notes + inputs.notes:
        print(note, file=sys.stderr)
    progress = _Progress(not args.quiet)
    try:
        result = run_dose_method(inputs, args.nuclide, "mc", options, device=args.device, progress=progress)
    finally:
        progress.close()
    for note in result.notes:
        print(note, file=sys.stderr)
    write_image(result.dose_rate, args.out, overwrite=args.overwrite, protected=protected)
    if args.uncertainty is not None:
        write_image(result.relative_uncertainty, args.uncertainty, overwrite=args.overwrite, protected=protected)
    print(f"MC dose rate [mGy/h] written to {args.out} ({result.seconds:.1f} s)", file=sys.stderr)
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    import SimpleITK as sitk

    from .analysis import format_organ_table
    from .demo import make_demo_case, write_demo_case
    from .dose import compute_dose_rate_from_inputs, prepare_inputs
    from .image_io import write_image

    start = time.perf_counter()
    progress = _Progress(not args.quiet)
    try:
        progress(0.0, "building the demo PET/CT")
        case = make_demo_case()
        paths = write_demo_case(case, args.out)
        inputs = prepare_inputs(case.ct, case.pet, clip_negative=args.clip_negative)
        for note in inputs.notes:
            print(note, file=sys.stderr)
        dose = compute_dose_rate_from_inputs(inputs, args.nuclide, args.method, options=_options(args),
                                             device=args.device, progress=progress)
    finally:
        progress.close()
    out = write_image(dose, args.out / "dose_rate.nii.gz", overwrite=True)
    from .report import ReportInput

    files = [ReportInput("CT", str(paths["ct"]), "HU", ["synthetic torso of the DeepDose demo case"]),
             ReportInput("PET", str(paths["pet"]), "Bq/mL", [f"synthetic {case.nuclide} PET of the demo case"]),
             ReportInput("labels", str(paths["labels"]), "label values", [str(paths["label_names"])])]
    rows = _organ_outputs(dose, case.labels, case.label_names, inputs.density_g_per_cm3, None, args.out,
                          ct_HU=case.ct, nuclide=args.nuclide, method=args.method, inputs=files, notes=inputs.notes,
                          include_photons=args.include_photons, title="DeepDose dosimetry report: demo case")
    table = format_organ_table(rows)
    (args.out / "organ_dose_rate.tsv").write_text(table + "\n")
    print(f"Demo case ({case.nuclide} PET/CT, {'x'.join(map(str, case.ct.GetSize()))} voxels of "
          f"{case.ct.GetSpacing()[0]:g} mm) -> {args.method.upper()} dose rate for {args.nuclide} "
          f"in {time.perf_counter() - start:.1f} s")
    print(table)
    print(f"wrote {', '.join(str(p) for p in list(paths.values()) + [out, args.out / 'report.html'])}")
    print(f"max dose rate {sitk.GetArrayViewFromImage(dose).max():.4g} mGy/h")
    return 0


def _run_integrate(args: argparse.Namespace) -> int:
    from .analysis.time_integration_maps import (format_organ_time_table, integrate_maps, integrate_organs,
                                                 write_organ_time_table)
    from .image_io import read_image, write_image

    paths, quantity = (args.dose_rate, "dose_rate") if args.dose_rate else (args.activity, "activity")
    if len(paths) != len(args.time_h):
        raise DeepDoseError(f"{len(paths)} map(s) but {len(args.time_h)} --time-h: give one time per map, in order.")
    if args.effective_half_life_h is not None and args.model != "stp":
        raise DeepDoseError("--effective-half-life-h is used by --model stp only.")
    _check_outputs(args, args.out, args.r_squared_out, args.table)
    labels, names = _read_labels(args.labels, args.label_names, args.table)
    images = [read_image(p) for p in paths]
    options = dict(head=args.head, tail=args.tail, constrain_to_physical=not args.no_physical_bound,
                   effective_half_life_h=args.effective_half_life_h, integrate_from=args.integrate_from)
    progress = _Progress(not args.quiet)
    try:
        result = integrate_maps(images, args.time_h, args.nuclide, args.model, quantity=quantity,
                                names=[str(p) for p in paths], device=args.device, progress=progress, **options)
    finally:
        progress.close()
    for note in result.notes:
        print(note, file=sys.stderr)
    write_image(result.image, args.out, overwrite=args.overwrite, protected=paths)
    if args.r_squared_out is not None:
        write_image(result.r_squared, args.r_squared_out, overwrite=args.overwrite, protected=paths)
    if labels is not None:
        rows = integrate_organs(images, args.time_h, labels, names, args.nuclide, args.model, quantity=quantity,
                                names=[str(p) for p in paths], voxel_map=result, **options)
        print(format_organ_time_table(rows))
        if args.table is not None:
            write_organ_time_table(rows, args.table)
    print(f"{'absorbed dose' if quantity == 'dose_rate' else 'time-integrated activity'} [{result.unit}] written to "
          f"{args.out}", file=sys.stderr)
    return 0


def _run_dataset(args: argparse.Namespace) -> int:
    from .dataset import DatasetConfig, build_dataset

    config = DatasetConfig(args.n, args.tracer, args.spacing_mm, int(args.decays), args.seed, args.val_fraction,
                           args.test_fraction, args.reference_anatomies, args.engine,
                           truncated_fov_fraction=args.truncated_fov_fraction, block_fraction=args.block_fraction,
                           truncated_fov_mm=tuple(args.fov_range_mm))
    summary = build_dataset(args.out, config, device=args.device, progress=not args.quiet)
    seconds = list(summary.seconds.values())
    mean = f"; {sum(seconds) / len(seconds):.1f} s per case" if seconds else ""
    print(f"dataset {args.out}: {len(summary.built)} case(s) built, {len(summary.skipped)} already complete{mean}")
    return 0


def _run_train(args: argparse.Namespace) -> int:
    from .deepdose.commands import run_train

    return run_train(args)


def _run_evaluate(args: argparse.Namespace) -> int:
    from .deepdose.commands import run_evaluate

    return run_evaluate(args)


def _run_nuclides(args: argparse.Namespace) -> int:
    from .nuclides import get_nuclide, list_nuclides

    print("nuclide\thalf_life_h\tcharged_MeV_per_decay\tphoton_MeV_per_decay\tpositrons_per_decay")
    for name in list_nuclides():
        n = get_nuclide(name)
        print(f"{n.name}\t{n.half_life_s / 3600:.4g}\t{n.charged_energy_per_decay_MeV:.4f}\t"
              f"{n.photon_energy_per_decay_MeV:.4f}\t{n.positron_yield:.4f}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``deepdose`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        return {"dose": _run_dose, "demo": _run_demo, "mc": _run_mc, "integrate": _run_integrate,
                "dataset": _run_dataset, "nuclides": _run_nuclides, "train": _run_train,
                "evaluate": _run_evaluate}[args.command](args)
    except DeepDoseError as exc:
        print(f"deepdose: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("deepdose: interrupted; no output written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
