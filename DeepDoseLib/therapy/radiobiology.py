"""Radiobiology of a protracted irradiation: BED and EQD2 (linear-quadratic model with the Lea–Catcheside
dose-protraction factor from the fitted time course) and equivalent uniform doses.

For an absorbed-dose-rate curve Ḋ(t) [Gy/h] delivering D = ∫₀^∞ Ḋ dt [Gy], with sublethal-damage repair at the
rate μ = ln 2 / T_rep [1/h]:

    BED = D + G·D² / (α/β),       G = (2/D²) ∫₀^∞ Ḋ(t) ∫₀^t Ḋ(w) e^(−μ(t−w)) dw dt        (Lea–Catcheside)
    EQD2 = BED / (1 + 2 Gy/(α/β))

(Dale, Br J Radiol 58:515 (1985); MIRD Pamphlet No. 20, Wessels et al., J Nucl Med 49:1884 (2008)). G depends
only on the *shape* of Ḋ, so the curve may be given in any unit (mGy/h, MBq).

Closed form for a sum of exponentials Ḋ = Σᵢ cᵢ e^(−aᵢt) (mono: one term; uptake–washout
A(e^(−λw t) − e^(−λu t)): c = (A, −A), a = (λw, λu)): the inner integral is Σⱼ cⱼ (e^(−aⱼt) − e^(−μt))/(μ − aⱼ),
and integrating against Ḋ gives

    ∫∫ = Σᵢ Σⱼ cᵢ cⱼ / ((aᵢ + aⱼ)(aᵢ + μ)),

so a mono-exponential has G = λ/(λ + μ) and BED = D (1 + λD/((λ + μ)(α/β))). Other shapes (the trapezoid's
piecewise-linear curve with its exponential tail) are integrated segment by segment: the repair integral q(t)
obeys q' = Ḋ − μq, solved exactly where Ḋ is linear, and ∫Ḋq has a closed form on each segment and on the tail.

Equivalent uniform doses of a structure from its voxels (weights = voxel fractions × volume or mass):
gEUD = (Σ vᵢ Dᵢ^a)^(1/a) (Niemierko, Med Phys 26:1100 (1999)); EUBED = −ln(Σ vᵢ e^(−α BEDᵢ))/α (the BED of a
uniform irradiation with the same surviving fraction; O'Donoghue, Med Phys 26:2526 (1999)).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from ..errors import DeepDoseInputError

_DEFAULTS_FILE = Path(__file__).resolve().parents[1] / "data" / "radiobiology_defaults.json"


@dataclass(frozen=True)
class RadiobiologyParameters:
    """LQ parameters of one structure: α/β [Gy], repair half-time [h], α [1/Gy] (EUBED), gEUD ``a``."""

    alpha_beta_Gy: float
    repair_half_time_h: float
    alpha_per_Gy: float
    geud_a: float
    structure_class: str = "default"
    source: str = ""

    @property
    def mu_per_h(self) -> float:
        """Repair rate μ = ln 2 / T_rep [1/h]."""
        return math.log(2.0) / self.repair_half_time_h

    def check(self) -> "RadiobiologyParameters":
        if not (self.alpha_beta_Gy > 0 and self.repair_half_time_h > 0 and self.alpha_per_Gy > 0
                and self.geud_a != 0 and all(map(math.isfinite, (self.alpha_beta_Gy, self.repair_half_time_h,
                                                                  self.alpha_per_Gy, self.geud_a)))):
            raise DeepDoseInputError(f"Radiobiology parameters must be positive and finite (gEUD a ≠ 0): {self}.")
        return self


def load_default_parameters(path: Optional[Path] = None) -> Tuple[Tuple[str, ...], Dict[str, dict]]:
    """(class order, class → entry with ``keywords`` and the parameters) from the data file with its sources."""
    data = json.loads(Path(path or _DEFAULTS_FILE).read_text())
    return tuple(data["order"]), data["classes"]


def parameters_for(structure: str, overrides: Optional[Mapping[str, Mapping[str, float]]] = None
                   ) -> RadiobiologyParameters:
    """Parameters of a structure by name: the first class whose keyword the name contains, then the user's
    ``overrides`` (structure name or class name → {field: value}) on top."""
    order, classes = load_default_parameters()
    lower = structure.lower()
    cls = next((c for c in order if any(k in lower for k in classes[c]["keywords"])), "default")
    entry = classes[cls]
    params = RadiobiologyParameters(float(entry["alpha_beta_Gy"]), float(entry["repair_half_time_h"]),
                                    float(entry["alpha_per_Gy"]), float(entry["geud_a"]), cls, entry["source"])
    for key in (cls, structure):
        if overrides and key in overrides:
            known = {"alpha_beta_Gy", "repair_half_time_h", "alpha_per_Gy", "geud_a"}
            bad = set(overrides[key]) - known
            if bad:
                raise DeepDoseInputError(f"Unknown radiobiology field(s) {sorted(bad)} for {key!r}; use {sorted(known)}.")
            params = replace(params, **{k: float(v) for k, v in overrides[key].items()},
                             source=f"user value(s) for {key}: " + ", ".join(f"{k}={v}" for k, v in
                                                                            overrides[key].items()))
    return params.check()


# ------------------------------------------------------------------------------------------ G factor
def g_factor_exponential(amplitudes, rates_per_h, mu_per_h) -> np.ndarray:
    """Lea–Catcheside G of Ḋ = Σᵢ cᵢ e^(−aᵢt) (closed form; shapes (..., m) for c and a, μ broadcast to (...)).

    0 where the curve integrates to 0.
    """
    c = np.asarray(amplitudes, np.float64)
    a = np.asarray(rates_per_h, np.float64)
    mu = np.asarray(mu_per_h, np.float64)[..., None, None]
    dose = (c / np.where(a > 0, a, np.inf)).sum(-1)
    pair = c[..., :, None] * c[..., None, :] / ((a[..., :, None] + a[..., None, :]) * (a[..., :, None] + mu))
    pair = np.where(np.isfinite(pair), pair, 0.0)
    double = pair.sum((-1, -2))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(dose != 0, 2.0 * double / dose ** 2, 0.0)


def g_factor_piecewise(times_h, values, lambda_tail_per_h: float, mu_per_h) -> np.ndarray:
    """Lea–Catcheside G of the trapezoid's curve: linear from 0 at t = 0 through the points (times_h (n,),
    values (B, n) or (n,)), then yₙ e^(−λ(t − tₙ)); μ [1/h] scalar or (B,). Exact (no time steps).

    On a segment of length L where Ḋ(τ) = d₀ + gτ, the repair integral q' = Ḋ − μq starting from q₀ is
    q(τ) = a + (g/μ)τ + c e^(−μτ) with a = d₀/μ − g/μ², c = q₀ − a, so
    ∫₀^L Ḋq dτ = d₀aL + (d₀g/μ + ga)L²/2 + (g²/μ)L³/3 + c(d₀E₀ + gE₁),
    E₀ = (1 − e^(−μL))/μ, E₁ = (1 − e^(−μL)(1 + μL))/μ². The tail is analytic too:
    ∫_tail Ḋq = yₙqₙ/(λ+μ) + yₙ²/(μ−λ)·(1/(2λ) − 1/(λ+μ)).
    """
    t = np.concatenate([[0.0], np.asarray(times_h, np.float64)])
    y = np.atleast_2d(np.asarray(values, np.float64))
    y = np.concatenate([np.zeros((y.shape[0], 1)), y], 1)
    mu = np.broadcast_to(np.asarray(mu_per_h, np.float64), (y.shape[0],)).copy()
    q = np.zeros(y.shape[0])
    double = np.zeros(y.shape[0])
    for k in range(t.size - 1):
        L = t[k + 1] - t[k]
        d0 = y[:, k]
        g = (y[:, k + 1] - y[:, k]) / L
        a = d0 / mu - g / mu ** 2
        c = q - a
        decay = np.exp(-mu * L)
        e0 = (1.0 - decay) / mu
        e1 = (1.0 - decay * (1.0 + mu * L)) / mu ** 2
        double += (d0 * a * L + (d0 * g / mu + g * a) * L ** 2 / 2 + g ** 2 / mu * L ** 3 / 3
                   + c * (d0 * e0 + g * e1))
        q = a + g * L / mu + c * decay
    lam = float(lambda_tail_per_h)
    yn = y[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = np.where(np.abs(mu - lam) > 1e-12, (1.0 / (2 * lam) - 1.0 / (lam + mu)) / (mu - lam),
                         1.0 / (2 * lam) ** 2)  # limit μ → λ of (1/(2λ) − 1/(λ+μ))/(μ−λ)
    double += yn * q / (lam + mu) + yn ** 2 * cross
    dose = 0.5 * ((y[:, 1:] + y[:, :-1]) * np.diff(t)).sum(1) + yn / lam
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(dose > 0, 2.0 * double / dose ** 2, 0.0)


# ------------------------------------------------------------------------------------------ BED, EUD
def bed_Gy(dose_Gy, g_factor, alpha_beta_Gy):
    """BED = D + G D² / (α/β) [Gy]."""
    d = np.asarray(dose_Gy, np.float64)
    return d + np.asarray(g_factor, np.float64) * d ** 2 / np.asarray(alpha_beta_Gy, np.float64)


def eqd2_Gy(bed, alpha_beta_Gy):
    """EQD2 = BED / (1 + 2 Gy/(α/β)) [Gy]: the dose in 2-Gy fractions with the same BED."""
    return np.asarray(bed, np.float64) / (1.0 + 2.0 / np.asarray(alpha_beta_Gy, np.float64))


def geud_Gy(dose_Gy, weights, a: float) -> float:
    """Generalised EUD (Σ vᵢ Dᵢ^a / Σ vᵢ)^(1/a) [Gy] (a < 0 for tumours; a = 1: the mean)."""
    d = np.asarray(dose_Gy, np.float64)
    w = np.asarray(weights, np.float64)
    if w.sum() <= 0:
        return float("nan")
    if a < 0 and np.any((d <= 0) & (w > 0)):
        return 0.0  # a cold voxel dominates a tumour's gEUD
    return float((np.dot(w, np.clip(d, 0, None) ** a) / w.sum()) ** (1.0 / a))


def eubed_Gy(bed, weights, alpha_per_Gy: float) -> float:
    """EUBED = −ln(Σ vᵢ e^(−α BEDᵢ) / Σ vᵢ) / α [Gy] (log-sum-exp, stable for large BED)."""
    b = np.asarray(bed, np.float64)
    w = np.asarray(weights, np.float64)
    keep = w > 0
    if not keep.any():
        return float("nan")
    x = -alpha_per_Gy * b[keep]
    m = float(x.max())
    return float(-(m + math.log(np.dot(w[keep], np.exp(x - m)) / w[keep].sum())) / alpha_per_Gy)
