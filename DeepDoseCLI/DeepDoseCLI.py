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
    """Argument parser matching DeepDoseCLI.xml; the method and its options come from the dose-method registry,
    as does the XML's generated group (a test checks that both agree)."""
    _bootstrap_path()
    from DeepDoseLib import list_nuclides
    from DeepDoseLib.slicer_cli_xml import DEFAULT_METHOD
    from DeepDoseLib.dose_methods import declared_options, method_names

    p = argparse.ArgumentParser(prog="DeepDoseCLI", description="DeepDose dose-rate map (mGy/h) from CT and PET.")
    p.add_argument("ctVolume", help="CT volume file (HU)")
    p.add_argument("petVolume", help="PET volume file (activity, unit from --petUnit)")
    p.add_argument("doseRateVolume", help="output dose-rate volume file (mGy/h)")
    p.add_argument("--labelsVolume", default=None, help="input: organ label map (MIRD method)")
    p.add_argument("--uncertaintyVolume", default=None, help="output: MC relative uncertainty (fraction)")
    p.add_argument("--fallbackVolume", default=None,
                   help="output: Deep-dose fallback mask (1 = the density-scaled VSV baseline was returned)")
    p.add_argument("--nuclide", default="Ga68", choices=list_nuclides())
    p.add_argument("--petUnit", default="Bq/mL", choices=["Bq/mL", "kBq/mL", "MBq/mL"])
    p.add_argument("--clipNegative", action="store_true")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--method", default=DEFAULT_METHOD, choices=method_names())
    for spec, _users in declared_options(key="slicer_name"):
        flag = "--" + spec.slicer_name
        if spec.type is bool:
            p.add_argument(flag, dest=spec.slicer_name, action="store_true", help=spec.help.replace("%", "%%"))
        else:
            kind = str if spec.is_path or spec.type is str or spec.percent else spec.type
            p.add_argument(flag, dest=spec.slicer_name, type=kind, default=spec.default, choices=spec.choices,
                           help=spec.help.replace("%", "%%"))
    return p


def method_options(args: argparse.Namespace):
    """The options of ``args.method`` from the parsed flags (named as in the XML)."""
    from DeepDoseLib.dose_methods import get_method

    method = get_method(args.method)
    values = {spec.name: getattr(args, spec.slicer_name) for spec in method.specs()}
    if "model_path" in values:
        values["model_path"] = values["model_path"] or None  # Slicer passes "" for an empty file parameter
    return method.options(**values)


def _progress(fraction: float, message: str) -> None:
    print(f"<filter-progress>{max(0.0, min(1.0, fraction)):.3f}</filter-progress>", flush=True)
    print(f"<filter-comment>{message}</filter-comment>", flush=True)


def main(argv: list | None = None) -> int:
    args = build_parser().parse_args(argv)
    from DeepDoseLib.errors import Cancelled, DeepDoseError
    from DeepDoseLib.study import StudyOutputs, read_study_files, run_study, write_study_outputs

    print("<filter-start><filter-name>DeepDose</filter-name>"
          "<filter-comment>dose-rate calculation</filter-comment></filter-start>", flush=True)
    try:
        options = method_options(args)
        # Slicer hands the CLI fresh temporary output files: overwrite them, never an input; checked before work
        inputs_read = [args.ctVolume, args.petVolume, args.labelsVolume, getattr(options, "model_path", None)]
        outputs = StudyOutputs(args.doseRateVolume, args.uncertaintyVolume or None, overwrite=True,
                               fallback_mask=args.fallbackVolume or None,
                               protected=[p for p in inputs_read if p],
                               flags=dict(dose_rate="doseRateVolume", uncertainty="uncertaintyVolume",
                                          organ_table="", dvh_table="", report_dir="",
                                          fallback_mask="fallbackVolume"))
        outputs.check(has_labels=bool(args.labelsVolume))
        request = read_study_files(args.ctVolume, args.petVolume, args.nuclide, pet_unit=args.petUnit,
                                   labels=args.labelsVolume or None, method=args.method, options=options,
                                   clip_negative=args.clipNegative, device=args.device)
        result = run_study(request, progress=_progress)
        for note in result.notes:
            print(note, flush=True)
        if args.uncertaintyVolume and result.dose.relative_uncertainty is None:
            print(f"{args.method} has no statistical uncertainty: uncertaintyVolume left empty", flush=True)
        if args.fallbackVolume and result.dose.fallback is None:
            print(f"{args.method} has no fallback to a physics baseline: fallbackVolume left empty", flush=True)
        write_study_outputs(result, outputs)
    except DeepDoseError as exc:
        print(f"DeepDose error: {exc}", file=sys.stderr, flush=True)
        return 2
    except Cancelled as exc:
        print(f"DeepDose: {exc}", file=sys.stderr, flush=True)
        return 130
    print("<filter-end><filter-name>DeepDose</filter-name></filter-end>", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
