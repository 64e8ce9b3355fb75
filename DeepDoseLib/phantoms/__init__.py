"""Patient-like PET/CT cases: procedural torso, real reference anatomies, CT, uptake and scanner models.

Typical use::

    from DeepDoseLib.phantoms import generate_case
    case = generate_case(seed=7, tracer="Ga68-PSMA-11", spacing_mm=4.0)
    case.ct, case.pet, case.true_activity, case.density, case.labels   # SimpleITK images (LPS)
    case.label_names, case.metadata                                    # organ names, what was drawn

Modules: :mod:`.torso` (anatomy), :mod:`.lesions` (tumours), :mod:`.ct_synthesis` (HU),
:mod:`.tracers` (uptake tables with sources), :mod:`.activity` (SUV → Bq/mL, mass balance),
:mod:`.pet_simulation` (scanner image), :mod:`.nema` (NEMA IEC body phantom),
:mod:`.reference_anatomies` (ICRP-110 AF and TotalSegmentator from ``../shared/data``).
Everything is numpy/SimpleITK (+ torch for interpolation), deterministic for a given seed.
"""
from __future__ import annotations

from .anatomy import Anatomy, Lesion
from .case import GENERATOR_VERSION, PhantomCase, case_from_anatomy, generate_case
from .labels import LABEL_VALUES, ORGAN_GROUPS, ORGAN_LABELS
from .lesions import LesionSpec, sample_lesions
from .nema import NemaPhantom, make_nema_phantom
from .pet_simulation import ScannerModel, simulate_emission_image
from .torso import TorsoParameters, generate_torso, sample_torso_parameters
from .tracers import TRACERS, TracerModel, get_tracer

__all__ = [
    "Anatomy", "GENERATOR_VERSION", "LABEL_VALUES", "Lesion", "LesionSpec", "NemaPhantom", "ORGAN_GROUPS",
    "ORGAN_LABELS", "PhantomCase", "ScannerModel", "TRACERS", "TorsoParameters", "TracerModel", "case_from_anatomy",
    "generate_case", "generate_torso", "get_tracer", "make_nema_phantom", "sample_lesions", "sample_torso_parameters",
    "simulate_emission_image",
]
