"""Training cases for Deep-dose: activity, density and materials with their Monte Carlo dose rate.

A case is a folder (arrays (z, y, x), one grid, spacing in mm):

    activity.nii.gz            activity concentration [Bq/mL] (the MC source)
    density.nii.gz             mass density [g/cm³]
    materials.nii.gz           material classes (uint8, :func:`DeepDoseLib.tissue.materials`)
    mc_dose_rate.nii.gz        Monte Carlo dose rate [mGy/h] (the target)
    mc_relative_uncertainty.nii.gz   its relative standard uncertainty (optional)
    labels.nii.gz + label_names.json  organ labels (optional, for evaluation)
    case.json                  nuclide, split (train/val), seed, decays, provenance

The folders of the dataset builder (:mod:`DeepDoseLib.dataset`, ``deepdose dataset``: ``true_activity``,
``density``, ``ct``, ``labels`` + ``labels.json``, ``dose_rate``, ``dose_rate_uncertainty``, and the
split and tracer in ``case.json``) are read as well.

:func:`generate_cases` makes such folders with the project's phantom generator
(:func:`DeepDoseLib.phantoms.case.generate_case`) and Monte Carlo engine; held-out ("val") cases use
the ``heldout`` anatomy family (habitus outside the training ranges).
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import SimpleITK as sitk

from ..errors import DeepDoseInputError

logger = logging.getLogger(__name__)

#: Tracer used to synthesise the uptake of each nuclide.
DEFAULT_TRACERS = {"Ga68": "Ga68-PSMA-11", "Lu177": "Lu177-PSMA-617"}
REQUIRED_FILES = ("activity.nii.gz", "density.nii.gz", "materials.nii.gz", "mc_dose_rate.nii.gz")
BUILDER_FILES = ("true_activity.nii.gz", "density.nii.gz", "ct.nii.gz", "dose_rate.nii.gz")


@dataclass
class TrainingCase:
    """One case in memory: (z, y, x) float32 arrays on one grid, ``spacing_mm`` (x, y, z)."""

    name: str
    activity_Bq_per_mL: np.ndarray
    density_g_per_cm3: np.ndarray
    material_labels: np.ndarray
    dose_rate_mGy_per_h: np.ndarray
    spacing_mm: tuple
    nuclide: str
    split: str = "train"
    relative_uncertainty: Optional[np.ndarray] = None
    labels: Optional[np.ndarray] = None
    label_names: Dict[int, str] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    grid: Optional[sitk.Image] = None


def _read(path: Path) -> sitk.Image:
    return sitk.ReadImage(str(path))


def _is_builder_case(folder: Path) -> bool:
    return all((folder / f).is_file() for f in BUILDER_FILES)


def _load_builder_case(folder: Path) -> TrainingCase:
    from ..phantoms.tracers import get_tracer
    from ..tissue import hu_to_material

    meta = json.loads((folder / "case.json").read_text())
    plan = meta.get("plan", {})
    grid = _read(folder / "true_activity.nii.gz")
    activity = sitk.GetArrayFromImage(grid).astype(np.float32)
    arrays = {f: sitk.GetArrayFromImage(_read(folder / f)) for f in BUILDER_FILES[1:]}
    unc = folder / "dose_rate_uncertainty.nii.gz"
    names = folder / "labels.json"
    # named "<dataset folder>/<case id>" (either layout): case ids repeat from one dataset to the next
    return TrainingCase(
        f"{folder.parent.parent.name}/{meta.get('case_id', folder.name)}", activity,
        arrays["density.nii.gz"].astype(np.float32),
        hu_to_material(arrays["ct.nii.gz"].astype(np.float32)), arrays["dose_rate.nii.gz"].astype(np.float32),
        tuple(grid.GetSpacing()), get_tracer(plan["tracer"]).nuclide if "tracer" in plan else "",
        str(plan.get("split", "train")),
        sitk.GetArrayFromImage(_read(unc)).astype(np.float32) if unc.is_file() else None,
        sitk.GetArrayFromImage(_read(folder / "labels.nii.gz")) if (folder / "labels.nii.gz").is_file() else None,
        {int(k): v for k, v in json.loads(names.read_text()).items()} if names.is_file() else {},
        meta, grid)


def load_case(folder: Union[str, Path]) -> TrainingCase:
    """Read one case folder (either layout, see the module docstring); refuses incomplete folders."""
    folder = Path(folder)
    if _is_builder_case(folder) and (folder / "case.json").is_file():
        return _load_builder_case(folder)
    missing = [f for f in REQUIRED_FILES if not (folder / f).is_file()]
    if missing:
        raise DeepDoseInputError(f"Training case {folder} lacks {', '.join(missing)}.")
    meta = json.loads((folder / "case.json").read_text()) if (folder / "case.json").is_file() else {}
    grid = _read(folder / "activity.nii.gz")
    arrays = {f: sitk.GetArrayFromImage(_read(folder / f)) for f in REQUIRED_FILES[1:]}
    activity = sitk.GetArrayFromImage(grid).astype(np.float32)
    if any(a.shape != activity.shape for a in arrays.values()):
        raise DeepDoseInputError(f"Training case {folder}: the images do not share one grid.")
    unc = folder / "mc_relative_uncertainty.nii.gz"
    labels = folder / "labels.nii.gz"
    names = folder / "label_names.json"
    return TrainingCase(
        f"{folder.parent.name}/{folder.name}", activity, arrays["density.nii.gz"].astype(np.float32),
        arrays["materials.nii.gz"].astype(np.uint8), arrays["mc_dose_rate.nii.gz"].astype(np.float32),
        tuple(grid.GetSpacing()), str(meta.get("nuclide", "")), str(meta.get("split", "train")),
        sitk.GetArrayFromImage(_read(unc)).astype(np.float32) if unc.is_file() else None,
        sitk.GetArrayFromImage(_read(labels)) if labels.is_file() else None,
        {int(k): v for k, v in json.loads(names.read_text()).items()} if names.is_file() else {},
        meta, grid)


def _case_nuclide(folder: Path, meta: dict) -> str:
    if "nuclide" in meta:
        return str(meta["nuclide"])
    tracer = meta.get("plan", {}).get("tracer")
    if tracer:
        from ..phantoms.tracers import get_tracer

        return get_tracer(tracer).nuclide
    return ""


def find_cases(data_dir: Union[str, Path, Sequence[Union[str, Path]]], nuclide: Optional[str] = None) -> List[Path]:
    """Complete case folders under ``data_dir`` (one folder or several; recursively, either layout),
    for ``nuclide`` if given.

    Cases whose ground truth is not Monte Carlo (the dataset builder's ``led`` stand-in) are skipped.
    """
    roots = [Path(data_dir)] if isinstance(data_dir, (str, Path)) else [Path(d) for d in data_dir]
    for root in roots:
        if not root.is_dir():
            raise DeepDoseInputError(f"Training data folder {root} does not exist.")
    found = []
    for case_json in [c for root in roots for c in sorted(root.rglob("case.json"))]:
        folder = case_json.parent
        if folder.name.endswith(".partial"):
            continue
        if all((folder / f).is_file() for f in REQUIRED_FILES) or _is_builder_case(folder):
            meta = json.loads(case_json.read_text())
            if str(meta.get("dose", {}).get("engine", "mc")) != "mc":
                continue
            if nuclide is None or _case_nuclide(folder, meta).lower() == nuclide.lower():
                found.append(folder)
    return found


def dataset_settings(data_dir: Union[str, Path, Sequence[Union[str, Path]]]) -> List[dict]:
    """The generator settings of each ``deepdose dataset`` folder in ``data_dir`` (its ``dataset.json``
    ``config``: cases, tracers, uptake generator, truncated fields of view, blocks, decays, seed), for the model
    card's record of the training distribution; folders without one (cases made otherwise) are named only."""
    folders = [data_dir] if isinstance(data_dir, (str, Path)) else list(data_dir)
    out = []
    for folder in (Path(f) for f in folders):
        index = folder / "dataset.json"
        try:
            config = json.loads(index.read_text()).get("config") if index.is_file() else None
        except (ValueError, UnicodeDecodeError):
            config = None
        out.append({"folder": folder.name, "config": config})
    return out


def write_case(folder: Union[str, Path], grid: sitk.Image, arrays: Dict[str, np.ndarray], metadata: dict,
               label_names: Optional[Dict[int, str]] = None) -> Path:
    """Write arrays (name without extension → (z, y, x) array) on ``grid`` plus ``case.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        image = sitk.GetImageFromArray(np.ascontiguousarray(array))
        image.CopyInformation(grid)
        sitk.WriteImage(image, str(folder / f"{name}.nii.gz"), useCompression=True)
    if label_names is not None:
        (folder / "label_names.json").write_text(json.dumps({str(k): v for k, v in label_names.items()}, indent=1))
    (folder / "case.json").write_text(json.dumps(metadata, indent=1))
    return folder


def generate_cases(out_dir: Union[str, Path], nuclide: str, n_train: int, n_val: int, *, n_decays: int = 5_000_000,
                   spacing_mm: float = 4.0, first_seed: int = 1000, device: str = "auto",
                   log: Optional[Callable[[str], None]] = None) -> List[Path]:
    """Generate ``n_train`` standard and ``n_val`` held-out phantom cases with MC dose rates.

    Activity: the scanner image (PET/SPECT, blurred and noisy) for odd seeds and the true activity
    (sharp edges) for even seeds, so that the model sees both. Existing complete cases are kept.
    """
    from ..mc import run_monte_carlo
    from ..phantoms.case import generate_case

    tracer = DEFAULT_TRACERS.get(nuclide)
    if tracer is None:
        raise DeepDoseInputError(f"No phantom tracer for {nuclide}; known: {', '.join(DEFAULT_TRACERS)}.")
    folders = []
    seed = first_seed
    for i in range(n_train + n_val):
        split = "train" if i < n_train else "val"
        while True:  # a seed whose random anatomy the generator refuses is skipped (and said so)
            folder = Path(out_dir) / f"{nuclide}_{split}_{seed}"
            if (folder / "case.json").is_file() and all((folder / f).is_file() for f in REQUIRED_FILES):
                case = None
                break
            start = time.perf_counter()
            try:
                case = generate_case(seed=seed, tracer=tracer, spacing_mm=spacing_mm,
                                     family="standard" if split == "train" else "heldout")
                break
            except DeepDoseInputError as exc:
                if log:
                    log(f"seed {seed} skipped: {exc}")
                seed += 1
        folders.append(folder)
        case_seed, seed = seed, seed + 1
        if case is None:
            continue
        source = case.pet if case_seed % 2 else case.true_activity
        activity = np.clip(sitk.GetArrayFromImage(source).astype(np.float32), 0, None)
        density = sitk.GetArrayFromImage(case.density).astype(np.float32)
        materials = case.material_labels
        mc = run_monte_carlo(activity, density, materials, case.ct.GetSpacing(), nuclide, n_decays, seed=case_seed,
                             device=device)
        meta = {"nuclide": nuclide, "split": split, "seed": case_seed, "tracer": tracer,
                "activity_source": "scanner image" if case_seed % 2 else "true activity", "n_decays": int(n_decays),
                "mc_seconds": round(mc.seconds, 1), "generator": case.metadata,
                "total_time_s": round(time.perf_counter() - start, 1)}
        write_case(folder, case.ct, {"activity": activity, "density": density, "materials": materials,
                                     "mc_dose_rate": mc.dose_rate_mGy_per_h,
                                     "mc_relative_uncertainty": mc.relative_uncertainty,
                                     "labels": sitk.GetArrayFromImage(case.labels)}, meta, case.label_names)
        if log:
            log(f"{folder.name}: {mc.n_decays:,} decays in {mc.seconds:.0f} s")
    return folders
