"""Cohorts on a Dask cluster: one task per study of a manifest, results written atomically, a cohort summary.

    manifest.py  the manifest CSV: parsed and validated (one :class:`StudyRow` per row)
    hashing.py   the content hash of a study's inputs (what "already done" is checked against)
    pipeline.py  the one per-study pipeline call (re-pointed at ``run_study()`` when it lands)
    tasks.py     the Dask task of one study: temp folder -> pipeline -> done-marker -> rename
    runner.py    the Dask client/cluster and the futures loop (retries, progress, Ctrl-C)
    summary.py   ``cohort.tsv`` and the cohort report (distributions per structure, outliers)
    batch.py     ``run_cohort()``: the above put together (``deepdose batch``)
    cli.py       the ``deepdose batch`` subcommand and the cluster options of ``deepdose dataset``

Dask (``dask[distributed]``) is imported only when a cohort runs; nothing here starts a cluster on import.
"""
from __future__ import annotations

from .manifest import StudyRow, read_manifest

__all__ = ["StudyRow", "read_manifest"]
