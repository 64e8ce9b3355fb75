"""Training/evaluation dataset builder: patient-like PET/CT cases with Monte Carlo dose-rate ground truth.

Layout of a dataset folder::

    DIR/dataset.json            configuration, versions, the case plan (id, split, anatomy, tracer, seed)
    DIR/cases/<id>/ct.nii.gz    CT [HU] (int16)           pet.nii.gz            scanner image [Bq/mL]
                   true_activity.nii.gz [Bq/mL]         density.nii.gz        [g/cm³]
                   labels.nii.gz (uint8) + labels.json   dose_rate.nii.gz      ground truth [mGy/h]
                   dose_rate_uncertainty.nii.gz (relative 1 SD)   case.json (metadata; written last)

Resumable: a case is complete when its ``case.json`` exists; cases are built in ``<id>.partial`` and
renamed, so an interrupted run leaves no half case, and re-running the same command completes the
rest (a different configuration in the same folder is refused). Every case is determined by the
dataset seed and its index.

Splits are by anatomy: each procedural case has its own anatomy (seeded), validation cases come from
the training family with unseen anatomies, test cases from the *held-out* generator family and,
optionally, the real anatomies of ``../shared/data`` (ICRP-110 adult female, TotalSegmentator CT).

Two kinds of case besides whole torsos, as shares of ``n_cases`` (0 by default):

* **truncated field of view** (``truncated_fov_fraction``): a torso case cropped to an axial slab of
  ``truncated_fov_mm`` (uniform, default 60–200 mm: a bed position or less) *before* the Monte Carlo run, as a PET/CT whose scan range ends inside the body. The dose
  computed from such images has no activity or scattering tissue beyond the cut faces; models trained
  on whole torsos alone learn the photon scatter of a whole body and overestimate the dose in a slab.
* **wide uptake** (``uptake="wide"``, ``deepdose dataset --uptake wide``): the activity of every torso case comes
  from the table-free training generator of :mod:`DeepDoseLib.phantoms.wide_uptake` (organ levels over three
  decades, inactive lung/bone/bowel in half the cases, lesions 1–100× their surroundings, heterogeneous organs,
  PET- or SPECT-like blur and noise) instead of the tracer tables; the tracer still chooses the nuclide.
* **block** (``block_fraction``): a homogeneous soft-tissue block with uniform lung/adipose/bone/soft
  inserts (:mod:`DeepDoseLib.phantoms.blocks`): exactly uniform activity, flat interfaces, the finite-
  medium photon dose with an analytic limit.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import SimpleITK as sitk

from ._version import __version__
from .errors import DeepDoseInputError

PathLike = Union[str, Path]
#: engine(activity, density, material_labels, spacing_mm, nuclide, n_decays, seed, device, n_batches)
#: → (dose_rate_mGy_per_h, relative_uncertainty, info dict)
DoseEngine = Callable[..., Tuple[np.ndarray, np.ndarray, dict]]
DATASET_FORMAT = 1
#: ``tracer``: organ concentrations from the tracer tables, the scanner model's image; ``wide``: the table-free
#: training generator of :mod:`DeepDoseLib.phantoms.wide_uptake` (PET- or SPECT-like image, the MC's source)
UPTAKE_MODES = ("tracer", "wide")


@dataclass
class DatasetConfig:
    """What to build. ``tracers`` are cycled over the cases; fractions are of ``n_cases``."""

    n_cases: int
    tracers: Sequence[str] = ("Ga68-PSMA-11",)
    spacing_mm: float = 4.0
    n_decays: int = 20_000_000
    seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    reference_anatomies: bool = False
    engine: str = "mc"
    n_batches: int = 10
    truncated_fov_fraction: float = 0.0
    block_fraction: float = 0.0
    truncated_fov_mm: Tuple[float, float] = (60.0, 200.0)
    uptake: str = "tracer"

    def __post_init__(self) -> None:
        from .phantoms.tracers import get_tracer

        if self.n_cases < 0:
            raise DeepDoseInputError("The number of cases must be ≥ 0.")
        self.tracers = [get_tracer(t).name for t in self.tracers]
        if not self.tracers:
            raise DeepDoseInputError("Give at least one tracer.")
        if not 1.0 <= float(self.spacing_mm) <= 8.0:
            raise DeepDoseInputError(f"Voxel size must be 1–8 mm (got {self.spacing_mm}).")
        if int(self.n_decays) < 1:
            raise DeepDoseInputError("The number of decays must be ≥ 1.")
        if not (0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1 and self.val_fraction + self.test_fraction < 1):
            raise DeepDoseInputError("Validation and test fractions must be in [0, 1) and sum to < 1.")
        if not (0 <= self.truncated_fov_fraction <= 1 and 0 <= self.block_fraction <= 1
                and self.truncated_fov_fraction + self.block_fraction <= 1):
            raise DeepDoseInputError("Truncated-FOV and block fractions must be in [0, 1] and sum to ≤ 1.")
        lo, hi = (float(v) for v in self.truncated_fov_mm)
        if not 4.0 * self.spacing_mm <= lo <= hi:
            raise DeepDoseInputError(f"Truncated field of view must be a range lo ≤ hi with lo ≥ 4 voxels "
                                     f"({4 * self.spacing_mm:g} mm); got {self.truncated_fov_mm}.")
        self.truncated_fov_mm = (lo, hi)
        if self.uptake not in UPTAKE_MODES:
            raise DeepDoseInputError(f"Unknown uptake mode {self.uptake!r}; use one of {list(UPTAKE_MODES)}.")
        if self.engine not in ENGINES:
            raise DeepDoseInputError(f"Unknown dose engine {self.engine!r}; use one of {sorted(ENGINES)}.")
        self.n_decays, self.seed, self.spacing_mm = int(self.n_decays), int(self.seed), float(self.spacing_mm)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["tracers"] = list(self.tracers)
        d["truncated_fov_mm"] = list(self.truncated_fov_mm)
        return d


@dataclass
class CasePlan:
    """One planned case: id, split, anatomy source/family/id, tracer, seed, and the axial field of view
    [mm] it is cropped to (0: the whole anatomy)."""

    case_id: str
    split: str
    source: str
    family: str
    anatomy_id: str
    tracer: str
    seed: int
    fov_mm: float = 0.0


def plan_cases(config: DatasetConfig) -> List[CasePlan]:
    """The deterministic case plan (anatomy-disjoint splits; see the module docstring)."""
    n = config.n_cases
    order = np.random.default_rng([config.seed, 999]).permutation(n)
    n_test, n_val = int(round(n * config.test_fraction)), int(round(n * config.val_fraction))
    split = {int(i): "test" for i in order[:n_test]}
    split.update({int(i): "val" for i in order[n_test:n_test + n_val]})
    kind_order = np.random.default_rng([config.seed, 998]).permutation(n)
    n_block = int(round(n * config.block_fraction))
    n_truncated = min(n - n_block, int(round(n * config.truncated_fov_fraction)))
    kind = {int(i): "block" for i in kind_order[:n_block]}
    kind.update({int(i): "truncated" for i in kind_order[n_block:n_block + n_truncated]})
    plans = []
    for i in range(n):
        s = split.get(i, "train")
        family = "heldout" if s == "test" else "standard"
        seed = int(np.random.default_rng([config.seed, i]).integers(0, 2**31 - 1))
        tracer = config.tracers[i % len(config.tracers)]
        if kind.get(i) == "block":
            plans.append(CasePlan(f"case_{i:05d}", s, "block", "block", f"block-{seed}", tracer, seed))
            continue
        fov = 0.0
        if kind.get(i) == "truncated":
            fov = round(float(np.random.default_rng([seed, 5]).uniform(*config.truncated_fov_mm)), 1)
        plans.append(CasePlan(f"case_{i:05d}", s, "procedural", family, f"procedural-{family}-{seed}", tracer, seed,
                              fov))
    if config.reference_anatomies:
        for j, source in enumerate(("icrp110_af", "totalsegmentator")):
            for k, tracer in enumerate(config.tracers):
                seed = int(np.random.default_rng([config.seed, 10_000 + 100 * j + k]).integers(0, 2**31 - 1))
                plans.append(CasePlan(f"ref_{source}_{k:02d}", "test", source, source, source, tracer, seed))
    return plans


def _mc_engine(activity, density, materials, spacing_mm, nuclide, n_decays, seed, device, n_batches, progress=None):
    from .mc import run_monte_carlo

    r = run_monte_carlo(activity, density, materials, spacing_mm, nuclide, n_decays, seed=seed, device=device,
                        n_batches=n_batches, progress=progress)
    info = {"engine": "mc", "n_decays": int(r.n_decays), "seconds": round(float(r.seconds), 3), "seed": int(seed),
            "device": getattr(r, "device", device), "n_batches": int(n_batches)}
    for key in ("energy_emitted_MeV", "energy_deposited_MeV", "energy_escaped_MeV"):
        if hasattr(r, key):
            info[key] = float(getattr(r, key))
    return r.dose_rate_mGy_per_h, r.relative_uncertainty, info


def _led_engine(activity, density, materials, spacing_mm, nuclide, n_decays, seed, device, n_batches, progress=None):
    """Local energy deposition: a fast stand-in to test pipelines, NOT a training ground truth."""
    from .methods import led_dose_rate
    from .nuclides import get_nuclide

    start = time.perf_counter()
    dose = led_dose_rate(activity, density, get_nuclide(nuclide), device="cpu")
    return dose.astype(np.float32), np.zeros_like(dose, dtype=np.float32), {
        "engine": "led (stand-in, not a ground truth)", "n_decays": 0, "seconds": round(time.perf_counter() - start, 3)}


ENGINES: Dict[str, DoseEngine] = {"mc": _mc_engine, "led": _led_engine}


def _versions() -> dict:
    import torch

    from .phantoms.case import GENERATOR_VERSION

    return {"deepdose": __version__, "generator": GENERATOR_VERSION, "numpy": np.__version__,
            "SimpleITK": sitk.Version_VersionString(), "torch": torch.__version__, "python": sys.version.split()[0]}


def _anatomy_for(plan: CasePlan, config: DatasetConfig, shared_dir: Optional[PathLike]):
    from .phantoms.lesions import sample_lesions
    from .phantoms.reference_anatomies import load_icrp110_af, load_totalsegmentator_example
    from .phantoms.torso import generate_torso, sample_torso_parameters

    if plan.source == "procedural":
        rng = np.random.default_rng([plan.seed, 0])
        params = sample_torso_parameters(rng, plan.family)
        return generate_torso(params, config.spacing_mm, sample_lesions(rng))
    if plan.source == "icrp110_af":
        return load_icrp110_af(shared_dir, config.spacing_mm, seed=plan.seed)
    return load_totalsegmentator_example(shared_dir, config.spacing_mm)


def crop_to_fov(images: Dict[str, sitk.Image], fov_mm: float, rng: np.random.Generator) -> Tuple[Dict[str, sitk.Image], dict]:
    """Crop every image to an axial slab of ``fov_mm`` placed uniformly inside the body's z range
    (voxels denser than 0.2 g/cm³); the origin follows, so the slab stays where it was in space."""
    density = sitk.GetArrayViewFromImage(images["density"])
    body_z = np.flatnonzero((density > 0.2).any(axis=(1, 2)))
    nz = density.shape[0]
    n = max(1, min(nz, int(round(fov_mm / images["density"].GetSpacing()[2]))))
    lo, hi = (int(body_z[0]), int(body_z[-1]) + 1) if body_z.size else (0, nz)
    start = int(rng.integers(lo, hi - n + 1)) if hi - lo > n else max(0, min(lo, nz - n))
    cropped = {k: v[:, :, start:start + n] for k, v in images.items()}
    return cropped, {"fov_mm": float(fov_mm), "fov_slices": [start, start + n], "original_slices": nz}


def _case_images(plan: CasePlan, config: DatasetConfig, shared_dir: Optional[PathLike]):
    """The case's images (ct, pet, true_activity, density, labels), label names, nuclide and metadata."""
    from .phantoms.case import case_from_anatomy
    from .phantoms.tracers import get_tracer

    if plan.source == "block":
        from .phantoms.blocks import generate_block_phantom

        block = generate_block_phantom(np.random.default_rng([plan.seed, 0]), config.spacing_mm)
        images = {}
        for name, array in (("ct", block.hu), ("pet", block.activity), ("true_activity", block.activity),
                            ("density", block.density), ("labels", block.labels)):
            image = sitk.GetImageFromArray(np.ascontiguousarray(array))
            image.SetSpacing(block.spacing_mm)
            image.SetOrigin(block.origin_mm)
            images[name] = image
        return images, block.label_names, get_tracer(plan.tracer).nuclide, {**block.metadata, "seed": plan.seed}
    anatomy = _anatomy_for(plan, config, shared_dir)
    case = case_from_anatomy(anatomy, plan.tracer, plan.seed)
    images = {"ct": case.ct, "pet": case.pet, "true_activity": case.true_activity, "density": case.density,
              "labels": case.labels}
    meta = dict(case.metadata)
    if config.uptake == "wide":  # the table-free generator replaces the tracer's activity and the scanner image
        from .phantoms.wide_uptake import wide_uptake_activity

        image, meta["uptake"] = wide_uptake_activity(
            sitk.GetArrayViewFromImage(case.labels), case.label_names, sitk.GetArrayViewFromImage(case.density),
            case.density.GetSpacing(), np.random.default_rng([plan.seed, 7]))
        images["pet"] = images["true_activity"] = anatomy.to_image(image)
    if plan.fov_mm > 0:
        images, meta["truncated_fov"] = crop_to_fov(images, plan.fov_mm, np.random.default_rng([plan.seed, 6]))
    return images, case.label_names, case.nuclide, meta


def _write(image: sitk.Image, path: Path, pixel=None) -> None:
    sitk.WriteImage(sitk.Cast(image, pixel) if pixel is not None else image, str(path), useCompression=True)


def build_case(plan: CasePlan, config: DatasetConfig, folder: Path, engine: DoseEngine, device: str = "auto",
               shared_dir: Optional[PathLike] = None) -> dict:
    """Generate one case into ``folder`` (created); returns its metadata (also written as case.json)."""
    from .tissue import hu_to_material

    t0 = time.perf_counter()
    images, label_names, nuclide, case_meta = _case_images(plan, config, shared_dir)
    t1 = time.perf_counter()
    activity = sitk.GetArrayFromImage(images["true_activity"])
    density = sitk.GetArrayFromImage(images["density"])
    materials = hu_to_material(sitk.GetArrayViewFromImage(images["ct"]))
    dose, uncertainty, dose_info = engine(activity, density, materials, images["ct"].GetSpacing(), nuclide,
                                          config.n_decays, plan.seed, device, config.n_batches)
    t2 = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    _write(sitk.Cast(sitk.Round(images["ct"]), sitk.sitkInt16), folder / "ct.nii.gz")
    for name in ("pet", "true_activity", "density"):
        _write(images[name], folder / f"{name}.nii.gz", sitk.sitkFloat32)
    _write(images["labels"], folder / "labels.nii.gz", sitk.sitkUInt8)
    for name, array in (("dose_rate", dose), ("dose_rate_uncertainty", uncertainty)):
        image = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.float32))
        image.CopyInformation(images["ct"])
        _write(image, folder / f"{name}.nii.gz")
    (folder / "labels.json").write_text(json.dumps({str(k): v for k, v in sorted(label_names.items())}, indent=1))
    meta = {"case_id": plan.case_id, "plan": asdict(plan), "units": {
        "ct": "HU", "pet": "Bq/mL", "true_activity": "Bq/mL", "density": "g/cm3", "dose_rate": "mGy/h",
        "dose_rate_uncertainty": "relative standard uncertainty (1 SD)"},
        "dose": dose_info, "case": case_meta,
        "timing_s": {"phantom": round(t1 - t0, 3), "dose": round(t2 - t1, 3),
                     "write": round(time.perf_counter() - t2, 3)}}
    (folder / "case.json").write_text(json.dumps(meta, indent=1))
    return meta


_LATER_OPTIONS = ("truncated_fov_fraction", "block_fraction", "truncated_fov_mm", "uptake")


def _check_or_write_index(out: Path, config: DatasetConfig, plans: List[CasePlan]) -> None:
    index = out / "dataset.json"
    record = {"format": DATASET_FORMAT, "config": config.as_dict(), "versions": _versions(),
              "cases": [asdict(p) for p in plans],
              "splits": {s: [p.case_id for p in plans if p.split == s] for s in ("train", "val", "test")}}
    if index.is_file():
        old = json.loads(index.read_text())
        defaults = DatasetConfig(0).as_dict()  # options added later: an older index has their defaults
        if {**{k: defaults[k] for k in _LATER_OPTIONS}, **old.get("config", {})} != record["config"]:
            raise DeepDoseInputError(f"{out} holds a dataset built with another configuration "
                                     f"({old.get('config')}); use another folder.")
        record["versions_first_run"] = old.get("versions_first_run", old.get("versions"))
    out.mkdir(parents=True, exist_ok=True)
    index.write_text(json.dumps(record, indent=1))


@dataclass
class DatasetSummary:
    """What a build did: cases built now, found complete, and seconds per built case."""

    built: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    seconds: Dict[str, float] = field(default_factory=dict)


def _build_planned_case(plan: CasePlan, cases_dir: Path, config: DatasetConfig, engine: DoseEngine, device: str,
                        shared_dir: Optional[PathLike]) -> float:
    """Build one case in ``<id>.partial`` and rename it to ``<id>`` (stale debris removed first); returns seconds.

    The unit of work of both the serial loop and a Dask task (a rescheduled task starts over cleanly).
    """
    final = cases_dir / plan.case_id
    partial = cases_dir / f"{plan.case_id}.partial"
    for stale in (partial, final):
        if stale.exists():
            shutil.rmtree(stale)
    start = time.perf_counter()
    build_case(plan, config, partial, engine, device, shared_dir)
    partial.rename(final)
    return round(time.perf_counter() - start, 3)


def build_dataset(out_dir: PathLike, config: DatasetConfig, *, device: str = "auto", progress: bool = True,
                  engine: Optional[DoseEngine] = None, shared_dir: Optional[PathLike] = None,
                  scheduler: Optional[str] = None, n_workers: Optional[int] = None) -> DatasetSummary:
    """Build (or complete) the dataset in ``out_dir``; see the module docstring.

    Args:
        engine: dose engine override (default: ``ENGINES[config.engine]``, the Monte Carlo engine).
        progress: show a progress bar (tqdm, stderr).
        scheduler, n_workers: run each missing case as its own Dask task, on the scheduler at this address
            (or scheduler file) or on a local cluster of ``n_workers`` processes; Monte Carlo tasks ask for
            the ``GPU`` resource when workers declare one. Neither: one case after the other in this process.
            The folder and its resumption are the same either way.
    """
    from tqdm import tqdm

    out = Path(out_dir)
    plans = plan_cases(config)
    _check_or_write_index(out, config, plans)
    engine = engine or ENGINES[config.engine]
    summary = DatasetSummary()
    cases_dir = out / "cases"
    missing = []
    for plan in plans:
        if (cases_dir / plan.case_id / "case.json").is_file():
            partial = cases_dir / f"{plan.case_id}.partial"
            if partial.exists():  # debris of an interrupted rebuild
                shutil.rmtree(partial)
            summary.skipped.append(plan.case_id)
        else:
            missing.append(plan)
    if scheduler is not None or n_workers is not None:
        return _build_on_dask(missing, cases_dir, config, engine, device, shared_dir, summary, scheduler, n_workers,
                              progress)
    with tqdm(total=len(plans), initial=len(summary.skipped), disable=not progress, unit="case",
              desc="dataset") as bar:
        for plan in missing:
            bar.set_postfix_str(f"{plan.case_id} {plan.tracer} ({plan.split})")
            summary.seconds[plan.case_id] = _build_planned_case(plan, cases_dir, config, engine, device, shared_dir)
            summary.built.append(plan.case_id)
            bar.update(1)
    return summary


def _build_on_dask(missing: List[CasePlan], cases_dir: Path, config: DatasetConfig, engine: DoseEngine, device: str,
                   shared_dir: Optional[PathLike], summary: DatasetSummary, scheduler: Optional[str],
                   n_workers: Optional[int], progress: bool) -> DatasetSummary:
    """One Dask task per missing case; every case that can finish does, then the failures are raised together."""
    if not missing:
        return summary
    from .cohort.runner import dask_client, gpu_resources, run_tasks
    from .errors import DeepDoseError

    cases_dir.mkdir(parents=True, exist_ok=True)
    failures = []
    with dask_client(scheduler, n_workers, quiet=not progress) as client:
        gpu = gpu_resources(client) if device != "cpu" and config.engine == "mc" else None
        jobs = [(plan.case_id, (plan, cases_dir, config, engine, device, shared_dir)) for plan in missing]
        for case_id, seconds, error in run_tasks(client, _build_planned_case, jobs, resources=gpu, desc="dataset",
                                                 progress=progress):
            if error is not None:
                failures.append(f"{case_id}: {type(error).__name__}: {error}")
                continue
            summary.built.append(case_id)
            summary.seconds[case_id] = seconds
    if failures:
        raise DeepDoseError(f"{len(failures)} case(s) failed (the {len(summary.built)} others are built; re-run the "
                            "same command to retry them): " + "; ".join(failures))
    return summary
