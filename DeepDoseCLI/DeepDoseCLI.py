#!/usr/bin/env python-real
"""DeepDose as a Slicer scripted CLI module (and a plain script).

    python DeepDoseCLI/DeepDoseCLI.py --nuclide Ga68 --method led CT PET DOSE

Slicer runs it out-of-process (GUI progress bar and cancel come from the ``<filter-progress>`` lines
on stdout), in batch mode (``slicer.cli.runSync``), and it runs under any Python with DeepDoseLib.
Parameters mirror ``DeepDoseCLI.xml`` (a test checks that both agree). Exit status 2 = bad input.
"""
from __future__ import annotations

import argparse
import os
import sys


def _bootstrap_path() -> None:
    """Make DeepDoseLib importable from a source tree or a Slicer install (next to the modules)."""
    try:
        import DeepDoseLib  # noqa: F401
        return
    except ImportError:
        pass
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.path.dirname(here)]  # source tree: <repo>/DeepDoseCLI/DeepDoseCLI.py
    # installed extension: lib/Slicer-X.Y/cli-modules/DeepDoseCLI.py beside lib/Slicer-X.Y/qt-scripted-modules
    candidates.append(os.path.join(os.path.dirname(here), "qt-scripted-modules"))
    for path in candidates:
        if os.path.isdir(os.path.join(path, "DeepDoseLib")) and path not in sys.path:
            sys.path.insert(0, path)
            return


def build_parser() -> argparse.ArgumentParser:
    """Argument parser matching DeepDoseCLI.xml (flags, indices, defaults, enumerations)."""
    p = argparse.ArgumentParser(prog="DeepDoseCLI", description="DeepDose dose-rate map (mGy/h) from CT and PET.")
    p.add_argument("ctVolume", help="CT volume file (HU)")
    p.add_argument("petVolume", help="PET volume file (activity, unit from --petUnit)")
    p.add_argument("doseRateVolume", help="output dose-rate volume file (mGy/h)")
    p.add_argument("--nuclide", default="Ga68", choices=["Cu64", "F18", "Ga68", "Ho166", "I123", "I124", "I131",
                                                          "In111", "Lu177", "Re188", "Sm153", "Tb161", "Tc99m",
                                                          "Y90", "Zr89"])
    p.add_argument("--uncertaintyVolume", default=None, help="output: MC relative uncertainty (fraction)")
    p.add_argument("--labelsVolume", default=None, help="input: organ label map (MIRD method)")
    p.add_argument("--modelFile", default=None, help="input: Deep-dose TorchScript model (.pt + .json card)")
    p.add_argument("--method", default="led", choices=["led", "vsv", "vsv_scaled", "mc", "mird", "deepdose"])
    p.add_argument("--petUnit", default="Bq/mL", choices=["Bq/mL", "kBq/mL", "MBq/mL"])
    p.add_argument("--includePhotons", action="store_true")
    p.add_argument("--clipNegative", action="store_true")
    p.add_argument("--decays", type=int, default=10000000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vsvDensityCorrection", action="store_true")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    return p


def _progress(fraction: float, message: str) -> None:
    print(f"<filter-progress>{max(0.0, min(1.0, fraction)):.3f}</filter-progress>", flush=True)
    print(f"<filter-comment>{message}</filter-comment>", flush=True)


def main(argv: list | None = None) -> int:
    args = build_parser().parse_args(argv)
    _bootstrap_path()
    from DeepDoseLib import read_ct, read_pet, write_image
    from DeepDoseLib.dose import MethodOptions, prepare_inputs, run_dose_method
    from DeepDoseLib.errors import DeepDoseError, DeepDoseInputError
    from DeepDoseLib.image_io import IMAGE_SUFFIXES
    from DeepDoseLib.output_paths import Output, check_outputs

    print("<filter-start><filter-name>DeepDose</filter-name>"
          "<filter-comment>dose-rate calculation</filter-comment></filter-start>", flush=True)
    try:
        if args.decays < 1:
            raise DeepDoseInputError(f"decays must be ≥ 1 (got {args.decays}).")
        inputs_read = [args.ctVolume, args.petVolume, args.labelsVolume or None, args.modelFile or None]
        # Slicer hands the CLI fresh temporary output files: overwrite them, never an input; checked before work
        check_outputs([Output("doseRateVolume", args.doseRateVolume, IMAGE_SUFFIXES),
                       Output("uncertaintyVolume", args.uncertaintyVolume or None, IMAGE_SUFFIXES)],
                      inputs_read, overwrite=True)
        ct = read_ct(args.ctVolume)
        pet = read_pet(args.petVolume, pet_unit=args.petUnit)
        for note in ct.notes + pet.notes:
            print(note, flush=True)
        inputs = prepare_inputs(ct.image, pet.image, clip_negative=args.clipNegative)
        for note in inputs.notes:
            print(note, flush=True)
        options = MethodOptions(include_photons=args.includePhotons, n_decays=args.decays, seed=args.seed,
                                density_correction=args.vsvDensityCorrection, model_path=args.modelFile or None)
        if args.labelsVolume:
            from DeepDoseLib.image_io import read_image

            from DeepDoseLib.cli_checks import check_labels

            options.labels = read_image(args.labelsVolume)
            for note in check_labels(options.labels, pet.image, what="labelsVolume"):
                print(note, flush=True)
        result = run_dose_method(inputs, args.nuclide, args.method, options, device=args.device, progress=_progress)
        for note in result.notes:
            print(note, flush=True)
        # Slicer hands the CLI fresh temporary output files: overwrite them, never an input.
        protected = [p for p in inputs_read if p]
        write_image(result.dose_rate, args.doseRateVolume, overwrite=True, protected=protected)
        if args.uncertaintyVolume:
            if result.relative_uncertainty is None:
                print(f"{args.method} has no statistical uncertainty: uncertaintyVolume left empty", flush=True)
            else:
                write_image(result.relative_uncertainty, args.uncertaintyVolume, overwrite=True, protected=protected)
    except DeepDoseError as exc:
        print(f"DeepDose error: {exc}", file=sys.stderr, flush=True)
        return 2
    print("<filter-end><filter-name>DeepDose</filter-name></filter-end>", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
