"""The error floor of Deep-dose's uncertainty map, measured on cases the model did not train on.

The map of :mod:`.safety` is ``u_D = sqrt(u² + g²)``: the spread ``u`` of the mirrored passes and half the gap ``g``
between the network and its physics baseline. Both are zero for an error that the network and the baseline
share — the baseline's photon scatter in lung or bone, say, where a network that learned little leaves it in
place. Measured on the held-out benchmark, the map alone covered the Monte Carlo within ±2σ in 26 % (Ga-68) and
1 % (Lu-177) of the voxels; the coverage the cards showed came from the reference's own noise.

The floor is what the map misses, measured per material class c (lung, adipose, soft tissue, bone: the density
classes of :func:`DeepDoseLib.tissue.density_to_material`) on cases the model did not train on (its validation and
test cases), whose MC references carry their own σ_MC. It is the smallest f_c with which the criterion of the
benchmark holds in :data:`TARGET_COVERAGE` of the class's metric voxels (tissue above 10 % of the reference's
maximum, :func:`.evaluation.metric_voxels`):

    |D − MC| ≤ 2·sqrt((u_D² + f_c²)·D² + σ_MC²)

A quantile, not a mean of squares: the errors have heavy tails (edges, lesion rims), and a mean-of-squares estimate
(``f_c² = mean[((D − MC)/D)² − u_D² − (σ_MC/D)²]``, kept in the card as ``rms_floor`` for comparison) covers them
unevenly. The map written beside the dose rate becomes ``sqrt(u_D² + f_c²)``. A class with fewer than
:data:`MIN_VOXELS` metric voxels (bone, in most cases) gets the largest floor of the others. The floors are kept in
the model card (``uncertainty_floor``) with the cases they were measured on and the coverage on those cases
before and after.

The references' own noise enters the criterion: references noisier than the benchmark's (3e6–1e7 decays here,
2e7–1e8 there) are covered with smaller floors, so the floors are a lower bound for less noisy references; the
benchmark measures the coverage that results.

Limits, written in the card: the floor is a constant per class, measured on the uptake the model's validation
cases have (the tracer tables for the bundled Lu-177 model); errors concentrated in a few structures (a whole bone
or lung biased) are spread over every voxel of the class.
"""
from __future__ import annotations

from typing import Dict, Iterable, Optional

import numpy as np

from ..tissue import density_to_material, material_names
from .evaluation import metric_voxels

#: Card key of the section.
CARD_KEY = "uncertainty_floor"
#: Material classes that get a floor (others, e.g. air, get none).
FLOOR_CLASSES = ("lung", "adipose", "soft_tissue", "bone")
#: Fewest metric voxels of a class for a floor of its own (else the largest floor of the other classes).
MIN_VOXELS = 200
#: Share of a class's metric voxels that the criterion must cover on the calibration cases.
TARGET_COVERAGE = 0.95


def floor_map(density_g_per_cm3: np.ndarray, floors: Dict[str, float]) -> np.ndarray:
    """Relative floor [fraction] per voxel from the card's per-class floors (0 for classes without one)."""
    labels = density_to_material(density_g_per_cm3)
    out = np.zeros(labels.shape, np.float32)
    for label, name in material_names().items():
        if name in floors:
            out[labels == label] = float(floors[name])
    return out


def card_floors(card: dict) -> Optional[Dict[str, float]]:
    """The per-class floors [fraction] of a model card, or None when it has none."""
    section = card.get(CARD_KEY) if isinstance(card, dict) else None
    floors = section.get("floors") if isinstance(section, dict) else None
    if not isinstance(floors, dict) or not floors:
        return None
    return {str(k): float(v) for k, v in floors.items()}


def _covered(err, sd_map, sd_mc) -> float:
    """Share [fraction] of voxels with |D − MC| ≤ 2·sqrt(σ_D² + σ_MC²): the criterion of the benchmark and of the
    floor (absolute errors and standard deviations, one value per voxel)."""
    return float(np.mean(err <= 2 * np.sqrt(sd_map ** 2 + sd_mc ** 2)))


def coverage_pct(dose, reference, reference_sigma, u_total, mask) -> float:
    """Share [%] of ``mask`` voxels with |D − MC| ≤ 2·sqrt((u·D)² + σ_MC²) (``reference_sigma`` zero: the map
    alone)."""
    return 100 * _covered(np.abs(dose[mask] - reference[mask]), u_total[mask] * dose[mask], reference_sigma[mask])


def _smallest_floor(err: np.ndarray, sd_map: np.ndarray, sd_mc: np.ndarray, dose: np.ndarray) -> float:
    """Smallest f in [0, 1] with mean(err ≤ 2·sqrt(sd_map² + (f·dose)² + sd_mc²)) ≥ TARGET_COVERAGE (1 if none)."""
    def covered(f):
        return _covered(err, np.sqrt(sd_map ** 2 + (f * dose) ** 2), sd_mc)

    if covered(0.0) >= TARGET_COVERAGE:
        return 0.0
    if covered(1.0) < TARGET_COVERAGE:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if covered(mid) >= TARGET_COVERAGE else (mid, hi)
    return hi


def measure_floors(samples: Iterable[tuple]) -> dict:
    """Per-class floors from ``(name, D, u_D, MC, σ_MC, density)`` samples (arrays on one grid; D, MC, σ_MC in
    the same unit; u_D relative). Returns the card section without its provenance: ``floors`` [fraction],
    ``rms_floor`` (the mean-of-squares estimate, for comparison), metric ``voxels`` per class and the coverage [%]
    per case before and after."""
    parts = {c: [] for c in FLOOR_CLASSES}
    kept = []
    names = material_names()
    for name, dose, u_total, ref, sigma, rho in samples:
        hot = metric_voxels(ref, rho) & (dose > 0)
        labels = density_to_material(rho)
        for label, cls in names.items():
            if cls in parts:
                sel = hot & (labels == label)
                parts[cls].append(np.stack([np.abs(dose[sel] - ref[sel]), u_total[sel] * dose[sel], sigma[sel],
                                            dose[sel]]).astype(np.float64))
        kept.append((name, dose, u_total, ref, sigma, rho, hot))
    measured, rms = {}, {}
    for cls, blocks in parts.items():
        err, sd_map, sd_mc, dose = np.concatenate(blocks, axis=1) if blocks else np.zeros((4, 0))
        if err.size >= MIN_VOXELS:
            measured[cls] = _smallest_floor(err, sd_map, sd_mc, dose)
            excess = (err / dose) ** 2 - (sd_map / dose) ** 2 - (sd_mc / dose) ** 2
            rms[cls] = float(np.sqrt(max(0.0, float(excess.mean()))))
    fill = max(measured.values(), default=0.0)
    floors = {c: measured.get(c, fill) for c in FLOOR_CLASSES}
    before, after = {}, {}
    for name, dose, u_total, ref, sigma, rho, hot in kept:
        before[name] = coverage_pct(dose, ref, sigma, u_total, hot)
        with_floor = np.sqrt(u_total ** 2 + floor_map(rho, floors) ** 2)
        after[name] = coverage_pct(dose, ref, sigma, with_floor, hot)
    return {"floors": floors, "measured": sorted(measured), "rms_floor": rms,
            "target_coverage": TARGET_COVERAGE,
            "voxels": {c: int(sum(b.shape[1] for b in blocks)) for c, blocks in parts.items()},
            "coverage_2sigma_pct_before": before, "coverage_2sigma_pct_after": after}
