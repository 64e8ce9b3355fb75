"""The ``deepdose batch`` subcommand and the Dask options of ``deepdose dataset`` (registered by ``DeepDoseLib.cli``).

    deepdose batch MANIFEST.csv --out DIR [--scheduler ADDRESS | --workers N] [--method M] [...]

Exit status: 0 every study done, 1 some studies failed (each in ``DIR/cohort.tsv`` with its message),
2 the manifest or an option is unusable (nothing ran), 130 interrupted (finished studies are kept; the
same command resumes).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_cluster_options(p: argparse.ArgumentParser) -> None:
    """``--scheduler`` / ``--workers``: where the tasks run."""
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="Dask scheduler to submit to (tcp://host:8786, or a scheduler.json file from "
                            "`dask scheduler --scheduler-file` or dask-jobqueue); default: a local cluster here")
    where.add_argument("--workers", type=int, metavar="N",
                       help="worker processes of the local Dask cluster (default: one per CPU core)")


def add_batch_parser(sub) -> argparse.ArgumentParser:
    """Register ``deepdose batch``."""
    from ..cli_options import add_method_options
    from ..dose_methods import method_names, registered_methods

    p = sub.add_parser("batch", help="dosimetry of a cohort (a manifest CSV of studies) on a Dask cluster",
                       description="One Dask task per study of MANIFEST (columns study_id, ct, pet, nuclide; optional "
                                   "labels, label_names, method, time_h). Results go to DIR/<study_id>/, the summary "
                                   "to DIR/cohort.tsv and DIR/cohort_report.html. Re-run the same command to resume: "
                                   "studies whose inputs (by content hash) are done are skipped.")
    p.add_argument("manifest", type=Path, help="manifest .csv (or .tsv); relative paths are relative to its folder")
    p.add_argument("--out", type=Path, required=True, help="output folder DIR")
    add_cluster_options(p)
    p.add_argument("--method", default="led", choices=method_names(), help="dose method of rows without one (default led)")
    p.add_argument("--pet-unit", default="Bq/mL", choices=["Bq/mL", "kBq/mL", "MBq/mL"],
                   help="unit of non-DICOM PET files (default Bq/mL)")
    p.add_argument("--clip-negative", action="store_true", help="set negative PET voxels to 0 instead of failing")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (on each worker)")
    add_method_options(p, registered_methods())  # --include-photons, --decays, --seed, --batches, --model...
    p.add_argument("--retries", type=int, default=1, help="re-runs of a study whose task crashed (default 1)")
    p.add_argument("--retry-failed", action="store_true",
                   help="also re-run studies refused for their input at an earlier run (default: kept as failed "
                        "while their inputs are unchanged)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def run_batch(args: argparse.Namespace) -> int:
    """``deepdose batch``: returns the exit status (DeepDoseError -> 2 and KeyboardInterrupt -> 130 are left to
    the caller's handlers)."""
    from ..errors import DeepDoseError
    from .batch import run_cohort
    from .manifest import read_manifest
    from .pipeline import StudySettings
    from ..cli_options import options_from_args
    from ..dose_methods import registered_methods

    if args.workers is not None and args.workers < 1:
        raise DeepDoseError(f"--workers must be ≥ 1 (got {args.workers}).")
    if args.model_path is not None and not args.model_path.is_file():
        raise DeepDoseError(f"--model {args.model_path} does not exist.")
    rows = read_manifest(args.manifest, default_method=args.method)
    for method in registered_methods():  # rows may name any method: every option checked before any work
        options_from_args(args, method.name)
    settings = StudySettings(pet_unit=args.pet_unit, include_photons=args.include_photons,
                             clip_negative=args.clip_negative, n_decays=int(args.n_decays), seed=int(args.seed),
                             n_batches=int(args.n_batches), device=args.device,
                             model_path=str(Path(args.model_path).resolve()) if args.model_path else None)
    try:
        result = run_cohort(rows, args.out, settings, scheduler=args.scheduler, n_workers=args.workers,
                            retries=args.retries, retry_failed=args.retry_failed, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"deepdose batch: interrupted; finished studies are kept in {args.out} (summary in "
              f"{args.out / 'cohort.tsv'}); run the same command to resume", file=sys.stderr)
        return 130
    done = sum(r["status"] == "done" for r in result.records)
    print(f"cohort {args.out}: {len(result.records)} studies: {done} done ({len(result.computed)} computed now, "
          f"{done - len(result.computed)} already done), {result.n_failed} failed; summary {result.tsv}, "
          f"report {result.report}")
    for record in result.records:
        if record["status"] == "failed":
            print(f"  {record['key']}: FAILED: {record['error']}")
    return 1 if result.n_failed else 0
