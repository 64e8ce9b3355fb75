#!/usr/bin/env python
"""Batch dosimetry of a folder of studies: one dose-rate map, organ table, DVH and Slicer scene per study.

Layout of the input folder (one sub-folder per study)::

    STUDIES/<study>/ct.nii.gz (or ct.nrrd, ct.mha, or a DICOM folder ct/)       CT in HU
    STUDIES/<study>/pet.nii.gz (or pet.nrrd, pet.mha, or a DICOM folder pet/)   PET (unit: --pet-unit; DICOM: its tags)
    STUDIES/<study>/labels.nii.gz + labels.json (optional)                      organs {"1": "liver", ...}

Outputs in OUT/<study>/: ``dose_rate_mGy_per_h.nrrd`` (PET grid), ``uncertainty.nrrd`` (Monte Carlo),
``organs.tsv`` and ``dvh.tsv`` (with labels), and ``<study>.mrb``: a Slicer scene with the CT, PET,
dose wash + colour legend, isodose lines, organ DVH tables/chart and statistics (when Slicer's MRML
is available: inside Slicer, or with ``pip install slicer-core``; otherwise the files alone).

Run it with any of::

    python DeepDoseCLI/examples/batch_folder.py STUDIES OUT --nuclide Lu177 --method led
    Slicer --no-main-window --python-script DeepDoseCLI/examples/batch_folder.py STUDIES OUT --nuclide Lu177
    PythonSlicer DeepDoseCLI/examples/batch_folder.py STUDIES OUT --nuclide Lu177

Exit status: 0 every study succeeded, 1 some failed (each failure is reported), 2 bad arguments.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


def _bootstrap_path() -> None:
    """Make DeepDoseLib importable from a source checkout (<repo>/DeepDoseCLI/examples/batch_folder.py)."""
    try:
        import DeepDoseLib  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def build_parser() -> argparse.ArgumentParser:
    _bootstrap_path()
    from DeepDoseLib.cli_options import add_method_options
    from DeepDoseLib.dose_methods import method_names, registered_methods

    p = argparse.ArgumentParser(prog="batch_folder.py", description="DeepDose dosimetry of a folder of studies.")
    p.add_argument("studies", help="folder with one sub-folder per study (ct.*, pet.*, optional labels.*)")
    p.add_argument("out", help="output folder (one sub-folder per study)")
    p.add_argument("--nuclide", default="Ga68", help="radionuclide, e.g. Ga68, Lu177 (default Ga68)")
    p.add_argument("--method", default="led", choices=method_names(), help="dose method (default led)")
    p.add_argument("--pet-unit", default="Bq/mL", choices=["Bq/mL", "kBq/mL", "MBq/mL"],
                   help="unit of non-DICOM PET files (default Bq/mL)")
    p.add_argument("--clip-negative", action="store_true", help="set negative PET voxels to 0")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--isodose", default="10,25,50,75,90", help="isodose levels in %% of the maximum in tissue")
    p.add_argument("--no-scene", action="store_true", help="do not write the Slicer scene (.mrb)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_method_options(p, registered_methods())
    return p


def _find(study: Path, stem: str) -> Optional[Path]:
    folder = study / stem
    if folder.is_dir():
        return folder
    for suffix in IMAGE_SUFFIXES:
        candidate = study / (stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def find_studies(root: Path) -> List[Path]:
    """Sub-folders of ``root`` that hold a CT or a PET (the others are ignored)."""
    return sorted(p for p in root.iterdir() if p.is_dir() and (_find(p, "ct") or _find(p, "pet")))


def _mrml_scene():
    """(scene, release) for the study's Slicer scene, or (None, None) without MRML."""
    try:
        import slicer  # the application or the PyPI slicer-core package
        from DeepDoseLib.mrml import create_headless_scene, in_slicer_application, release_headless_scene
    except ImportError:
        return None, None
    if in_slicer_application():
        slicer.mrmlScene.Clear(0)
        return slicer.mrmlScene, lambda scene: scene.Clear(0)
    return create_headless_scene(), release_headless_scene


def process_study(study: Path, out: Path, args) -> Dict[str, object]:
    """Compute and write every output of one study; returns a summary (raises DeepDoseError on bad input)."""
    from DeepDoseLib.cli_options import options_from_args
    from DeepDoseLib.dose_methods import get_method
    from DeepDoseLib.errors import DeepDoseInputError
    from DeepDoseLib.study import StudyOutputs, read_study_files, run_study, write_study_outputs

    start = time.perf_counter()
    ct_path, pet_path = _find(study, "ct"), _find(study, "pet")
    if ct_path is None or pet_path is None:
        raise DeepDoseInputError("needs a CT (ct.nii.gz, ct.nrrd, ... or ct/) and a PET (pet.* or pet/)")
    labels_path = _find(study, "labels")
    names_file = study / "labels.json"
    has_names = labels_path is not None and names_file.is_file()
    options = options_from_args(args, args.method)
    method = get_method(args.method)
    outputs = StudyOutputs(out / "dose_rate_mGy_per_h.nrrd", out / "uncertainty.nrrd" if method.has_uncertainty else None,
                           out / "organs.tsv" if labels_path else None, out / "dvh.tsv" if labels_path else None,
                           fallback_mask=out / "fallback.nrrd" if method.has_fallback else None,
                           overwrite=args.overwrite, protected=[p for p in (ct_path, pet_path, labels_path) if p])
    request = read_study_files(ct_path, pet_path, args.nuclide, pet_unit=args.pet_unit, labels=labels_path,
                               label_names=names_file if has_names else None, method=args.method, options=options,
                               clip_negative=args.clip_negative, device=args.device)
    result = run_study(request)
    out.mkdir(parents=True, exist_ok=True)
    written = write_study_outputs(result, outputs)
    summary = {"study": study.name, "outputs": [str(p) for p in written], "notes": result.notes}
    if not args.no_scene:
        scene_path, scene_notes = write_scene(study, out, request.ct, request.pet, result.dose, request.labels,
                                              request.label_names, args)
        if scene_path is None:
            summary["notes"].append("no Slicer scene: Slicer's MRML is not available (pip install slicer-core)")
        else:
            summary["outputs"].append(str(scene_path))
            summary["notes"] += scene_notes
    summary["seconds"] = time.perf_counter() - start
    return summary


def write_scene(study: Path, out: Path, ct_image, pet_image, result, labels, names, args):
    """The study as a Slicer scene bundle (.mrb) with every DeepDose output: (path, notes); (None, []) without MRML."""
    scene, release = _mrml_scene()
    if scene is None:
        return None, []
    from DeepDoseLib.mrml import (build_dosimetry_outputs, parse_levels_percent, save_scene_bundle,
                                  segmentation_from_labels, volume_node_from_image)

    try:
        ct_node = volume_node_from_image(scene, ct_image, "%s CT" % study.name)
        pet_node = volume_node_from_image(scene, pet_image, "%s PET" % study.name)
        dose_node = volume_node_from_image(scene, result.dose_rate, "%s dose rate (mGy/h, %s %s)"
                                           % (study.name, args.method.upper(), result.nuclide))
        uncertainty_node = None
        if result.relative_uncertainty is not None:
            uncertainty_node = volume_node_from_image(scene, result.relative_uncertainty,
                                                      "%s uncertainty (fraction)" % study.name)
        segmentation = None
        if labels is not None and names:
            segmentation = segmentation_from_labels(scene, labels, {v: n for v, n in names.items() if v != 0},
                                                    "%s organs" % study.name)
        outputs = build_dosimetry_outputs(scene, dose_node, ct_node, segmentation, uncertainty_node,
                                          parse_levels_percent(args.isodose), pet_node=pet_node, method=args.method,
                                          nuclide=result.nuclide, include_photons=args.include_photons,
                                          clip_negative=args.clip_negative)
        path = out / ("%s.mrb" % study.name)
        if path.exists() and not args.overwrite:
            from DeepDoseLib.errors import DeepDoseInputError

            raise DeepDoseInputError("%s exists: pass --overwrite to replace it" % path)
        save_scene_bundle(scene, path)
        notes = [note for note in outputs.notes if note not in result.notes]
        return path, notes
    finally:
        release(scene)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    _bootstrap_path()
    from DeepDoseLib.errors import DeepDoseError

    studies_root, out_root = Path(args.studies), Path(args.out)
    if not studies_root.is_dir():
        print("batch_folder.py: %s is not a folder" % studies_root, file=sys.stderr)
        return 2
    studies = find_studies(studies_root)
    if not studies:
        print("batch_folder.py: no study (sub-folder with ct.* / pet.*) in %s" % studies_root, file=sys.stderr)
        return 2
    failures = 0
    for index, study in enumerate(studies, start=1):
        print("[%d/%d] %s" % (index, len(studies), study.name), flush=True)
        try:
            summary = process_study(study, out_root / study.name, args)
        except DeepDoseError as error:  # the input was refused: the message says why
            failures += 1
            print("  FAILED: %s" % error, flush=True)
            continue
        except Exception as error:  # anything else: report it and go on with the next study
            failures += 1
            print("  FAILED (%s): %s" % (type(error).__name__, error), flush=True)
            continue
        for note in summary["notes"]:
            print("  note: %s" % note, flush=True)
        for output in summary["outputs"]:
            print("  wrote %s" % output, flush=True)
        print("  OK in %.1f s" % summary["seconds"], flush=True)
    print("%d studies: %d succeeded, %d failed" % (len(studies), len(studies) - failures, failures), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    code = main()
    if "slicer" in sys.modules and getattr(sys.modules["slicer"], "app", None) is not None:
        sys.modules["slicer"].util.exit(code)  # Slicer --python-script: quit the application with the code
    sys.exit(code)
