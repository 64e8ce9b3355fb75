"""Block phantoms: a homogeneous soft-tissue block with a few uniform inserts (lung, adipose, bone, soft).

Patient anatomies never show the network a large homogeneous region with exactly uniform activity,
the one case with an analytic answer (charged-particle equilibrium plus the photon dose of the finite
block), nor a lung or bone region bounded by flat faces. Block cases fill that gap in training sets
(``deepdose dataset --block-fraction``). Every region has one density and one exactly uniform
activity concentration; the "PET" of a block case is that true activity (an ideal scanner).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Tuple

import numpy as np

from ..tissue import hu_to_density
from .labels import LABEL_VALUES

#: Insert materials: (label name, density range [g/cm³], activity ratio range to the block (log-uniform)).
INSERT_MATERIALS: Dict[str, Tuple[str, Tuple[float, float], Tuple[float, float]]] = {
    "lung": ("lung_left", (0.15, 0.45), (0.05, 2.0)),
    "adipose": ("fat", (0.92, 0.97), (0.05, 1.0)),
    "bone": ("other_bone", (1.15, 1.75), (0.05, 10.0)),
    "soft": ("muscle", (1.00, 1.08), (0.0, 20.0)),
}
#: Block edge lengths [mm] (each axis drawn separately) and background activity [Bq/mL] (log-uniform).
BLOCK_EDGE_mm = (100.0, 260.0)
BACKGROUND_Bq_per_mL = (2e3, 5e4)


@dataclass
class BlockPhantom:
    """(z, y, x) arrays on one grid: ``hu`` [HU], ``density`` [g/cm³], ``activity`` [Bq/mL], ``labels``
    (uint8, :mod:`.labels` values); ``spacing_mm`` (x, y, z); ``origin_mm`` (LPS of voxel 0)."""

    hu: np.ndarray
    density: np.ndarray
    activity: np.ndarray
    labels: np.ndarray
    spacing_mm: Tuple[float, float, float]
    origin_mm: Tuple[float, float, float]
    label_names: Dict[int, str] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def generate_block_phantom(rng: np.random.Generator, spacing_mm: float = 4.0) -> BlockPhantom:
    """A random soft-tissue block (10–26 cm per axis, 0–3 voxels of air around it) with 0–3 inserts
    (boxes or spheres of 2–10 cm, materials of :data:`INSERT_MATERIALS`, later inserts over earlier)."""
    from .reference_anatomies import density_to_hu

    s = float(spacing_mm)
    edges = [int(round(rng.uniform(*BLOCK_EDGE_mm) / s)) for _ in range(3)]  # (z, y, x) voxels
    margins = [int(rng.integers(0, 4)) for _ in range(3)]
    shape = tuple(e + 2 * m for e, m in zip(edges, margins))
    density = np.full(shape, float(hu_to_density(np.array([-1000.0]))[0]), np.float32)
    activity = np.zeros(shape, np.float32)
    labels = np.zeros(shape, np.uint8)
    bone = np.zeros(shape, bool)
    body = tuple(slice(m, m + e) for m, e in zip(margins, edges))
    background = _log_uniform(rng, *BACKGROUND_Bq_per_mL)
    block_density = float(np.clip(rng.normal(1.03, 0.02), 0.98, 1.08))
    density[body], activity[body], labels[body] = block_density, background, LABEL_VALUES["soft_tissue"]
    inserts = []
    zyx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).astype(np.float32)
    for _ in range(int(rng.choice(4, p=[0.25, 0.3, 0.27, 0.18]))):
        material = str(rng.choice(list(INSERT_MATERIALS)))
        name, (rho_lo, rho_hi), (ratio_lo, ratio_hi) = INSERT_MATERIALS[material]
        size = np.array([rng.uniform(20.0, 100.0) / s for _ in range(3)])
        size = np.minimum(size, np.array(edges) - 2)
        centre = np.array([rng.uniform(m + h, m + e - h) for m, e, h in zip(margins, edges, size / 2)])
        sphere = bool(rng.random() < 0.5)
        rel = (zyx + 0.5 - centre) / (size / 2)
        mask = (rel ** 2).sum(-1) <= 1.0 if sphere else (np.abs(rel) <= 1.0).all(-1)
        rho = rng.uniform(rho_lo, rho_hi)
        ratio = rng.uniform(0.0, ratio_hi) if ratio_lo == 0.0 else _log_uniform(rng, ratio_lo, ratio_hi)
        density[mask], activity[mask], labels[mask] = rho, background * ratio, LABEL_VALUES[name]
        bone[mask] = material == "bone"
        inserts.append({"material": material, "shape": "sphere" if sphere else "box",
                        "size_mm": [round(float(v * s), 1) for v in size],
                        "centre_voxel_zyx": [round(float(c), 2) for c in centre],
                        "density_g_per_cm3": round(float(rho), 4), "activity_ratio": round(float(ratio), 4)})
    bone &= labels == LABEL_VALUES["other_bone"]  # an insert drawn over a bone insert is not bone
    hu = density_to_hu(density, bone)
    names = {int(v): n for n, v in LABEL_VALUES.items() if v in np.unique(labels)}
    origin = tuple(-0.5 * s * (n - 1) for n in shape[::-1])
    meta = {"source": "block", "block_mm": [round(e * s, 1) for e in edges[::-1]], "air_margin_voxels": margins[::-1],
            "background_Bq_per_mL": round(background, 3), "block_density_g_per_cm3": round(block_density, 4),
            "inserts": inserts, "pet": "ideal (the true activity)"}
    # the density the dose engines see is the one of the CT (the calibration round trip)
    return BlockPhantom(hu, hu_to_density(hu).astype(np.float32), activity, labels, (s, s, s), origin, names, meta)
