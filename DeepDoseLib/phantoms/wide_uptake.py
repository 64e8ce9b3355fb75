"""Training uptake that does not come from the tracer tables (issue 19, item 1: "a training distribution
that covers the clinic, not one tracer table").

The tracer tables (:mod:`.tracers`) give each organ a concentration from one tracer's biodistribution: a
network trained on them alone learned those patterns and nothing else (lung only ever active, lesions
only at the table's contrasts). This generator draws the activity map of a case from wide, table-free
ranges instead, and then images it like a PET or a SPECT scanner would:

- **organ concentrations** log-uniform over :attr:`WideUptakeRanges.organ_decades` decades around a body
  level that is itself log-uniform over :attr:`WideUptakeRanges.body_level_Bq_per_mL`;
- **lung, bone and bowel** active in a share of the cases only (:attr:`WideUptakeRanges.active_fraction`),
  otherwise without activity of their own (the lung failure of the bundled models);
- **lesions** (those the anatomy carries: sites and sizes come from the anatomy generator) at a contrast
  log-uniform over :attr:`WideUptakeRanges.lesion_contrast` × their surroundings; necrotic cores at
  :attr:`WideUptakeRanges.necrotic_core_factor` of the rim;
- **heterogeneous uptake inside organs**: a log-normal random field (standard deviation of ln
  :attr:`WideUptakeRanges.heterogeneity_sigma_ln`, correlation length
  :attr:`WideUptakeRanges.heterogeneity_length_mm`);
- **resolution and noise**: PET-like (:attr:`WideUptakeRanges.pet_fwhm_mm`) or, in a share of the cases,
  SPECT-like (:attr:`WideUptakeRanges.spect_fwhm_mm`), Gaussian blur conserving the total activity, then
  noise whose variance is proportional to the local activity (count statistics), scaled to a relative
  level drawn per case at the median tissue activity; negative values clipped.

The map returned is what a user gives to Deep-dose (the reconstructed image) and what the Monte Carlo
ground truth is computed from: the network learns the dose of the image it sees, as in Lee et al. 2019.

The generalization benchmark (``benchmarks/bench_generalization.py``) has a generator of its own with other
settings (two decades, smooth ±30 % heterogeneity, no noise, PET blur only), so it stays held out by
generator settings as well as by anatomy.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, Sequence, Tuple

import numpy as np

from .smooth import gaussian_blur, smooth_noise

#: substrings of label names, lower case (the procedural torso's and the real anatomies' names)
LUNG_NAMES = ("lung", "airway", "trachea", "bronch")
BONE_NAMES = ("spine", "vertebra", "pelvis", "rib", "bone", "skull", "femur", "humer", "shoulder", "sternum",
              "sacrum", "marrow", "clavic", "scapul")
BOWEL_NAMES = ("bowel", "colon", "intestine", "duodenum", "stomach", "rectum")


@dataclass(frozen=True)
class WideUptakeRanges:
    """Ranges of the training generator (units in the names; "decades" are powers of ten)."""

    body_level_Bq_per_mL: Tuple[float, float] = (1e3, 3e4)
    organ_decades: float = 3.0
    active_fraction: float = 0.5
    lesion_contrast: Tuple[float, float] = (1.0, 100.0)
    necrotic_core_factor: Tuple[float, float] = (0.02, 0.5)
    heterogeneity_sigma_ln: Tuple[float, float] = (0.0, 0.4)
    heterogeneity_length_mm: Tuple[float, float] = (8.0, 30.0)
    spect_fraction: float = 0.3
    pet_fwhm_mm: Tuple[float, float] = (4.0, 8.0)
    spect_fwhm_mm: Tuple[float, float] = (10.0, 15.0)
    pet_noise_relative: Tuple[float, float] = (0.0, 0.15)
    spect_noise_relative: Tuple[float, float] = (0.05, 0.25)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _kind(name: str) -> str:
    if any(s in name for s in LUNG_NAMES):
        return "lung"
    if any(s in name for s in BONE_NAMES):
        return "bone"
    if any(s in name for s in BOWEL_NAMES):
        return "bowel"
    return "organ"


def wide_uptake_activity(labels: np.ndarray, label_names: Dict[int, str], density_g_per_cm3: np.ndarray,
                         spacing_mm: Sequence[float], rng: np.random.Generator,
                         ranges: WideUptakeRanges = WideUptakeRanges()) -> Tuple[np.ndarray, dict]:
    """Activity image [Bq/mL] (z, y, x float32) of one case and the settings drawn (for its metadata).

    Args:
        labels, label_names: the anatomy's label map and names (lesions are the labels whose name holds
            "lesion"; a name holding "core" is a necrotic core).
        density_g_per_cm3: voxels below 0.05 g/cm³ (air, gas) hold no activity.
        spacing_mm: voxel size (x, y, z) [mm].
    """
    spacing = np.asarray([float(s) for s in spacing_mm])
    body_level = _log_uniform(rng, *ranges.body_level_Bq_per_mL)
    active = {kind: bool(rng.random() < ranges.active_fraction) for kind in ("lung", "bone", "bowel")}
    settings: dict = {"generator": "wide_uptake", "ranges": asdict(ranges), "body_level_Bq_per_mL": body_level,
                      **{f"{kind}_active": on for kind, on in active.items()}}
    half = 0.5 * ranges.organ_decades
    activity = np.zeros(labels.shape, np.float32)
    names = {int(k): str(v).lower() for k, v in label_names.items()}
    body = density_g_per_cm3 >= 0.05
    activity[body & (labels == 0)] = body_level  # unlabelled body: the background
    for k, name in sorted(names.items()):
        if k == 0 or "lesion" in name:
            continue
        mask = labels == k
        if not mask.any():
            continue
        kind = _kind(name)
        if kind != "organ" and not active[kind]:
            level = 0.0
        else:
            level = body_level * float(10 ** rng.uniform(-half, half))
        activity[mask] = level
        settings[f"level:{name}"] = level
    sigma_ln = float(rng.uniform(*ranges.heterogeneity_sigma_ln))
    length_mm = float(rng.uniform(*ranges.heterogeneity_length_mm))
    settings.update(heterogeneity_sigma_ln=sigma_ln, heterogeneity_length_mm=length_mm)
    if sigma_ln > 0:
        field = smooth_noise(labels.shape, float(length_mm / spacing.mean()), rng)
        activity *= np.exp(sigma_ln * field - 0.5 * sigma_ln ** 2).astype(np.float32)  # mean-preserving
    for k, name in sorted(names.items()):
        if "lesion" not in name or "core" in name:
            continue
        mask = labels == k
        if not mask.any():
            continue
        ring = _dilate(mask, 2) & ~mask & body
        host = float(np.median(activity[ring])) if ring.any() else body_level
        contrast = _log_uniform(rng, *ranges.lesion_contrast)
        level = max(host, 0.1 * body_level) * contrast
        activity[mask] = level
        settings[f"contrast:{name}"] = contrast
        for j, core in names.items():
            if core.startswith(name) and "core" in core:
                factor = float(rng.uniform(*ranges.necrotic_core_factor))
                activity[labels == j] = level * factor
                settings[f"core_factor:{core}"] = factor
    activity[~body] = 0.0
    spect = bool(rng.random() < ranges.spect_fraction)
    fwhm = float(rng.uniform(*(ranges.spect_fwhm_mm if spect else ranges.pet_fwhm_mm)))
    noise = float(rng.uniform(*(ranges.spect_noise_relative if spect else ranges.pet_noise_relative)))
    settings.update(modality="SPECT-like" if spect else "PET-like", fwhm_mm=fwhm, noise_relative=noise)
    image = gaussian_blur(activity, fwhm / 2.3548 / spacing, exact=True)
    image = np.clip(image, 0.0, None)
    if noise > 0:
        reference = float(np.median(image[body])) if body.any() else 0.0
        if reference > 0:  # variance ∝ activity: relative noise ``noise`` at the median tissue level
            sd = noise * np.sqrt(image * reference)
            image = image + sd * rng.standard_normal(image.shape).astype(np.float32)
    image = np.clip(image, 0.0, None).astype(np.float32)
    image[~body] = 0.0
    return image, settings


def _dilate(mask: np.ndarray, iterations: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_dilation(mask, iterations=iterations)
