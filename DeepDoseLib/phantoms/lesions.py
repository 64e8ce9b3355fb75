"""Tumours for the phantoms: liver, lymph-node, bone and lung lesions of 5–60 mm, some with necrotic cores.

Lesions are ellipsoids (axis ratios 0.85–1.15, random orientation) painted in world (LPS) space
over their host tissue only (a liver lesion never spills into the lung). Lymph nodes sit at the usual
nodal stations (para-aortic, iliac, obturator, mediastinal, hilar, supraclavicular, mesenteric,
inguinal). Lesions ≥ 25 mm get a necrotic core (35–60 % of the diameter) with probability 0.6.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from ..errors import DeepDoseInputError
from .anatomy import Anatomy, Lesion
from .canvas import Canvas, Region, rotation_matrix
from .labels import LABEL_VALUES as L
from .labels import lesion_labels

#: Diameter range [mm] per site (log-uniform draw).
DIAMETER_RANGE_mm = {"liver": (10.0, 60.0), "lymph_node": (5.0, 30.0), "bone": (10.0, 40.0), "lung": (5.0, 30.0)}
SITE_PROBABILITY = {"liver": 0.3, "lymph_node": 0.35, "bone": 0.2, "lung": 0.15}
_HOSTS = {"liver": ("liver",), "lung": ("lung_left", "lung_right"), "bone": ("spine", "pelvis", "ribs_and_sternum")}
_NODE_HOSTS = ("fat", "soft_tissue", "muscle", "bowel")
#: Nodal stations in template mm (x, y, z) of the procedural torso.
NODAL_STATIONS = [(35, 30, 300), (-40, 28, 290), (-5, 25, 330), (50, 25, 200), (-50, 25, 200), (75, 5, 130),
                  (-75, 5, 130), (55, 5, 95), (-55, 5, 95), (0, 10, 585), (15, -10, 650), (45, 5, 590),
                  (-45, 5, 590), (55, -10, 735), (-55, -10, 735), (10, -30, 300), (85, -60, 40), (-85, -60, 40)]
MAX_LESIONS = 8


@dataclass
class LesionSpec:
    """What to paint: site, diameter [mm], core diameter fraction (0 = solid), optional LPS centre [mm]."""

    site: str
    diameter_mm: float
    core_fraction: float = 0.0
    centre_mm: Optional[Tuple[float, float, float]] = None

    def __post_init__(self) -> None:
        if self.site not in DIAMETER_RANGE_mm:
            raise DeepDoseInputError(f"Unknown lesion site {self.site!r}; use one of {sorted(DIAMETER_RANGE_mm)}.")
        if not 1.0 <= self.diameter_mm <= 100.0:
            raise DeepDoseInputError(f"Lesion diameter must be 1–100 mm (got {self.diameter_mm}).")
        if not 0.0 <= self.core_fraction < 1.0:
            raise DeepDoseInputError("Necrotic core fraction must be in [0, 1).")


def sample_lesions(rng: np.random.Generator, n: Optional[int] = None) -> List[LesionSpec]:
    """0–6 random lesions (or ``n``), sites and sizes as in the module docstring."""
    if n is None:
        n = int(rng.choice(7, p=[0.08, 0.2, 0.22, 0.2, 0.15, 0.1, 0.05]))
    sites = list(SITE_PROBABILITY)
    out = []
    for _ in range(min(n, MAX_LESIONS)):
        site = str(rng.choice(sites, p=list(SITE_PROBABILITY.values())))
        lo, hi = DIAMETER_RANGE_mm[site]
        d = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        core = float(rng.uniform(0.35, 0.6)) if d >= 25 and rng.random() < 0.6 else 0.0
        out.append(LesionSpec(site, d, core))
    return out


def _world_region(canvas: Canvas, centre: Sequence[float], half: float) -> Optional[Region]:
    slices = []
    for i in range(3):
        a = int(np.searchsorted(canvas.axes[i], centre[i] - half - canvas.spacing[i], side="left"))
        b = int(np.searchsorted(canvas.axes[i], centre[i] + half + canvas.spacing[i], side="right"))
        if b <= a:
            return None
        slices.append(slice(a, b))
    sx, sy, sz = slices
    x = canvas.axes[0][sx].astype(np.float32)[None, None, :]
    y = canvas.axes[1][sy].astype(np.float32)[:, None][None]
    z = canvas.axes[2][sz].astype(np.float32)[:, None, None]
    shape = (sz.stop - sz.start, sy.stop - sy.start, sx.stop - sx.start)
    return Region((sz, sy, sx), *(np.broadcast_to(a, shape) for a in (x, y, z)))


def _pick_centre(canvas: Canvas, spec: LesionSpec, rng: np.random.Generator) -> Optional[np.ndarray]:
    if spec.centre_mm is not None:
        return np.asarray(spec.centre_mm, dtype=float)
    if spec.site == "lymph_node":
        station = np.asarray(NODAL_STATIONS[int(rng.integers(len(NODAL_STATIONS)))], dtype=float)
        return station * canvas.scale + rng.uniform(-8, 8, 3)
    host = np.isin(canvas.labels, [L[n] for n in _HOSTS[spec.site]])
    if not host.any():
        return None
    radius_vox = int(spec.diameter_mm / 4.0 / float(canvas.spacing.min()))
    if radius_vox >= 1 and spec.site != "bone":
        # a copy (GetArrayFromImage): a view of the temporary eroded image would read freed memory
        eroded = sitk.GetArrayFromImage(sitk.BinaryErode(sitk.GetImageFromArray(host.astype(np.uint8)),
                                                         [radius_vox] * 3)) > 0
        host = eroded if eroded.any() else host
    idx = np.flatnonzero(host)
    k, j, i = np.unravel_index(idx[int(rng.integers(idx.size))], canvas.shape)
    return np.array([canvas.axes[0][i], canvas.axes[1][j], canvas.axes[2][k]], dtype=float)


def paint_lesions(canvas: Canvas, specs: Sequence[LesionSpec], rng: np.random.Generator) -> List[Lesion]:
    """Paint ``specs`` into ``canvas.labels``; returns the lesions actually painted (≥ 1 voxel)."""
    painted: List[Lesion] = []
    for spec in list(specs)[:MAX_LESIONS]:
        centre = _pick_centre(canvas, spec, rng)
        if centre is None:
            continue
        ratios = rng.uniform(0.85, 1.15, 3)
        axes = spec.diameter_mm / 2.0 * ratios / np.cbrt(np.prod(ratios))
        rot = rotation_matrix(*rng.uniform(0, 180, 3))
        reg = _world_region(canvas, centre, float(axes.max()))
        if reg is None:
            continue
        hosts = _NODE_HOSTS if spec.site == "lymph_node" else _HOSTS[spec.site]
        rim, core = lesion_labels(len(painted))
        q = reg.ellipsoid(centre, axes, rot)
        n = canvas.paint(reg, q <= 1.0, rim, only=[L[h] for h in hosts])
        if n == 0:
            continue
        core_d = 0.0
        if spec.core_fraction > 0:
            if canvas.paint(reg, q <= spec.core_fraction ** 2, core, only=[rim]) > 0:
                core_d = spec.core_fraction * spec.diameter_mm
        painted.append(Lesion(spec.site, tuple(float(c) for c in centre), float(spec.diameter_mm), core_d, rim, core))
    return painted


def add_lesions(anatomy: Anatomy, specs: Sequence[LesionSpec], rng: np.random.Generator) -> Anatomy:
    """A copy of ``anatomy`` (e.g. a real CT) with lesions painted over their host organs.

    Lymph nodes need the procedural torso's nodal stations: give liver, lung and bone sites (or explicit
    centres). Where the anatomy carries a CT, non-bone lesions get the CT number of their tissue class
    (mid-range of :data:`.ct_synthesis.TISSUE_HU`: a lung lesion is a solid nodule, not lung); bone
    lesions keep the CT of the bone they replace.
    """
    from .anatomy import label_info_for
    from .ct_synthesis import TISSUE_HU

    if any(s.site == "lymph_node" and s.centre_mm is None for s in specs):
        raise DeepDoseInputError("Lymph-node lesions need an explicit centre outside the procedural torso.")
    canvas = Canvas(anatomy.labels.shape, anatomy.origin_mm, anatomy.spacing_mm)
    canvas.labels = anatomy.labels.copy()
    painted = paint_lesions(canvas, specs, rng)
    info = {**anatomy.label_info, **label_info_for(np.unique(canvas.labels), painted)}
    hu = None if anatomy.hu is None else anatomy.hu.copy()
    if hu is not None:
        for value, item in info.items():
            if value in anatomy.label_info or item.tissue == "tumour_bone":
                continue
            lo, hi = TISSUE_HU[item.tissue][:2]
            hu[canvas.labels == value] = 0.5 * (lo + hi)
    return Anatomy(canvas.labels, anatomy.spacing_mm, anatomy.origin_mm, {v: i.name for v, i in info.items()}, info,
                   list(anatomy.lesions) + painted, anatomy.source, anatomy.family, anatomy.direction, hu,
                   {**anatomy.parameters, "added_lesions": [lesion.as_dict() for lesion in painted]})
