"""The ``deepdose`` command: a thin layer over :mod:`DeepDoseLib` (argparse subcommands).

    deepdose demo [--out DIR]
    deepdose dose --ct CT --pet PET --nuclide Ga68 --method led --out DOSE.nii.gz
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
    _add_dose_options(dose)

    demo = sub.add_parser("demo", help="run the embedded demo PET/CT case end to end")
    demo.add_argument("--out", type=Path, default=Path("deepdose_demo"), help="output folder (default ./deepdose_demo)")
    _add_dose_options(demo)

    sub.add_parser("nuclides", help="list the radionuclides and their emitted energies")
    return parser


def _run_dose(args: argparse.Namespace) -> int:
    from .dose import compute_dose_rate
    from .image_io import read_ct, read_pet, write_image
    from .tissue import HUDensityCalibration

    calibration = HUDensityCalibration.from_csv(args.hu_density_table) if args.hu_density_table else None
    ct = read_ct(args.ct)
    pet = read_pet(args.pet, pet_unit=args.pet_unit)
    for note in ct.notes + pet.notes:
        print(note, file=sys.stderr)
    if args.out.exists() and not args.overwrite:  # fail before computing, not after
        raise DeepDoseError(f"{args.out} exists; choose another name or pass --overwrite.")
    progress = _Progress(not args.quiet)
    try:
        dose = compute_dose_rate(ct.image, pet.image, args.nuclide, args.method, include_photons=args.include_photons,
                                 clip_negative=args.clip_negative, density_calibration=calibration,
                                 device=args.device, progress=progress)
    finally:
        progress.close()
    write_image(dose, args.out, overwrite=args.overwrite, protected=[args.ct, args.pet])
    print(f"dose rate [mGy/h] written to {args.out}", file=sys.stderr)
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    import SimpleITK as sitk

    from .analysis import format_organ_table, organ_statistics
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
        dose = compute_dose_rate_from_inputs(inputs, args.nuclide, args.method, include_photons=args.include_photons,
                                             device=args.device, progress=progress)
    finally:
        progress.close()
    out = write_image(dose, args.out / "dose_rate.nii.gz", overwrite=True)
    table = format_organ_table(organ_statistics(dose, case.labels, case.label_names, inputs.density_g_per_cm3))
    (args.out / "organ_dose_rate.tsv").write_text(table + "\n")
    print(f"Demo case ({case.nuclide} PET/CT, {'x'.join(map(str, case.ct.GetSize()))} voxels of "
          f"{case.ct.GetSpacing()[0]:g} mm) -> {args.method.upper()} dose rate for {args.nuclide} "
          f"in {time.perf_counter() - start:.1f} s")
    print(table)
    print(f"wrote {', '.join(str(p) for p in list(paths.values()) + [out])}")
    print(f"max dose rate {sitk.GetArrayViewFromImage(dose).max():.4g} mGy/h")
    return 0


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
        return {"dose": _run_dose, "demo": _run_demo, "nuclides": _run_nuclides}[args.command](args)
    except DeepDoseError as exc:
        print(f"deepdose: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("deepdose: interrupted; no output written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
