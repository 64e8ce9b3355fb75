"""The :class:`Anatomy` record every anatomy source returns, and reference organ sizes (ICRP 89)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np
import SimpleITK as sitk

from .labels import ORGAN_GROUPS, ORGAN_LABELS, LabelInfo

#: ICRP Publication 89 (2002), Table 2.8: reference adult organ masses [g] as (female, male).
#: Heart = wall + blood content; stomach = wall + contents; kidneys, lungs etc. both organs together.
ICRP89_MASS_g: Dict[str, Tuple[float, float]] = {
    "liver": (1400.0, 1800.0),
    "spleen": (130.0, 150.0),
    "kidneys": (275.0, 310.0),
    "pancreas": (120.0, 140.0),
    "thyroid": (17.0, 20.0),
    "salivary_glands": (70.0, 85.0),
    "heart": (620.0, 840.0),
    "stomach": (370.0, 400.0),
}
#: Soft-tissue density used to turn ICRP 89 masses into volumes [g/cm³] (ICRU 44 soft tissue 1.03–1.06).
SOFT_TISSUE_DENSITY_g_per_cm3 = 1.04
#: Population spread allowed around the reference values: 0.7 × female … 1.4 × male. CT volumetry
#: of adult organs shows coefficients of variation of about 20–25 % (e.g. liver, spleen, kidneys), so
#: this band spans roughly ±1.5–2 SD of a mixed adult population.
POPULATION_BAND = (0.7, 1.4)
#: Lung volume (air + tissue) on a CT acquired between functional residual capacity and total lung
#: capacity [mL]: ICRP 89 gives FRC ≈ 2.7–3.3 L and TLC ≈ 5.4–7.0 L (female–male).
LUNG_VOLUME_RANGE_mL = (2500.0, 7000.0)


def reference_volume_range_mL(organ: str) -> Tuple[float, float]:
    """Plausible adult volume range [mL] of an organ (group) from ICRP 89 masses (see POPULATION_BAND)."""
    if organ == "lungs":
        return LUNG_VOLUME_RANGE_mL
    female, male = ICRP89_MASS_g[organ]
    lo, hi = POPULATION_BAND
    return lo * female / SOFT_TISSUE_DENSITY_g_per_cm3, hi * male / SOFT_TISSUE_DENSITY_g_per_cm3


@dataclass
class Lesion:
    """A tumour: site (liver, lymph_node, bone, lung), LPS centre [mm], diameter [mm], necrotic core."""

    site: str
    centre_mm: Tuple[float, float, float]
    diameter_mm: float
    core_diameter_mm: float
    label: int
    core_label: int

    def as_dict(self) -> dict:
        return {"site": self.site, "centre_mm": [round(float(c), 2) for c in self.centre_mm],
                "diameter_mm": round(float(self.diameter_mm), 2), "core_diameter_mm": round(float(self.core_diameter_mm), 2),
                "label": self.label, "core_label": self.core_label}


@dataclass
class Anatomy:
    """Labelled anatomy on a regular LPS grid.

    Attributes:
        labels: (z, y, x) uint8 label map (values of :mod:`DeepDoseLib.phantoms.labels`, lesions ≥ 100).
        spacing_mm: (x, y, z); origin_mm: LPS position of voxel (0, 0, 0); direction: 9 floats (row-major).
        label_names: value → name for every value present (organs and lesions).
        label_info: value → :class:`LabelInfo` (tissue and tracer compartment) for every value present.
        lesions: the tumours painted into the labels.
        source: "procedural", "icrp110_af", "totalsegmentator", ...; family: generator family / anatomy id.
        hu: optional (z, y, x) float32 CT [HU] that comes with the anatomy (real CT); None → synthesised.
        parameters: what produced it (for the metadata JSON).
    """

    labels: np.ndarray
    spacing_mm: Tuple[float, float, float]
    origin_mm: Tuple[float, float, float]
    label_names: Dict[int, str]
    label_info: Dict[int, LabelInfo]
    lesions: List[Lesion] = field(default_factory=list)
    source: str = "procedural"
    family: str = "standard"
    direction: Tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    hu: "np.ndarray | None" = None
    parameters: dict = field(default_factory=dict)

    @property
    def voxel_volume_mL(self) -> float:
        return float(np.prod(self.spacing_mm)) * 1e-3

    def reference_image(self) -> sitk.Image:
        """An empty float32 image carrying this anatomy's grid (size, spacing, origin, direction)."""
        image = sitk.Image([int(s) for s in self.labels.shape[::-1]], sitk.sitkFloat32)
        image.SetSpacing([float(s) for s in self.spacing_mm])
        image.SetOrigin([float(o) for o in self.origin_mm])
        image.SetDirection([float(d) for d in self.direction])
        return image

    def to_image(self, array: np.ndarray) -> sitk.Image:
        """Wrap a (z, y, x) array as an image on this anatomy's grid."""
        image = sitk.GetImageFromArray(np.ascontiguousarray(array))
        image.CopyInformation(self.reference_image())
        return image

    def organ_mask(self, organ: str) -> np.ndarray:
        """Boolean mask of an organ name or organ group (see ``ORGAN_GROUPS``)."""
        names = ORGAN_GROUPS.get(organ, (organ,))
        values = [v for v, n in self.label_names.items() if n in names]
        return np.isin(self.labels, values)

    def organ_volume_mL(self, organ: str) -> float:
        return float(self.organ_mask(organ).sum()) * self.voxel_volume_mL


def label_info_for(values, lesions: List[Lesion]) -> Dict[int, LabelInfo]:
    """LabelInfo for organ labels and lesion rims/cores present in ``values``."""
    info = {int(v): ORGAN_LABELS[int(v)] for v in values if int(v) in ORGAN_LABELS}
    for i, lesion in enumerate(lesions):
        info[lesion.label] = LabelInfo(lesion.label, f"lesion_{i + 1:02d}_{lesion.site}", f"tumour_{lesion.site}",
                                       f"tumour_{lesion.site}")
        if lesion.core_diameter_mm > 0:
            info[lesion.core_label] = LabelInfo(lesion.core_label, f"lesion_{i + 1:02d}_{lesion.site}_necrotic_core",
                                                "necrosis", "necrosis")
    return info
