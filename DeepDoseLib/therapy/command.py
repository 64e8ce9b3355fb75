"""``deepdose therapy``: absorbed dose [Gy], BED, EQD2 and their uncertainty from several SPECT/CT or PET/CT
time points (a thin layer over :func:`DeepDoseLib.therapy.study.run_therapy_study`).

    deepdose therapy --timepoint CT PET HOURS [--timepoint CT PET HOURS ...] --nuclide Lu177
                     [--method deepdose] [--fit auto|mono|bi|bi-washout|trapezoid]
                     [--labels L --label-names N.json] [--reference K] --out DIR

HOURS is the scan time after administration, or ``dicom`` to read it from the PET/SPECT DICOM folder
(acquisition date/time; administration from the header or ``--administration-time``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..errors import DeepDoseError
from .kinetics import FIT_CHOICES


def add_therapy_parser(sub) -> argparse.ArgumentParser:
    """Register the ``therapy`` subcommand on an argparse subparsers object."""
    from ..cli_options import add_method_options
    from ..dose_methods import method_names, registered_methods

    p = sub.add_parser("therapy", help="therapy dosimetry: absorbed dose [Gy], BED, EQD2 and uncertainty from "
                       "several time points")
    p.add_argument("--timepoint", nargs=3, action="append", required=True, metavar=("CT", "PET", "HOURS"),
                   help="one scan: CT [HU], PET/SPECT (file or DICOM folder) and its time [h after administration] "
                        "or 'dicom'; repeat per time point")
    p.add_argument("--nuclide", required=True, help="radionuclide, e.g. Lu177")
    p.add_argument("--method", default="deepdose", choices=method_names(), help="dose-rate method (default deepdose)")
    p.add_argument("--fit", default="auto", choices=FIT_CHOICES,
                   help="time integration: auto (AICc per structure and voxel), mono, bi (uptake-washout), "
                        "bi-washout, trapezoid")
    p.add_argument("--labels", type=Path, help="structures in the reference frame (label map, any grid)")
    p.add_argument("--label-names", type=Path, help='JSON {"1": "kidney_left", ...} naming the labels')
    p.add_argument("--timepoint-labels", type=Path, action="append", metavar="L",
                   help="optional: each time point's own label map (same values as --labels), in the order of the "
                        "time points; gives the organ-mask Dice of the registration")
    p.add_argument("--reference", type=int, default=1, metavar="K",
                   help="time point whose CT is the reference frame (1 = first given, the default)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--pet-unit", default="Bq/mL", choices=["Bq/mL", "kBq/mL", "MBq/mL", "counts"],
                   help="unit of non-DICOM activity files; 'counts' needs --calibration-cps-per-MBq and "
                        "--frame-duration-s")
    p.add_argument("--calibration-cps-per-MBq", type=float, help="SPECT calibration factor [counts/s per MBq]")
    p.add_argument("--frame-duration-s", type=float, action="append",
                   help="acquisition duration [s] of count images: once for all, or once per time point")
    p.add_argument("--administration-time", help="ISO 8601 administration time for HOURS = dicom")
    p.add_argument("--calibration-uncertainty", type=float,
                   help="relative standard uncertainty of the calibration (e.g. 0.05)")
    p.add_argument("--timepoint-uncertainty", type=float,
                   help="relative standard uncertainty of each time point's structure mean (default: from the fit "
                        "residuals)")
    p.add_argument("--segmentation-uncertainty-mm", type=float,
                   help="boundary uncertainty of the segmentation [mm] (default half a label voxel)")
    p.add_argument("--method-uncertainty", type=float, help="relative uncertainty of the dose method (default: "
                   "MC statistics, or the method's validated bound)")
    p.add_argument("--radiobiology", type=Path, help='JSON {"kidney": {"alpha_beta_Gy": 2.6, '
                   '"repair_half_time_h": 2.8}, ...} (structure or class names) overriding the defaults')
    p.add_argument("--recovery-curve", type=Path, help="sphere recovery coefficients (JSON volume_mL/recovery or TSV)")
    p.add_argument("--recovery-for", action="append", default=[], metavar="STRUCTURE",
                   help="apply the recovery correction to this structure's mean (repeat)")
    p.add_argument("--population-half-life-h", type=float,
                   help="one time point: population effective half-life [h] (default: Hänscheid, T_eff = scan time)")
    p.add_argument("--no-registration", action="store_true", help="assume the scans are aligned (no registration)")
    p.add_argument("--deformable", action="store_true", help="B-spline registration after the rigid one")
    p.add_argument("--bspline-spacing-mm", type=float, default=60.0, help="B-spline control-point spacing [mm]")
    add_method_options(p, registered_methods())  # --model, --decays (per time point), --seed (MC and registration)...
    p.add_argument("--clip-negative", action="store_true", help="set negative activity voxels to 0")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs in DIR (never an input)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _json(path, what: str):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DeepDoseError(f"{what} {path}: {exc}")


def run_therapy(args: argparse.Namespace) -> int:
    """Run the ``therapy`` subcommand (exit status 0; errors raise :class:`DeepDoseError`)."""
    import SimpleITK as sitk

    from ..cli_options import options_from_args
    from ..progress import TqdmProgress
    from ..study import read_label_names
    from ..image_io import read_ct, read_image, read_pet
    from .acquisition_time import hours_after_administration
    from .outputs import write_therapy_outputs
    from .recovery import load_recovery_curve
    from .registration import RegistrationSettings
    from .study import TherapyOptions, TimePoint, run_therapy_study

    start = time.perf_counter()
    n = len(args.timepoint)
    durations = args.frame_duration_s or []
    if durations and len(durations) not in (1, n):
        raise DeepDoseError(f"--frame-duration-s: give one value or one per time point ({n}), not {len(durations)}.")
    if args.population_half_life_h is not None and n != 1:
        raise DeepDoseError("--population-half-life-h is for a single time point.")
    if not 1 <= args.reference <= n:
        raise DeepDoseError(f"--reference {args.reference}: choose 1 to {n}.")
    out = args.out
    if (out / "absorbed_dose_Gy.nii.gz").exists() and not args.overwrite:
        raise DeepDoseError(f"{out} already holds a therapy study; choose another folder or pass --overwrite.")
    if args.label_names is not None and args.labels is None:
        raise DeepDoseError("--label-names needs --labels LABELS.")
    labels = read_image(args.labels) if args.labels is not None else None
    names = read_label_names(args.label_names) if labels is not None else None
    own_labels = args.timepoint_labels or []
    if own_labels and (len(own_labels) != n or labels is None):
        raise DeepDoseError(f"--timepoint-labels: give one per time point ({n}, got {len(own_labels)}) together "
                            "with --labels.")
    points, inputs, protected = [], [], []
    for k, (ct_path, pet_path, hours) in enumerate(args.timepoint):
        ct = read_ct(Path(ct_path))
        unit = "counts" if args.pet_unit == "counts" else args.pet_unit
        pet = read_pet(Path(pet_path), pet_unit="Bq/mL" if unit == "counts" else unit)
        if hours.lower() == "dicom":
            if not Path(pet_path).is_dir():
                raise DeepDoseError(f"HOURS = dicom needs a DICOM folder for the PET/SPECT ({pet_path}).")
            time_h = hours_after_administration(pet_path, args.administration_time)
        else:
            try:
                time_h = float(hours)
            except ValueError:
                raise DeepDoseError(f"--timepoint {ct_path} {pet_path} {hours}: HOURS must be a number of hours "
                                    "after administration or 'dicom'.")
        duration = durations[0] if len(durations) == 1 else (durations[k] if durations else None)
        points.append(TimePoint(ct.image, pet.image, time_h, f"time point {k + 1} ({time_h:g} h)",
                                "counts" if unit == "counts" else "Bq/mL", duration,
                                read_image(own_labels[k]) if own_labels else None))
        for note in ct.notes + pet.notes:
            print(f"time point {k + 1}: {note}", file=sys.stderr)
        inputs += [{"role": f"CT {k + 1}", "path": str(ct_path), "unit": "HU"},
                   {"role": f"PET/SPECT {k + 1} ({time_h:g} h)", "path": str(pet_path),
                    "unit": "counts" if unit == "counts" else "Bq/mL"}]
        protected += [Path(ct_path), Path(pet_path)] + ([own_labels[k]] if own_labels else [])
    if args.labels is not None:
        inputs.append({"role": "labels", "path": str(args.labels), "unit": str(args.label_names or "no names")})
        protected.append(args.labels)
    recovery = load_recovery_curve(args.recovery_curve) if args.recovery_curve else None
    if args.recovery_for and recovery is None:
        raise DeepDoseError("--recovery-for needs --recovery-curve.")
    unknown = set(args.recovery_for) - set((names or {}).values())
    if unknown:
        raise DeepDoseError(f"--recovery-for: no structure named {', '.join(sorted(unknown))} in --label-names.")
    options = TherapyOptions(
        nuclide=args.nuclide, method=args.method, fit=args.fit, reference_index=args.reference - 1,
        register=not args.no_registration,
        registration=RegistrationSettings(deformable=args.deformable, seed=args.seed,
                                          bspline_spacing_mm=args.bspline_spacing_mm),
        method_options=options_from_args(args, args.method),
        calibration_cps_per_MBq=args.calibration_cps_per_MBq,
        calibration_relative_uncertainty=args.calibration_uncertainty,
        timepoint_relative_uncertainty=args.timepoint_uncertainty,
        segmentation_boundary_mm=args.segmentation_uncertainty_mm, method_relative_uncertainty=args.method_uncertainty,
        radiobiology=_json(args.radiobiology, "--radiobiology") if args.radiobiology else {},
        recovery=recovery, recovery_structures=tuple(args.recovery_for), device=args.device,
        clip_negative=args.clip_negative, population_half_life_h=args.population_half_life_h)
    progress = TqdmProgress(not args.quiet)
    try:
        result = run_therapy_study(points, options, labels=labels, label_names=names, progress=progress)
    finally:
        progress.close()
    for note in result.notes:
        print(note, file=sys.stderr)
    paths = write_therapy_outputs(result, out, overwrite=args.overwrite, protected=protected, report_inputs=inputs)
    print("structure\tmass_g\tmean_Gy\tu_mean_Gy\tbed_Gy\teqd2_Gy\tfit")
    for s in result.structures:
        print(f"{s.name}\t{s.mass_g:.4g}\t{s.mean_Gy:.4g}\t{s.u_mean_Gy:.2g}\t{s.bed_Gy:.4g}\t{s.eqd2_Gy:.4g}\t"
              f"{s.dose_rate_fit.model}")
    dose_max = float(sitk.GetArrayViewFromImage(result.absorbed_dose_Gy).max())
    print(f"therapy study: {n} time point(s), {args.method}, maximum absorbed dose {dose_max:.4g} Gy; wrote "
          f"{len(paths)} files to {out} (report {paths.get('report')}) in {time.perf_counter() - start:.1f} s",
          file=sys.stderr)
    return 0
