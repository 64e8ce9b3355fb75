"""CT synthesis: HU per tissue with texture, cortical bone, partial volume and scanner noise.

Per case, each tissue gets a mean HU drawn uniformly from the ranges below (unenhanced CT of
adults); textures are zero-mean per label so the organ means are exactly the drawn values before
partial volume and noise. Mass density then comes from the project's HU → density calibration
(:func:`DeepDoseLib.tissue.hu_to_density`), exactly as for a patient CT.

Sources of the HU ranges (typical unenhanced adult values):
[Hofer] M. Hofer, *CT Teaching Manual*, Thieme (table of typical attenuation values of organs).
[Boll09] D.T. Boll, E.M. Merkle, RadioGraphics 29:1591 (2009): normal unenhanced liver 50–65 HU,
    about 8–10 HU above the spleen.
[Pick13] P.J. Pickhardt et al., Ann Intern Med 158:588 (2013): L1 trabecular bone ≈ 150–300 HU in adults
    without osteoporosis (threshold ≈ 160 HU).
[Kvist88] H. Kvist et al., Am J Clin Nutr 48:1351 (1988): adipose tissue window −190 … −30 HU (mean ≈ −100 HU).
[Good00] B.H. Goodpaster et al., J Appl Physiol 89:104 (2000): normal-density skeletal muscle ≈ 40–55 HU.
[lung] healthy adult mean lung density ≈ −800 … −870 HU between mid and full inspiration (typical values
    of quantitative lung CT; the Schneider 2000 lung segment spans −950 … −120 HU).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

from .anatomy import Anatomy
from .smooth import gaussian_blur, smooth_noise

#: tissue → (HU low, HU high, texture SD [HU], source). Mean HU of a case is drawn in [low, high].
TISSUE_HU: Dict[str, Tuple[float, float, float, str]] = {
    "air": (-1000.0, -1000.0, 0.0, "air"),
    "gas": (-1000.0, -960.0, 10.0, "air in bowel / airways"),
    "lung": (-870.0, -800.0, 30.0, "lung"),
    "fat": (-115.0, -85.0, 10.0, "Kvist88"),
    "muscle": (40.0, 55.0, 8.0, "Good00, Hofer"),
    "soft_tissue": (20.0, 45.0, 10.0, "Hofer"),
    "blood": (35.0, 50.0, 5.0, "Hofer"),
    "liver": (50.0, 65.0, 7.0, "Boll09"),
    "spleen": (40.0, 52.0, 6.0, "Boll09, Hofer"),
    "kidney_cortex": (28.0, 40.0, 7.0, "Hofer"),
    "kidney_medulla": (22.0, 35.0, 7.0, "Hofer"),
    "pancreas": (30.0, 50.0, 9.0, "Hofer"),
    "stomach": (10.0, 35.0, 12.0, "wall and fluid contents, Hofer"),
    "bowel": (10.0, 40.0, 14.0, "wall and contents, Hofer"),
    "urine": (0.0, 15.0, 4.0, "Hofer"),
    "thyroid": (70.0, 120.0, 10.0, "iodine-rich gland, Hofer"),
    "parotid": (-20.0, 30.0, 12.0, "fatty gland, Hofer"),
    "submandibular": (25.0, 50.0, 10.0, "Hofer"),
    "spinal_cord": (25.0, 40.0, 5.0, "Hofer"),
    "brain": (25.0, 40.0, 4.0, "Hofer"),
    "bone": (150.0, 300.0, 35.0, "trabecular bone, Pick13"),
    "tumour_liver": (25.0, 45.0, 8.0, "hypoattenuating metastasis, Hofer"),
    "tumour_lymph_node": (30.0, 50.0, 7.0, "lymph node 45 ± 10 HU, Hofer"),
    "tumour_lung": (20.0, 50.0, 10.0, "solid nodule"),
    "tumour_bone": (60.0, 900.0, 40.0, "lytic (60–150) or sclerotic (300–900) metastasis"),
    "necrosis": (5.0, 25.0, 5.0, "fluid-like necrosis"),
}
#: Cortical bone [HU] and thickness [mm]: bone surface voxels mix cortex and trabecular bone.
CORTICAL_HU = (1100.0, 1600.0)
CORTICAL_THICKNESS_mm = 1.5
#: Scanner noise of a low-dose PET/CT CT at 1 × 1 × 3 mm³ voxels [HU]; scaled by √(V_ref / V_voxel).
NOISE_SD_REF_HU = (15.0, 35.0)
NOISE_REF_VOXEL_mm3 = 3.0


@dataclass
class SyntheticCT:
    """CT [HU] (z, y, x) float32 and what was drawn (per-label mean HU, noise SD per voxel)."""

    hu: np.ndarray
    label_mean_hu: Dict[int, float]
    noise_sd_HU: float


def _draw_mean_hu(anatomy: Anatomy, rng: np.random.Generator) -> Dict[int, float]:
    per_tissue: Dict[str, float] = {}
    out = {}
    for value, info in sorted(anatomy.label_info.items()):
        lo, hi = TISSUE_HU[info.tissue][:2]
        if info.tissue == "tumour_bone":  # sclerotic (60 %) or lytic
            lo, hi = (300.0, 900.0) if rng.random() < 0.6 else (60.0, 150.0)
            out[value] = float(rng.uniform(lo, hi))
        elif info.tissue.startswith("tumour") or info.tissue == "necrosis":
            out[value] = float(rng.uniform(lo, hi))
        else:
            if info.tissue not in per_tissue:
                per_tissue[info.tissue] = float(rng.uniform(lo, hi))
            out[value] = per_tissue[info.tissue]
    return out


def _surface(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` with at least one 6-neighbour outside it."""
    inner = mask.copy()
    for axis in range(3):
        for shift in (1, -1):
            rolled = np.roll(mask, shift, axis=axis)
            edge = [slice(None)] * 3
            edge[axis] = slice(0, 1) if shift == 1 else slice(-1, None)
            rolled[tuple(edge)] = False
            inner &= rolled
    return mask & ~inner


def synthesize_ct(anatomy: Anatomy, rng: np.random.Generator, *, partial_volume: bool = True,
                  noise_sd_ref_HU: Optional[float] = None) -> SyntheticCT:
    """CT [HU] of ``anatomy`` on its own grid.

    Texture: two zero-mean correlated fields per voxel (fine ~1 voxel, coarse ~12 mm) scaled by the
    tissue's texture SD and made exactly zero-mean in every label; lung gets vessels. Bone: surface
    voxels mix cortex (``CORTICAL_THICKNESS_mm``) with trabecular bone. Partial volume and the CT
    system blur: Gaussian of σ = 0.4 voxel. Noise: σ = σ_ref √(3 mm³ / V_voxel), lightly correlated.
    """
    labels = anatomy.labels
    spacing = np.asarray(anatomy.spacing_mm, dtype=float)
    means = _draw_mean_hu(anatomy, rng)
    lut_mean = np.full(256, -1000.0, dtype=np.float32)
    lut_tex = np.zeros(256, dtype=np.float32)
    for value, mean in means.items():
        lut_mean[value] = mean
        lut_tex[value] = TISSUE_HU[anatomy.label_info[value].tissue][2]
    hu = lut_mean[labels]

    coarse_sigma = 12.0 / spacing
    texture = 0.8 * smooth_noise(labels.shape, 0.7, rng) + 0.6 * smooth_noise(labels.shape, coarse_sigma, rng)
    texture *= lut_tex[labels]
    counts = np.bincount(labels.ravel(), minlength=256).astype(np.float64)
    sums = np.bincount(labels.ravel(), weights=texture.ravel(), minlength=256)
    texture -= (sums / np.maximum(counts, 1)).astype(np.float32)[labels]
    hu += texture

    lung_values = [v for v, i in anatomy.label_info.items() if i.tissue == "lung"]
    if lung_values:
        lung = np.isin(labels, lung_values)
        vessels = lung & (smooth_noise(labels.shape, 0.8, rng) > 1.5)
        hu[vessels] += rng.uniform(150.0, 400.0)

    bone_values = [v for v, i in anatomy.label_info.items() if i.tissue == "bone"]
    if bone_values:
        bone = np.isin(labels, bone_values)
        shell = _surface(bone)
        fraction = min(1.0, CORTICAL_THICKNESS_mm / float(spacing.mean()))
        cortex = float(rng.uniform(*CORTICAL_HU))
        hu[shell] = fraction * cortex + (1.0 - fraction) * hu[shell]

    if partial_volume:
        hu = gaussian_blur(hu, 0.4)
    sd_ref = float(noise_sd_ref_HU if noise_sd_ref_HU is not None else rng.uniform(*NOISE_SD_REF_HU))
    sd = sd_ref * float(np.sqrt(NOISE_REF_VOXEL_mm3 / np.prod(spacing)))
    noise = smooth_noise(labels.shape, 0.5, rng) * sd
    hu = np.clip(np.rint(hu + noise), -1024.0, 3071.0).astype(np.float32)
    return SyntheticCT(hu, means, sd)
