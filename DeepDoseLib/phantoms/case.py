"""One patient-like PET/CT case: anatomy → CT → density → true activity → scanner image."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
import SimpleITK as sitk

from .._version import __version__
from ..tissue import hu_to_density, hu_to_material
from .activity import ActivityResult, synthesize_activity
from .anatomy import Anatomy
from .ct_synthesis import synthesize_ct
from .lesions import LesionSpec, sample_lesions
from .pet_simulation import ScannerModel, sample_scanner, simulate_emission_image
from .torso import TorsoParameters, generate_torso, sample_torso_parameters
from .tracers import get_tracer

#: Version of the case generator, written into every case's metadata (bump when outputs change).
GENERATOR_VERSION = "1.0"


@dataclass
class PhantomCase:
    """A generated case. Images are SimpleITK (LPS) on one grid: ``ct`` [HU], ``pet`` (the scanner's
    image) and ``true_activity`` [Bq/mL] at the scan time, ``density`` [g/cm³], ``labels`` (uint8)."""

    ct: sitk.Image
    pet: sitk.Image
    true_activity: sitk.Image
    density: sitk.Image
    labels: sitk.Image
    label_names: Dict[int, str]
    nuclide: str
    tracer: str
    anatomy: Anatomy
    activity: ActivityResult
    scanner: ScannerModel
    metadata: dict = field(default_factory=dict)

    @property
    def material_labels(self) -> np.ndarray:
        """(z, y, x) uint8 material classes of the CT (:func:`DeepDoseLib.tissue.hu_to_material`)."""
        return hu_to_material(sitk.GetArrayViewFromImage(self.ct))


def case_from_anatomy(anatomy: Anatomy, tracer: str = "Ga68-PSMA-11", seed: int = 0,
                      scanner: Optional[ScannerModel] = None, weight_kg: Optional[float] = None,
                      injected_MBq: Optional[float] = None, uptake_time_h: Optional[float] = None,
                      extra_metadata: Optional[dict] = None) -> PhantomCase:
    """CT (synthesised unless the anatomy carries a real CT), activity and scanner image for an anatomy.

    Weight, injected activity and uptake time are drawn from the tracer's ranges unless given.
    """
    start = time.perf_counter()
    t = get_tracer(tracer)
    ct_rng, act_rng, pet_rng = (np.random.default_rng([int(seed), k]) for k in (1, 2, 3))
    if anatomy.hu is not None:
        hu, ct_meta = anatomy.hu.astype(np.float32), {"source": "real CT"}
    else:
        synthetic = synthesize_ct(anatomy, ct_rng)
        hu = synthetic.hu
        ct_meta = {"source": "synthetic", "noise_sd_HU": round(synthetic.noise_sd_HU, 3),
                   "label_mean_HU": {str(k): round(v, 2) for k, v in sorted(synthetic.label_mean_hu.items())}}
    density = hu_to_density(hu)
    activity = synthesize_activity(anatomy, density, t, act_rng, weight_kg=weight_kg, injected_MBq=injected_MBq,
                                   uptake_time_h=uptake_time_h)
    scanner = scanner or sample_scanner(pet_rng, t.nuclide, t.modality)
    pet = simulate_emission_image(activity.activity_Bq_per_mL, anatomy.spacing_mm, scanner, pet_rng, density)
    metadata = {
        "generator": "DeepDoseLib.phantoms", "generator_version": GENERATOR_VERSION, "deepdose_version": __version__,
        "seed": int(seed), "anatomy": {"source": anatomy.source, "family": anatomy.family, **anatomy.parameters},
        "lesions": [lesion.as_dict() for lesion in anatomy.lesions], "ct": ct_meta, "activity": activity.metadata(),
        "scanner": scanner.as_dict(), "spacing_mm": list(anatomy.spacing_mm),
        "generation_seconds": round(time.perf_counter() - start, 3), **(extra_metadata or {})}
    return PhantomCase(anatomy.to_image(hu), anatomy.to_image(pet), anatomy.to_image(activity.activity_Bq_per_mL),
                       anatomy.to_image(density), anatomy.to_image(anatomy.labels), dict(anatomy.label_names),
                       t.nuclide, t.name, anatomy, activity, scanner, metadata)


def generate_case(seed: int = 0, tracer: str = "Ga68-PSMA-11", spacing_mm: float = 4.0, family: str = "standard",
                  torso: Optional[TorsoParameters] = None, lesions: Optional[List[LesionSpec]] = None,
                  scanner: Optional[ScannerModel] = None) -> PhantomCase:
    """A procedural torso case, fully determined by ``seed`` (and the optional fixed parts).

    Args:
        seed: drives anatomy, lesions, CT, uptake and scanner (independent streams).
        tracer: see :data:`DeepDoseLib.phantoms.tracers.TRACERS`.
        spacing_mm: isotropic voxel size [mm] (2–4 typical).
        family: ``standard`` (training) or ``heldout`` (anatomies outside the training ranges).
        torso, lesions, scanner: fixed parts instead of random draws (``lesions=[]`` for none).
    """
    start = time.perf_counter()
    rng = np.random.default_rng([int(seed), 0])
    params = torso or sample_torso_parameters(rng, family)
    specs = sample_lesions(rng) if lesions is None else lesions
    anatomy = generate_torso(params, spacing_mm, specs)
    case = case_from_anatomy(anatomy, tracer, seed, scanner)
    case.metadata["generation_seconds"] = round(time.perf_counter() - start, 3)
    return case
