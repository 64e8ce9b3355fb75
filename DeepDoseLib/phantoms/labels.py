"""The organ label scheme shared by every anatomy source (procedural torso, ICRP-110, TotalSegmentator).

Each label has a name (TotalSegmentator-like where one exists, e.g. ``kidney_left_cortex``,
``urinary_bladder``), a CT tissue class (key of :data:`DeepDoseLib.phantoms.ct_synthesis.TISSUE_HU`)
and a tracer compartment (key of the uptake tables in :mod:`DeepDoseLib.phantoms.tracers`;
``None`` = no activity, e.g. gas). Lesions get labels from :data:`FIRST_LESION_LABEL` on, two per
lesion (rim, necrotic core), named per case.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional


@dataclass(frozen=True)
class LabelInfo:
    """One organ label: value in the label map, name, CT tissue class, tracer compartment."""

    value: int
    name: str
    tissue: str
    compartment: Optional[str]


_TABLE = [
    (0, "background", "air", None),
    (1, "soft_tissue", "soft_tissue", "soft_tissue"),
    (2, "fat", "fat", "fat"),
    (3, "muscle", "muscle", "muscle"),
    (4, "lung_left", "lung", "lung"),
    (5, "lung_right", "lung", "lung"),
    (6, "heart", "blood", "blood_pool"),
    (7, "great_vessels", "blood", "blood_pool"),
    (8, "liver", "liver", "liver"),
    (9, "spleen", "spleen", "spleen"),
    (10, "stomach", "stomach", "stomach"),
    (11, "bowel", "bowel", "bowel"),
    (12, "gastrointestinal_gas", "gas", None),
    (13, "pancreas", "pancreas", "pancreas"),
    (14, "kidney_left_cortex", "kidney_cortex", "kidney_cortex"),
    (15, "kidney_left_medulla", "kidney_medulla", "kidney_medulla"),
    (16, "kidney_right_cortex", "kidney_cortex", "kidney_cortex"),
    (17, "kidney_right_medulla", "kidney_medulla", "kidney_medulla"),
    (18, "urinary_bladder", "urine", "urine"),
    (19, "spine", "bone", "bone"),
    (20, "ribs_and_sternum", "bone", "bone"),
    (21, "pelvis", "bone", "bone"),
    (22, "shoulder_girdle", "bone", "bone"),
    (23, "mandible", "bone", "bone"),
    (24, "spinal_cord", "spinal_cord", "soft_tissue"),
    (25, "airways", "gas", None),
    (26, "thyroid", "thyroid", "thyroid"),
    (27, "parotid_left", "parotid", "parotid"),
    (28, "parotid_right", "parotid", "parotid"),
    (29, "submandibular_left", "submandibular", "submandibular"),
    (30, "submandibular_right", "submandibular", "submandibular"),
    (31, "brain", "brain", "brain"),
    (32, "skull", "bone", "bone"),
    (33, "limb_bones", "bone", "bone"),
    (34, "other_bone", "bone", "bone"),
]

#: Label value → :class:`LabelInfo` of the organ labels (lesions excluded).
ORGAN_LABELS: Dict[int, LabelInfo] = {v: LabelInfo(v, n, t, c) for v, n, t, c in _TABLE}
#: Organ name → label value.
LABEL_VALUES: Dict[str, int] = {info.name: v for v, info in ORGAN_LABELS.items()}
#: First label value used for lesions (lesion i: rim ``FIRST_LESION_LABEL + 2 i``, core ``+ 1``).
FIRST_LESION_LABEL = 100
#: Organs made of several labels, for organ-level statistics and tests.
ORGAN_GROUPS: Dict[str, tuple] = {
    "kidney_left": ("kidney_left_cortex", "kidney_left_medulla"),
    "kidney_right": ("kidney_right_cortex", "kidney_right_medulla"),
    "kidneys": ("kidney_left_cortex", "kidney_left_medulla", "kidney_right_cortex", "kidney_right_medulla"),
    "lungs": ("lung_left", "lung_right"),
    "parotids": ("parotid_left", "parotid_right"),
    "submandibular_glands": ("submandibular_left", "submandibular_right"),
    "salivary_glands": ("parotid_left", "parotid_right", "submandibular_left", "submandibular_right"),
}


def lesion_labels(index: int) -> tuple:
    """(rim label, necrotic-core label) of lesion ``index`` (0-based)."""
    return FIRST_LESION_LABEL + 2 * index, FIRST_LESION_LABEL + 2 * index + 1


def organ_label_names() -> Dict[int, str]:
    """Label value → name of the organ labels."""
    return {v: info.name for v, info in ORGAN_LABELS.items()}
