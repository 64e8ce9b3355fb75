"""The ``deepdose`` command: a thin layer over :mod:`DeepDoseLib` (argparse subcommands).

    deepdose demo [--out DIR]
    deepdose dose --ct CT --pet PET --nuclide Ga68 --method led --out DOSE.nii.gz [--labels L --report DIR]
    deepdose integrate --dose-rate T1 --time-h 4 --dose-rate T2 --time-h 24 --nuclide Lu177 --out DOSE_Gy.nii.gz
    deepdose dataset --n 20 --tracer Ga68-PSMA-11 --out DIR [--spacing-mm 4] [--decays 2e7] [--seed 0]
                     [--truncated-fov-fraction F] [--block-fraction F] [--uptake tracer|wide] [--scheduler ADDRESS | --workers N]
    deepdose therapy --timepoint CT PET HOURS [--timepoint CT PET HOURS ...] --nuclide Lu177 --out DIR
    deepdose batch MANIFEST.csv --out DIR [--scheduler ADDRESS | --workers N] [--method M]
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
from . import cli_checks
from .cli_options import add_method_options, options_from_args
from .errors import Cancelled, DeepDoseError
from .progress import TqdmProgress


def _add_dose_options(p: argparse.ArgumentParser, default_method: str = "led") -> None:
    from .dose_methods import method_names, registered_methods

    p.add_argument("--nuclide", default="Ga68", help="radionuclide, e.g. Ga68, Lu177, F18 (see `deepdose nuclides`)")
    p.add_argument("--method", default=default_method, choices=method_names(),
                   help="dose method: " + "; ".join(f"{m.name}: {m.title}" for m in registered_methods()))
    p.add_argument("--clip-negative", action="store_true", help="set negative PET voxels to 0 instead of failing")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    add_method_options(p, registered_methods())
    p.add_argument("--hu-density-table", type=Path,
                   help="CSV 'hu,density_g_per_cm3' replacing the Schneider 2000 calibration")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--yes", action="store_true", help="MC: start a run expected to last over an hour without asking")


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
    dose.add_argument("--fallback-mask", type=Path, metavar="PATH",
                      help="deepdose: also write the mask (uint8, 1 = fell back) of the voxels where Deep-dose "
                           "returned its density-scaled VSV baseline")
    _add_label_options(dose, "--organ-table", "organ statistics table (.tsv or .csv; needs --labels)")
    dose.add_argument("--report", type=Path, metavar="DIR", help="write a self-contained HTML report to DIR/report.html")
    dose.add_argument("--report-focus", type=int, metavar="LABEL",
                      help="centre the report's slices on this label instead of the maximum")
    _add_dose_options(dose)

    demo = sub.add_parser("demo", help="run the embedded demo PET/CT case end to end")
    demo.add_argument("--out", type=Path, default=Path("deepdose_demo"), help="output folder (default ./deepdose_demo)")
    _add_dose_options(demo)
    # The demo shows the headline method beside vsv_scaled in under half a minute on two cores: one network pass
    # (no mirrored passes, so no uncertainty map); the bound and the out-of-range fallback stay on. `deepdose dose`
    # runs the default one mirrored pass more; `deepdose demo --deepdose-flips 1` shows it here.
    demo.set_defaults(method="deepdose", flips=0)

    mc = sub.add_parser("mc", help="Monte Carlo reference dose rate [mGy/h] with its uncertainty")
    source = mc.add_mutually_exclusive_group(required=True)
    source.add_argument("--ct", type=Path, help="CT in HU (file or DICOM folder): density and materials")
    source.add_argument("--density", type=Path, help="mass-density map in g/cm³ (materials from density)")
    mc.add_argument("--activity", "--pet", dest="activity", required=True, type=Path,
                    help="activity map: file (unit from --pet-unit) or PET DICOM folder")
    mc.add_argument("--pet-unit", default="Bq/mL", choices=["Bq/mL", "kBq/mL", "MBq/mL"])
    mc.add_argument("--nuclide", required=True, help="radionuclide, e.g. Ga68, Lu177")
    from .dose_methods import get_method

    add_method_options(mc, [get_method("mc")], required=("decays",))
    mc.add_argument("--device", default="auto", help="auto, cpu or cuda")
    mc.add_argument("--clip-negative", action="store_true", help="set negative activity voxels to 0")
    mc.add_argument("--out", required=True, type=Path, help="dose-rate image [mGy/h]")
    mc.add_argument("--uncertainty", type=Path, help="relative standard uncertainty image (fraction)")
    mc.add_argument("--overwrite", action="store_true")
    mc.add_argument("--quiet", action="store_true")
    mc.add_argument("--yes", action="store_true", help="start a run expected to last over an hour without asking")

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
    data.add_argument("--uptake", choices=["tracer", "wide"], default="tracer",
                      help="activity of the torso cases: tracer (the tracer's organ table, default) or wide (table-free "
                           "training generator: organ levels over 3 decades, inactive lung/bone/bowel in half the "
                           "cases, lesions 1-100x, PET- or SPECT-like blur and noise)")
    data.add_argument("--engine", choices=["mc", "led"], default="mc",
                      help="ground truth: mc (default); led is a fast stand-in for testing pipelines only")
    data.add_argument("--device", default="auto", help="auto, cpu or cuda")
    data.add_argument("--quiet", action="store_true", help="no progress bar")
    from .cohort.cli import add_batch_parser, add_cluster_options

    add_cluster_options(data)  # --scheduler / --workers: each case's ground truth as a Dask task
    add_batch_parser(sub)

    from .deepdose.commands import add_evaluate_parser, add_train_parser

    add_train_parser(sub)
    add_evaluate_parser(sub)
    from .therapy.command import add_therapy_parser

    add_therapy_parser(sub)
    sub.add_parser("nuclides", help="list the radionuclides and their emitted energies")
    return parser


def _add_label_options(p: argparse.ArgumentParser, table_flag: str, table_help: str) -> None:
    p.add_argument("--labels", type=Path, help="label map (organs/structures; any grid: partial-volume fractions)")
    p.add_argument("--label-names", type=Path, help='JSON {"1": "liver", ...} naming the labels')
    p.add_argument(table_flag, type=Path, help=table_help)


def _read_labels(labels: Optional[Path], names: Optional[Path], *needing: Optional[Path]):
    """(label image, {label: name}) or (None, None); options that need --labels are refused without it."""
    from .image_io import read_image
    from .study import read_label_names

    if labels is None:
        if names is not None or any(p is not None for p in needing):
            raise DeepDoseError("--label-names and the organ table need --labels LABELS.")
        return None, None
    return read_image(labels), read_label_names(names)


def _print_notes(notes) -> None:
    for note in notes:
        print(note, file=sys.stderr)


def _run_dose(args: argparse.Namespace) -> int:
    from .study import StudyOutputs, read_study_files, run_study, write_study_outputs

    options = options_from_args(args, args.method)
    cli_checks.check_dose_args(args)  # every argument and output path, before any work
    inputs_read = [args.ct, args.pet, args.labels, args.label_names, args.hu_density_table]
    outputs = StudyOutputs(args.out, args.uncertainty, args.organ_table, report_dir=args.report,
                           fallback_mask=args.fallback_mask,
                           overwrite=args.overwrite, protected=[p for p in inputs_read if p is not None]
                           + cli_checks.model_inputs(getattr(args, "model_path", None)))
    request = read_study_files(args.ct, args.pet, args.nuclide, pet_unit=args.pet_unit, labels=args.labels,
                               label_names=args.label_names, hu_density_table=args.hu_density_table,
                               method=args.method, options=options, clip_negative=args.clip_negative,
                               device=args.device)
    outputs.check(args.labels is not None)
    if args.report_focus is not None and int(args.report_focus) not in cli_checks.labels_present(request.labels):
        raise DeepDoseError(f"--report-focus {args.report_focus}: the label map has no label {args.report_focus}.")
    _print_notes(request.notes)
    progress = TqdmProgress(not args.quiet)
    try:
        result = run_study(request, progress=progress, before_method=_mc_time_check(args, options))
    finally:
        progress.close()
    _print_notes(result.inputs.notes + result.dose.notes)
    if args.uncertainty is not None and result.dose.relative_uncertainty is None:
        from .study import missing_uncertainty_note

        print(f"note: {missing_uncertainty_note(args.method, args.uncertainty)}", file=sys.stderr)
    if args.fallback_mask is not None and result.dose.fallback is None:
        print(f"note: method {args.method} has no fallback to a physics baseline; {args.fallback_mask} not written",
              file=sys.stderr)
    write_study_outputs(result, outputs, report_focus=args.report_focus)
    print(f"dose rate [mGy/h] written to {args.out} ({result.dose.method.upper()}, {result.dose.seconds:.1f} s)",
          file=sys.stderr)
    if args.organ_table is not None:
        print(f"organ table written to {args.organ_table}", file=sys.stderr)
    if args.report is not None:
        print(f"report written to {args.report / 'report.html'}", file=sys.stderr)
    return 0


def _mc_time_check(args: argparse.Namespace, options):
    """For the Monte Carlo method: estimate the run time from a short run, and refuse over an hour without --yes."""
    if args.method != "mc":
        return None
    return lambda inputs: cli_checks.confirm_mc_run_time(inputs, args.nuclide, options.n_decays, seed=options.seed,
                                                         device=args.device, yes=args.yes)


def _run_mc(args: argparse.Namespace) -> int:
    import numpy as np
    import SimpleITK as sitk

    from .dose import run_dose_method
    from .geometry import check_ct_covers_activity, resample_to_grid
    from .image_io import read_ct, read_image, read_pet, write_image
    from .inputs import DoseInputs, check_activity, prepare_inputs
    from .tissue import density_to_material

    args.method = "mc"
    options = options_from_args(args, "mc")
    cli_checks.check_mc_args(args)  # every argument and output path, before any work
    pet = read_pet(args.activity, pet_unit=args.pet_unit)
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
    _print_notes(pet.notes + inputs.notes)
    _mc_time_check(args, options)(inputs)
    progress = TqdmProgress(not args.quiet)
    try:
        result = run_dose_method(inputs, args.nuclide, "mc", options, device=args.device, progress=progress)
    finally:
        progress.close()
    _print_notes(result.notes)
    write_image(result.dose_rate, args.out, overwrite=args.overwrite, protected=protected)
    if args.uncertainty is not None:
        write_image(result.relative_uncertainty, args.uncertainty, overwrite=args.overwrite, protected=protected)
    print(f"MC dose rate [mGy/h] written to {args.out} ({result.seconds:.1f} s)", file=sys.stderr)
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    import SimpleITK as sitk

    from .analysis import format_organ_table
    from .demo import compare_with_reference, make_demo_case, write_demo_case
    from .dose_methods import get_method
    from .output_paths import atomic_write_text
    from .study import InputSource, StudyOutputs, StudyRequest, run_study, write_study_outputs

    start = time.perf_counter()
    options = options_from_args(args, args.method)
    cli_checks.check_demo_args(args)
    progress = TqdmProgress(not args.quiet)
    try:
        progress(0.0, "building the demo PET/CT")
        case = make_demo_case()
        paths = write_demo_case(case, args.out)
        sources = [InputSource("CT", str(paths["ct"]), "HU", ["synthetic torso of the DeepDose demo case"]),
                   InputSource("PET", str(paths["pet"]), "Bq/mL", [f"synthetic {case.nuclide} PET of the demo case"]),
                   InputSource("labels", str(paths["labels"]), "label values", [str(paths["label_names"])])]
        request = StudyRequest(case.ct, case.pet, args.nuclide, args.method, options, labels=case.labels,
                               label_names=case.label_names, clip_negative=args.clip_negative, device=args.device,
                               sources=sources)
        result = run_study(request, progress=progress)
    finally:
        progress.close()
    _print_notes(result.inputs.notes)
    out = args.out / "dose_rate.nii.gz"
    write_study_outputs(result, StudyOutputs(out, report_dir=args.out, overwrite=True),
                        report_title="DeepDose dosimetry report: demo case")
    atomic_write_text(args.out / "organ_dose_rate.tsv", format_organ_table(result.organ_rows) + "\n")
    table = compare_with_reference(result.inputs, case, args.nuclide, args.method, result.organ_rows,
                                   device=args.device, model_path=getattr(options, "model_path", None))
    print(f"Demo case ({case.nuclide} PET/CT, {'x'.join(map(str, case.ct.GetSize()))} voxels of "
          f"{case.ct.GetSpacing()[0]:g} mm) -> {get_method(args.method).label} dose rate for {args.nuclide} "
          f"in {time.perf_counter() - start:.1f} s")
    print(table)
    print(f"wrote {', '.join(str(p) for p in list(paths.values()) + [out, args.out / 'report.html'])}")
    print(f"max dose rate {sitk.GetArrayViewFromImage(result.dose.dose_rate).max():.4g} mGy/h")
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
    cli_checks.check_integrate_args(args)  # every argument and output path, before any work
    labels, names = _read_labels(args.labels, args.label_names, args.table)
    images = [read_image(p) for p in paths]
    _print_notes(cli_checks.check_labels(labels, images[0], names=names) if labels is not None else [])
    options = dict(head=args.head, tail=args.tail, constrain_to_physical=not args.no_physical_bound,
                   effective_half_life_h=args.effective_half_life_h, integrate_from=args.integrate_from)
    progress = TqdmProgress(not args.quiet)
    try:
        result = integrate_maps(images, args.time_h, args.nuclide, args.model, quantity=quantity,
                                names=[str(p) for p in paths], device=args.device, progress=progress, **options)
    finally:
        progress.close()
    for note in result.notes:
        print(note, file=sys.stderr)
    protected = list(paths) + [p for p in (args.labels, args.label_names) if p is not None]
    write_image(result.image, args.out, overwrite=args.overwrite, protected=protected)
    if args.r_squared_out is not None:
        write_image(result.r_squared, args.r_squared_out, overwrite=args.overwrite, protected=protected)
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

    cli_checks.check_dataset_args(args)
    config = DatasetConfig(args.n, args.tracer, args.spacing_mm, int(args.decays), args.seed, args.val_fraction,
                           args.test_fraction, args.reference_anatomies, args.engine,
                           truncated_fov_fraction=args.truncated_fov_fraction, block_fraction=args.block_fraction,
                           truncated_fov_mm=tuple(args.fov_range_mm), uptake=args.uptake)
    summary = build_dataset(args.out, config, device=args.device, progress=not args.quiet,
                            scheduler=args.scheduler, n_workers=args.workers)
    seconds = list(summary.seconds.values())
    mean = f"; {sum(seconds) / len(seconds):.1f} s per case" if seconds else ""
    print(f"dataset {args.out}: {len(summary.built)} case(s) built, {len(summary.skipped)} already complete{mean}")
    return 0


def _run_batch(args: argparse.Namespace) -> int:
    from .cohort.cli import run_batch

    return run_batch(args)


def _run_train(args: argparse.Namespace) -> int:
    from .deepdose.commands import run_train

    cli_checks.check_train_args(args)
    return run_train(args)


def _run_evaluate(args: argparse.Namespace) -> int:
    from .deepdose.commands import run_evaluate

    cli_checks.check_evaluate_args(args)
    return run_evaluate(args)


def _run_therapy(args: argparse.Namespace) -> int:
    from .therapy.command import run_therapy

    return run_therapy(args)


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
                "evaluate": _run_evaluate, "therapy": _run_therapy, "batch": _run_batch}[args.command](args)
    except DeepDoseError as exc:
        print(f"deepdose: error: {exc}", file=sys.stderr)
        return 2
    except Cancelled as exc:
        print(f"deepdose: {exc} No output written.", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("deepdose: interrupted; no output written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
