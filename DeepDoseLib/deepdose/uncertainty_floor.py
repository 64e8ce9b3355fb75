"""The error floor of Deep-dose's uncertainty map, measured on cases the model did not train on.

The map of :mod:`.safety` is ``u_D = sqrt(u² + g²)``: the spread ``u`` of the mirrored passes and half the gap ``g``
between the network and its physics baseline. Both are zero for an error that the network and the baseline
share — the baseline's photon scatter in lung or bone, say, where a network that learned little leaves it in
place. Measured on the held-out benchmark, the map alone covered the Monte Carlo within ±2σ in 26 % (Ga-68) and
1 % (Lu-177) of the voxels; the coverage the cards showed came from the reference's own noise.

The floor is what the map misses, measured per material class c (lung, adipose, soft tissue, bone: the density
classes of :func:`DeepDoseLib.tissue.density_to_material`) on the model's validation and test cases, whose MC
references carry their own σ_MC:

    f_c² = max(0, mean over the voxels of class c of [((D − MC)/D)² − u_D² − (σ_MC/D)²])

E[(D − MC)²] = (D − truth)² + σ_MC² for an unbiased reference, so this estimates the mean squared relative error
of D beyond what the map explains, without a noiseless reference. The voxels are chosen on D (tissue where D
exceeds 10 % of its tissue maximum), not on the reference: choosing on a noisy reference keeps the voxels it
overestimated and biases the mean (measured: −77 % mean bias in the lungs of a 3e6-decay Lu-177 case). The
standard error of each f_c² is kept beside it: with noisy references a class with few voxels (bone) or a large σ_MC
(lung) is not resolved, and then gets the largest resolved floor. The map written beside the dose rate becomes
``sqrt(u_D² + f_c²)``. The floors are kept in the model card (``uncertainty_floor``) with the cases they were
measured on and the coverage on those cases before and after (against the MC with its σ, over the benchmark's
metric voxels, :func:`.evaluation.metric_voxels`).

Limits, written in the card: the floor is a constant per class, measured on the uptake the model's validation
cases have (the tracer tables for the bundled Lu-177 model); errors concentrated in a few structures (a whole bone
or lung biased) are spread over every voxel of the class.
"""
from __future__ import annotations

from typing import Dict, Iterable, Optional

import numpy as np

from ..tissue import density_to_material, material_names, tissue_mask
from .evaluation import metric_voxels

#: Card key of the section.
CARD_KEY = "uncertainty_floor"
#: Material classes that get a floor (others, e.g. air, get none).
FLOOR_CLASSES = ("lung", "adipose", "soft_tissue", "bone")
#: Fewest voxels of a class for a floor of its own (else the largest resolved floor of the other classes).
MIN_VOXELS = 200
#: A class's f² is resolved when its standard error is below this [fraction², i.e. (3 %)²].
MAX_SE_F2 = 0.03 ** 2
#: Voxels used: tissue where D exceeds this fraction of its tissue maximum.
DOSE_FRACTION = 0.1


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


def coverage_pct(dose, reference, reference_sigma, u_total, mask) -> float:
    """Share [%] of ``mask`` voxels with |D − MC| ≤ 2·sqrt((u·D)² + σ_MC²)."""
    err = np.abs(dose[mask] - reference[mask])
    sd = u_total[mask] * dose[mask]
    return float(100 * np.mean(err <= 2 * np.sqrt(sd ** 2 + reference_sigma[mask] ** 2)))


def measure_floors(samples: Iterable[tuple]) -> dict:
    """Per-class floors from ``(name, D, u_D, MC, σ_MC, density)`` samples (arrays on one grid; D, MC, σ_MC in
    the same unit; u_D relative). Returns the card section without its provenance: ``floors`` [fraction],
    ``voxels`` per class and the coverage [%] per case before and after."""
    excess_by_class = {c: [] for c in FLOOR_CLASSES}
    kept = []
    names = material_names()
    for name, dose, u_total, ref, sigma, rho in samples:
        tissue = tissue_mask(rho)
        if not (tissue & (dose > 0)).any():
            continue
        chosen = tissue & (dose > DOSE_FRACTION * float(dose[tissue].max()))
        labels = density_to_material(rho)
        safe = np.maximum(dose, 1e-30)
        excess = ((dose - ref) / safe) ** 2 - u_total ** 2 - (sigma / safe) ** 2
        for label, cls in names.items():
            if cls in excess_by_class:
                excess_by_class[cls].append(excess[chosen & (labels == label)].astype(np.float64))
        kept.append((name, dose, u_total, ref, sigma, rho))
    f2, se = {}, {}
    for cls, parts in excess_by_class.items():
        values = np.concatenate(parts) if parts else np.zeros(0)
        if values.size >= MIN_VOXELS:
            f2[cls] = float(values.mean())
            se[cls] = float(values.std() / np.sqrt(values.size))
    resolved = {c: float(np.sqrt(max(0.0, f2[c]))) for c in f2 if se[c] < MAX_SE_F2}
    fill = max(resolved.values(), default=0.0)
    floors = {c: resolved.get(c, fill) for c in FLOOR_CLASSES}
    before, after = {}, {}
    for name, dose, u_total, ref, sigma, rho in kept:
        hot = metric_voxels(ref, rho) & (dose > 0)
        before[name] = coverage_pct(dose, ref, sigma, u_total, hot)
        with_floor = np.sqrt(u_total ** 2 + floor_map(rho, floors) ** 2)
        after[name] = coverage_pct(dose, ref, sigma, with_floor, hot)
    return {"floors": floors, "resolved": sorted(resolved),
            "f2": f2, "f2_standard_error": se,
            "voxels": {c: int(sum(p.size for p in parts)) for c, parts in excess_by_class.items()},
            "coverage_2sigma_pct_before": before, "coverage_2sigma_pct_after": after}
