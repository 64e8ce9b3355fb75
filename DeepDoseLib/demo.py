"""The embedded default case: a small torso PET/CT made deterministically by DeepDose's own generator.

It is not stored as images: :func:`make_demo_case` rebuilds it from ``data/demo_case/recipe.json``
with :mod:`DeepDoseLib.phantoms` (nominal procedural torso from the upper thighs to the jaw, four
fixed lesions, Ga-68 PSMA-11 uptake for 150 MBq in 70 kg at 60 min, scanner image at 6 mm FWHM
with 8 % noise), 4 mm voxels by default; the same seed and spacing give identical arrays. Use
:func:`ensure_demo_case_files` for a cached copy on disk (e.g. for Slicer's sample data).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Union

import SimpleITK as sitk

RECIPE_FILE = Path(__file__).resolve().parent / "data" / "demo_case" / "recipe.json"
NUCLIDE = "Ga68"


@dataclass
class DemoCase:
    """The demo PET/CT: images in LPS, CT [HU], PET and true activity [Bq/mL], labels (uint8)."""

    ct: sitk.Image
    pet: sitk.Image
    true_activity: sitk.Image
    labels: sitk.Image
    label_names: Dict[int, str]
    nuclide: str = NUCLIDE
    density: Optional[sitk.Image] = None
    metadata: dict = field(default_factory=dict)


def demo_recipe() -> dict:
    """The recipe of the demo case (``data/demo_case/recipe.json``)."""
    return json.loads(RECIPE_FILE.read_text())


def make_demo_case(seed: int = 20190403, spacing_mm: float = 4.0) -> DemoCase:
    """Build the demo case deterministically (same seed and spacing → identical arrays)."""
    from .phantoms.case import case_from_anatomy
    from .phantoms.lesions import LesionSpec
    from .phantoms.pet_simulation import ScannerModel
    from .phantoms.torso import TorsoParameters, generate_torso
    from .phantoms.tracers import get_tracer

    recipe = demo_recipe()
    tracer = get_tracer(recipe["tracer"])
    lesions = [LesionSpec(d["site"], d["diameter_mm"], d["core_fraction"], tuple(d["centre_mm"]))
               for d in recipe["lesions"]]
    anatomy = generate_torso(TorsoParameters(bladder_volume_mL=recipe["bladder_volume_mL"], seed=int(seed)),
                             float(spacing_mm), lesions)
    scanner = ScannerModel(recipe["scanner"]["fwhm_mm"], recipe["scanner"]["noise_cov"], tracer.nuclide,
                           tracer.modality)
    case = case_from_anatomy(anatomy, tracer.name, int(seed), scanner, weight_kg=recipe["weight_kg"],
                             injected_MBq=recipe["injected_MBq"], uptake_time_h=recipe["uptake_time_h"],
                             extra_metadata={"demo_recipe": RECIPE_FILE.name})
    return DemoCase(case.ct, case.pet, case.true_activity, case.labels, case.label_names, case.nuclide,
                    case.density, case.metadata)


def write_demo_case(case: DemoCase, directory: Union[str, Path]) -> Dict[str, Path]:
    """Write the case as NIfTI files (+ labels.json, case.json); returns name → path."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"ct": out / "ct.nii.gz", "pet": out / "pet.nii.gz",
             "true_activity": out / "true_activity.nii.gz", "labels": out / "labels.nii.gz"}
    for key, path in paths.items():
        sitk.WriteImage(getattr(case, key), str(path), useCompression=True)
    paths["label_names"] = out / "labels.json"
    paths["label_names"].write_text(json.dumps({str(k): v for k, v in case.label_names.items()}, indent=1))
    if case.metadata:
        paths["metadata"] = out / "case.json"
        paths["metadata"].write_text(json.dumps(case.metadata, indent=1))
    return paths


def ensure_demo_case_files(directory: Optional[Union[str, Path]] = None) -> Dict[str, Path]:
    """The demo case as files, generated on first use into ``directory`` (default: a per-user cache
    folder ``~/.cache/deepdose/demo_case-<generator version>``) and reused afterwards."""
    recipe = demo_recipe()
    folder = Path(directory) if directory else Path.home() / ".cache" / "deepdose" / \
        f"demo_case-{recipe['generator_version']}"
    names = {"ct": "ct.nii.gz", "pet": "pet.nii.gz", "true_activity": "true_activity.nii.gz",
             "labels": "labels.nii.gz", "label_names": "labels.json", "metadata": "case.json"}
    paths = {k: folder / v for k, v in names.items()}
    if all(p.is_file() for p in paths.values()):
        return paths
    return write_demo_case(make_demo_case(), folder)


#: The method the demo sets Deep-dose beside: the physics baseline it corrects (density-scaled VSV).
DEMO_COMPARISON_METHOD = "vsv_scaled"
#: Method names as printed in the demo's organ table.
def comparison_table(rows, reference_rows, method: str, reference_method: str = DEMO_COMPARISON_METHOD) -> str:
    """Tab-separated organ table: mean dose rate [mGy/h] of ``method`` beside ``reference_method`` and their
    difference [%] (``rows``/``reference_rows``: :class:`DeepDoseLib.analysis.organs.OrganStatistics` lists)."""
    reference = {r.name: r for r in reference_rows}
    from .dose_methods import get_method

    a, b = get_method(method).label, get_method(reference_method).label
    lines = [f"organ\tvolume_mL\tmean_mGy_per_h[{a}]\tmean_mGy_per_h[{b}]\tdifference_%"]
    for r in rows:
        ref = reference.get(r.name)
        diff = 100.0 * (r.mean - ref.mean) / ref.mean if ref is not None and ref.mean else float("nan")
        lines.append(f"{r.name}\t{r.volume_mL:.1f}\t{r.mean:.4g}\t{ref.mean if ref else float('nan'):.4g}\t{diff:+.1f}")
    return "\n".join(lines)


def compare_with_reference(inputs, case: DemoCase, nuclide: str, method: str, rows, device: str = "auto",
                           progress=None, model_path=None) -> str:
    """The demo's organ table: ``method`` (Deep-dose by default) beside :data:`DEMO_COMPARISON_METHOD`.

    ``inputs``: the prepared inputs the main method ran on; ``rows``: its organ statistics. When a Deep-dose
    model of the nuclide (``model_path`` or the bundled one) has the inputs' voxel size, the density-scaled
    VSV uses that model's own kernels (the baseline the network corrects, carried in the weights file: no
    kernel Monte Carlo); otherwise ``vsv_scaled`` runs as on the command line (kernels computed or read
    from the cache). When ``method`` is the comparison method itself, the plain organ table is returned.
    """
    import numpy as np

    from .analysis import format_organ_table
    from .analysis.organs import organ_statistics
    from .dose import compute_dose_rate_from_inputs

    if method == DEMO_COMPARISON_METHOD:
        return format_organ_table(rows)
    from .deepdose.model_io import resolve_model
    from .errors import DeepDoseInputError
    from .methods.scaled_vsv import scaled_vsv_dose_rate

    reference, note = None, ""
    try:
        model = resolve_model(model_path if method == "deepdose" else None, nuclide)
    except DeepDoseInputError:
        model = None  # no model for this nuclide: vsv_scaled computes its kernels
    if model is not None:
        if np.allclose(tuple(inputs.spacing_mm), model.spacing_mm, rtol=1e-3):
            values = scaled_vsv_dose_rate(inputs.activity_Bq_per_mL, inputs.density_g_per_cm3, model.kernels)
            reference = inputs.to_image(np.asarray(values, dtype=np.float32))
            for key, value in {"DeepDose.quantity": "dose rate", "DeepDose.units": "mGy/h",
                               "DeepDose.method": DEMO_COMPARISON_METHOD}.items():
                reference.SetMetaData(key, value)
            note = (f"\n(vsv_scaled: density-scaled VSV with the kernels carried by {model.path.name}, "
                    f"{int(model.kernels.n_decays):,} decays each: "
                    "the baseline Deep-dose corrects)")
    if reference is None:
        reference = compute_dose_rate_from_inputs(inputs, nuclide, DEMO_COMPARISON_METHOD, device=device,
                                                  progress=progress)
    reference_rows = organ_statistics(reference, case.labels, case.label_names, inputs.density_g_per_cm3)
    return comparison_table(rows, reference_rows, method) + note
