"""True activity of a case: organ SUVs drawn from a tracer table, mass balance, heterogeneity, Bq/mL.

Conventions in :mod:`DeepDoseLib.phantoms.tracers`. The activity map refers to the scan time
(physical decay from injection applied), as a decay-corrected PET shows it at the scan start.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np

from ..errors import DeepDoseInputError
from ..nuclides import get_nuclide
from .anatomy import Anatomy
from .smooth import smooth_noise
from .tracers import (BACKGROUND, REST_OF_BODY_DENSITY_g_per_cm3, REST_OF_BODY_MASS_FRACTION, TracerModel,
                      effective_half_life_range, get_tracer, uniform)

#: Share of the body weight in the imaged torso (upper thighs to jaw) when the weight is not given:
#: trunk ≈ 50 % and head + neck ≈ 8 % of body mass (Dempster 1955 segment masses), our field of view
#: adds the upper thighs and lacks the upper head: 50–60 %.
TORSO_MASS_FRACTION = (0.5, 0.6)
MAX_DRAWS = 200


@dataclass
class ActivityResult:
    """The activity of one case. Arrays are (z, y, x) float32 on the anatomy grid.

    ``suv`` is decay-corrected (to injection); ``activity_Bq_per_mL`` is the physical concentration at
    the scan time. ``rest_of_body`` describes the body outside the field of view (mass, activity).
    """

    suv: np.ndarray
    activity_Bq_per_mL: np.ndarray
    tracer: str
    nuclide: str
    injected_MBq: float
    weight_kg: float
    uptake_time_h: float
    compartment_suv: Dict[str, float]
    label_suv: Dict[int, float]
    bladder_fraction: float
    voided_fraction: float
    background_level: float
    rest_of_body: Dict[str, float]
    effective_half_life_h: Dict[str, float] = field(default_factory=dict)

    @property
    def activity_at_scan_Bq(self) -> float:
        """Injected activity decayed to the scan time [Bq]."""
        half_life_h = get_nuclide(self.nuclide).half_life_s / 3600.0
        return self.injected_MBq * 1e6 * 2.0 ** (-self.uptake_time_h / half_life_h)

    def metadata(self) -> dict:
        return {"tracer": self.tracer, "nuclide": self.nuclide, "injected_MBq": round(self.injected_MBq, 3),
                "weight_kg": round(self.weight_kg, 3), "uptake_time_h": round(self.uptake_time_h, 4),
                "compartment_suv": {k: round(v, 4) for k, v in sorted(self.compartment_suv.items())},
                "label_suv": {str(k): round(v, 4) for k, v in sorted(self.label_suv.items())},
                "bladder_fraction": round(self.bladder_fraction, 5), "voided_fraction": round(self.voided_fraction, 5),
                "background_level": round(self.background_level, 4), "rest_of_body": self.rest_of_body,
                "effective_half_life_h": {k: round(v, 3) for k, v in sorted(self.effective_half_life_h.items())}}


def _rest_volumes_mL(rest_mass_g: float) -> Dict[str, float]:
    return {c: rest_mass_g * f / REST_OF_BODY_DENSITY_g_per_cm3[c] for c, f in REST_OF_BODY_MASS_FRACTION.items()}


def _draw_balanced(tracer: TracerModel, anatomy: Anatomy, volumes_mL: Dict[int, float], weight_g: float,
                   rest_mL: Dict[str, float], rng: np.random.Generator):
    """Compartment and label SUVs closing the mass balance (see the tracers docstring).

    Organs, lesions and excretion are drawn uniformly in their ranges. The background compartments
    share one patient-level position u in their ranges (SUV_c = lo_c + (u + j_c)(hi_c − lo_c), jitter
    j_c ~ U(−0.15, 0.15)); u is solved so that the body holds 1 − voided of the injected activity.
    Draws needing u + j_c outside [0, 1] are redrawn (organ uptake too high or too low for this body).
    """
    info = anatomy.label_info
    cortex = sum(volumes_mL.get(v, 0.0) for v, i in info.items() if i.compartment == "kidney_cortex")
    medulla = sum(volumes_mL.get(v, 0.0) for v, i in info.items() if i.compartment == "kidney_medulla")
    bladder = sum(volumes_mL.get(v, 0.0) for v, i in info.items() if i.compartment == "urine")
    bg_volume = {c: rest_mL.get(c, 0.0) for c in BACKGROUND}
    for v, i in info.items():
        if i.compartment in BACKGROUND:
            bg_volume[i.compartment] += volumes_mL.get(v, 0.0)
    for _ in range(MAX_DRAWS):
        comp = {c: uniform(rng, r) for c, r in tracer.suv.items() if c != "kidney" and c not in BACKGROUND}
        kidney, ratio = uniform(rng, tracer.suv["kidney"]), uniform(rng, tracer.kidney_cortex_to_medulla)
        comp["kidney_cortex"] = kidney * (cortex + medulla) / max(cortex + medulla / ratio, 1e-9)
        comp["kidney_medulla"] = comp["kidney_cortex"] / ratio
        f_bladder = uniform(rng, tracer.bladder_fraction)  # a bladder outside the field of view still holds it
        comp["urine"] = f_bladder * weight_g / bladder if bladder > 0 else 0.0
        comp["necrosis"] = uniform(rng, tracer.necrosis_suv)
        f_voided = uniform(rng, tracer.voided_fraction)
        jitter = {c: float(rng.uniform(-0.15, 0.15)) for c in BACKGROUND}
        label_suv: Dict[int, float] = {}
        for value, i in info.items():
            if i.compartment is None or i.compartment in BACKGROUND:
                continue
            if i.compartment.startswith("tumour_"):
                label_suv[value] = uniform(rng, tracer.tumour_suv[i.compartment[len("tumour_"):]])
            else:
                label_suv[value] = comp[i.compartment]
        f_organs = sum(s * volumes_mL.get(v, 0.0) for v, s in label_suv.items()) / weight_g
        f_organs += f_bladder if bladder <= 0 else 0.0
        lo = {c: tracer.suv[c][0] + jitter[c] * (tracer.suv[c][1] - tracer.suv[c][0]) for c in BACKGROUND}
        span = {c: tracer.suv[c][1] - tracer.suv[c][0] for c in BACKGROUND}
        base = sum(lo[c] * bg_volume[c] for c in BACKGROUND) / weight_g
        slope = sum(span[c] * bg_volume[c] for c in BACKGROUND) / weight_g
        u = (1.0 - f_voided - f_organs - base) / max(slope, 1e-12)
        if all(0.0 <= u + jitter[c] <= 1.0 for c in BACKGROUND):
            for c in BACKGROUND:
                comp[c] = lo[c] + u * span[c]
            for value, i in info.items():
                if i.compartment in BACKGROUND:
                    label_suv[value] = comp[i.compartment]
            return comp, label_suv, f_bladder, f_voided, float(u)
    raise DeepDoseInputError(f"{tracer.name}: no uptake draw closes the mass balance for this anatomy "
                             f"(weight {weight_g / 1000:.1f} kg); check the weight and the field of view.")


def _heterogeneity(anatomy: Anatomy, tracer: TracerModel, rng: np.random.Generator) -> np.ndarray:
    """Smooth multiplicative field, exactly mean 1 in every label (log-normal, correlation ~10 mm)."""
    labels = anatomy.labels
    sigma_lut = np.zeros(256, dtype=np.float32)
    for value, i in anatomy.label_info.items():
        key = "tumour" if (i.compartment or "").startswith("tumour") else i.compartment
        sigma_lut[value] = tracer.heterogeneity.get(key, tracer.heterogeneity["default"]) if key else 0.0
    g = smooth_noise(labels.shape, 10.0 / np.asarray(anatomy.spacing_mm, dtype=float), rng)
    s = sigma_lut[labels]
    field_ = np.exp(s * g - 0.5 * s * s).astype(np.float32)
    counts = np.bincount(labels.ravel(), minlength=256).astype(np.float64)
    sums = np.bincount(labels.ravel(), weights=field_.ravel(), minlength=256)
    return field_ / (sums / np.maximum(counts, 1)).astype(np.float32)[labels]


def synthesize_activity(anatomy: Anatomy, density_g_per_cm3: np.ndarray, tracer: "str | TracerModel",
                        rng: np.random.Generator, *, weight_kg: Optional[float] = None,
                        injected_MBq: Optional[float] = None, uptake_time_h: Optional[float] = None) -> ActivityResult:
    """Draw the uptake of ``tracer`` in ``anatomy`` and convert it to Bq/mL at the scan time.

    ``density_g_per_cm3`` (z, y, x) gives the torso mass; the body weight defaults to the anatomy's
    ``parameters['weight_kg']`` or torso mass / 0.5–0.6.
    """
    t = get_tracer(tracer)
    pattern = get_tracer(t.analogue) if t.analogue else t
    labels = anatomy.labels
    voxel_mL = anatomy.voxel_volume_mL
    counts = np.bincount(labels.ravel(), minlength=256)
    volumes = {int(v): float(counts[v]) * voxel_mL for v in anatomy.label_info if v < 256}
    masses = np.bincount(labels.ravel(), weights=density_g_per_cm3.ravel().astype(np.float64), minlength=256)
    torso_g = float(masses[1:].sum()) * voxel_mL
    if weight_kg is None:
        weight_kg = anatomy.parameters.get("weight_kg") or torso_g / 1000.0 / rng.uniform(*TORSO_MASS_FRACTION)
    weight_g = float(weight_kg) * 1000.0
    if weight_g < torso_g * 1.05:
        raise DeepDoseInputError(f"Body weight {weight_kg:.1f} kg is not above the imaged torso mass "
                                 f"({torso_g / 1000:.1f} kg).")
    rest_mL = _rest_volumes_mL(weight_g - torso_g)
    comp, label_suv, f_bladder, f_voided, k = _draw_balanced(pattern, anatomy, volumes, weight_g, rest_mL, rng)
    injected = float(injected_MBq if injected_MBq is not None else uniform(rng, t.injected_MBq))
    uptake = float(uptake_time_h if uptake_time_h is not None else uniform(rng, t.uptake_time_h))

    t_eff: Dict[str, float] = {}
    if t.effective_half_life_h:  # therapy: clear each compartment from the reference time on
        lam_phys = math.log(2.0) / (get_nuclide(t.nuclide).half_life_s / 3600.0)
        dt = uptake - t.reference_time_h
        keys = set(comp) | {info.compartment for info in anatomy.label_info.values() if info.compartment}
        for c in sorted(keys - {"urine"}):
            t_eff[c] = uniform(rng, effective_half_life_range(t, c))
        retention = {c: math.exp(-(math.log(2.0) / te - lam_phys) * dt) for c, te in t_eff.items()}
        comp = {c: s * retention.get(c, 1.0) for c, s in comp.items()}
        label_suv = {v: s * retention[anatomy.label_info[v].compartment] for v, s in label_suv.items()
                     if anatomy.label_info[v].compartment != "urine"} | \
                    {v: s for v, s in label_suv.items() if anatomy.label_info[v].compartment == "urine"}
        bladder_mL = sum(volumes[v] for v, i in anatomy.label_info.items() if i.compartment == "urine")
        f_bladder = uniform(rng, t.bladder_fraction)
        for v, i in anatomy.label_info.items():
            if i.compartment == "urine":
                label_suv[v] = comp["urine"] = f_bladder * weight_g / bladder_mL
    rest_activity = sum(comp[c] * v for c, v in rest_mL.items()) / weight_g
    if not any(i.compartment == "urine" for i in anatomy.label_info.values()):
        rest_activity += f_bladder  # the bladder lies outside the field of view
    torso_activity = sum(label_suv[v] * volumes[v] for v in label_suv) / weight_g
    f_voided = 1.0 - torso_activity - rest_activity if t.effective_half_life_h else f_voided

    lut = np.zeros(256, dtype=np.float32)
    for v, s in label_suv.items():
        lut[v] = s
    suv = (lut[labels] * _heterogeneity(anatomy, t, rng)).astype(np.float32)
    half_life_h = get_nuclide(t.nuclide).half_life_s / 3600.0
    bq_per_suv = injected * 1e6 * 2.0 ** (-uptake / half_life_h) / weight_g
    rest = {"mass_kg": round((weight_g - torso_g) / 1000.0, 4), "activity_fraction": round(rest_activity, 6),
            "suv_mean": round(rest_activity * weight_g / max(sum(rest_mL.values()), 1e-9), 5)}
    return ActivityResult(suv, (suv * bq_per_suv).astype(np.float32), t.name, t.nuclide, injected, float(weight_kg),
                          uptake, comp, label_suv, f_bladder, f_voided, k, rest, t_eff)
