"""The per-study pipeline of a cohort: files in, dose-rate map and organ tables out.

:func:`compute_study` is the ONE place where a cohort task calls DeepDose's dosimetry. It composes the
library's own steps (read -> :func:`~DeepDoseLib.dose.prepare_inputs` -> :func:`~DeepDoseLib.dose.run_dose_method`
-> organ statistics, DVH), as ``DeepDoseCLI/examples/batch_folder.py`` does; when the shared
``run_study()`` pipeline lands, this function is re-pointed at it and nothing else in the cohort changes.

Outputs written in ``out_dir`` (created)::

    dose_rate_mGy_per_h.nrrd   dose-rate map [mGy/h] on the PET grid
    uncertainty.nrrd           relative standard uncertainty (fraction, 1 SD; Monte Carlo only)
    organs.tsv, dvh.tsv        organ statistics and cumulative DVHs (with a labels map)
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from ..errors import DeepDoseInputError

DOSE_RATE_FILE = "dose_rate_mGy_per_h.nrrd"


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


def _read_label_names(path: Optional[Path]) -> dict:
    if path is None:
        return {}
    try:
        return {int(k): str(v) for k, v in json.loads(Path(path).read_text()).items()}
    except (OSError, ValueError, AttributeError) as exc:
        raise DeepDoseInputError(f"label_names {path}: expected a JSON object {{\"1\": \"liver\", ...}} ({exc}).")


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
    import SimpleITK as sitk

    from ..analysis import dvhs_for_labels, organ_statistics, write_dvh_table, write_organ_table
    from ..dose import MethodOptions, prepare_inputs, run_dose_method
    from ..image_io import read_ct, read_image, read_pet, write_image

    start = time.perf_counter()
    out_dir = Path(out_dir)
    ct = read_ct(study.ct)
    pet = read_pet(study.pet, pet_unit=settings.pet_unit)
    labels = None
    names = _read_label_names(study.label_names)
    if study.labels is not None:
        labels = sitk.Cast(read_image(study.labels), sitk.sitkUInt16)
    inputs = prepare_inputs(ct.image, pet.image, clip_negative=settings.clip_negative)
    options = MethodOptions(include_photons=settings.include_photons, n_decays=int(settings.n_decays),
                            seed=settings.seed, n_batches=settings.n_batches, labels=labels, label_names=names,
                            model_path=settings.model_path)
    result = run_dose_method(inputs, study.nuclide, study.method, options, device=settings.device)
    out_dir.mkdir(parents=True, exist_ok=True)
    protected = list(study.input_paths().values())
    written = [write_image(result.dose_rate, out_dir / DOSE_RATE_FILE, protected=protected)]
    if result.relative_uncertainty is not None:
        written.append(write_image(result.relative_uncertainty, out_dir / "uncertainty.nrrd", protected=protected))
    structures = []
    if labels is not None:
        present = {v: n for v, n in names.items() if v != 0} or None
        rows = organ_statistics(result.dose_rate, labels, present, density_g_per_cm3=inputs.density_g_per_cm3)
        written.append(write_organ_table(rows, out_dir / "organs.tsv"))
        dvhs = dvhs_for_labels(result.dose_rate, labels, {r.label: r.name for r in rows})
        if dvhs:
            written.append(write_dvh_table(dvhs, out_dir / "dvh.tsv"))
        structures = [{"structure": r.name, "label": int(r.label), "mean_dose_rate_mGy_per_h": _finite(r.mean),
                       "mean_weighting": r.mean_weighting, "max_dose_rate_mGy_per_h": _finite(r.max),
                       "volume_mL": _finite(r.volume_mL), "mass_g": _finite(r.mass_g)} for r in rows]
    return {"structures": structures, "notes": list(ct.notes + pet.notes + inputs.notes + result.notes),
            "outputs": [Path(p).name for p in written], "method_seconds": round(time.perf_counter() - start, 3)}
