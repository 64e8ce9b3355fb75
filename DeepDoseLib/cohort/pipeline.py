"""The per-study pipeline of a cohort: files in, dose-rate map and organ tables out.

:func:`compute_study` is the ONE place where a cohort task calls DeepDose's dosimetry: the study pipeline
every front end shares (:func:`DeepDoseLib.study.run_study` and :func:`~DeepDoseLib.study.write_study_outputs`).

Outputs written in ``out_dir`` (created)::

    dose_rate_mGy_per_h.nrrd   dose-rate map [mGy/h] on the PET grid
    uncertainty.nrrd           relative standard uncertainty (fraction, 1 SD; methods with one: mc, deepdose)
    fallback.nrrd              0/1 mask of the voxels where Deep-dose returned its physics baseline (deepdose)
    organs.tsv, dvh.tsv        organ statistics and cumulative DVHs (with a labels map)
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from ..errors import DeepDoseInputError

DOSE_RATE_FILE = "dose_rate_mGy_per_h.nrrd"
FALLBACK_FILE = "fallback.nrrd"


@dataclass(frozen=True)
class StudySettings:
    """Options applied to every study of a cohort (the manifest gives nuclide, method and time per row).

    Attributes:
        pet_unit: unit of non-DICOM PET files (``"Bq/mL"``, ``"kBq/mL"``, ``"MBq/mL"``).
        include_photons: LED: deposit photon energy locally too.
        clip_negative: set negative PET voxels to 0 instead of failing the study.
        n_decays, seed, n_batches: Monte Carlo decays, seed and batches (uncertainty).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"`` (on the worker that runs the study).
        model_path: Deep-dose model file (default: the bundled model of the nuclide).
    """

    pet_unit: str = "Bq/mL"
    include_photons: bool = False
    clip_negative: bool = False
    n_decays: int = 10_000_000
    seed: int = 0
    n_batches: int = 10
    device: str = "auto"
    model_path: Optional[str] = None

    def hash_fields(self) -> dict:
        """The settings that change a study's numbers (``device`` and the model's path do not enter;
        the model file's content does, see :func:`~.hashing.study_inputs_sha256`)."""
        fields = asdict(self)
        del fields["device"], fields["model_path"]
        return fields


def _finite(value: float) -> Optional[float]:
    return None if value is None or math.isnan(value) else float(value)


def compute_study(study, out_dir: Path, settings: StudySettings) -> dict:
    """Compute one :class:`~.manifest.StudyRow` and write its outputs into ``out_dir``.

    Returns:
        ``{"structures": [...], "notes": [...], "outputs": [file names], "method_seconds": s}``; each
        structure is ``{"structure", "label", "mean_dose_rate_mGy_per_h", "mean_weighting",
        "max_dose_rate_mGy_per_h", "volume_mL", "mass_g"}``.

    Raises:
        DeepDoseError: a bad input (the message says which and why); nothing is returned then.
    """
    from ..dose import MethodOptions, method_options
    from ..dose_methods import get_method
    from ..study import StudyOutputs, read_study_files, run_study, write_study_outputs

    start = time.perf_counter()
    out_dir = Path(out_dir)
    options = method_options(study.method, MethodOptions(
        include_photons=settings.include_photons, n_decays=int(settings.n_decays), seed=settings.seed,
        n_batches=settings.n_batches, model_path=settings.model_path))
    request = read_study_files(study.ct, study.pet, study.nuclide, pet_unit=settings.pet_unit, labels=study.labels,
                               label_names=study.label_names, method=study.method, options=options,
                               clip_negative=settings.clip_negative, device=settings.device)
    labelled = study.labels is not None
    method = get_method(study.method)
    outputs = StudyOutputs(out_dir / DOSE_RATE_FILE, out_dir / "uncertainty.nrrd" if method.has_uncertainty else None,
                           out_dir / "organs.tsv" if labelled else None, out_dir / "dvh.tsv" if labelled else None,
                           fallback_mask=out_dir / FALLBACK_FILE if method.has_fallback else None,
                           protected=list(study.input_paths().values()))
    result = run_study(request)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = write_study_outputs(result, outputs)
    rows = result.organ_rows
    structures = []
    if rows is not None:
        structures = [{"structure": r.name, "label": int(r.label), "mean_dose_rate_mGy_per_h": _finite(r.mean),
                       "mean_weighting": r.mean_weighting, "max_dose_rate_mGy_per_h": _finite(r.max),
                       "volume_mL": _finite(r.volume_mL), "mass_g": _finite(r.mass_g)} for r in rows]
    return {"structures": structures, "notes": result.notes,
            "outputs": [Path(p).name for p in written], "method_seconds": round(time.perf_counter() - start, 3)}
