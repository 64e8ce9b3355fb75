"""Time-activity (or dose-rate) kinetics of a therapy study: fits per structure and per voxel, AICc model
choice, fit covariance and the integral's standard uncertainty.

Builds on the fits of :mod:`DeepDoseLib.analysis.time_integration` (trapezoid, mono, bi = uptake–washout,
bi-washout, all with λ ≥ λ_phys and the physical-decay tail). Units: time in h after administration; curve
values in their own unit (mGy/h for dose rates, MBq for activities); integrals in value·h.

Model choice ``auto``: among the exponential models whose corrected Akaike criterion is defined
(n − k − 1 > 0, k fitted parameters; Glatting et al., Med Phys 34:4068 (2007)), converged and with R² > 0,
the one with the least AICc. When none qualifies (e.g. three time points: AICc of ``mono`` needs n ≥ 4), the
mono-exponential is used when it fits (R² > 0), else the trapezoid; the choice is stated in the notes.

Fit covariance (unweighted least squares, as the fits are): with per-point standard uncertainties σᵢ the
parameter covariance is the sandwich (JᵀJ)⁻¹ Jᵀ diag(σ²) J (JᵀJ)⁻¹, J = ∂model/∂p at the optimum; without
σ, a relative noise model σᵢ = s·ŷᵢ with s² = Σ(rᵢ/ŷᵢ)²/(n − k) (needs n > k). The integral's variance is gᵀ Cov g with g = ∂∫/∂p (EANM: Gear et al.,
EJNMMI Phys 5:7 (2018), sec. "time-integrated activity"). For the trapezoid the integral is linear in the
values, ∫ = Σ wᵢ yᵢ, so u² = Σ wᵢ² σᵢ².
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..analysis.time_integration import (MIN_TIME_POINTS, fit_exponential, integrate_trapezoid)
from ..errors import DeepDoseInputError

#: Fit choices offered to users; ``auto`` picks by AICc among :data:`FIT_MODELS`.
FIT_CHOICES = ("auto", "mono", "bi", "bi-washout", "trapezoid")
#: one time point: Hänscheid et al. 2018, whatever the choice
FIT_MODELS = ("mono", "bi", "bi-washout")
N_PARAMETERS = {"mono": 2, "bi": 3, "bi-washout": 4, "trapezoid": 0}


@dataclass
class CurveFit:
    """One fitted curve (a structure's mean dose rate or activity) and its integral.

    Attributes:
        model: ``mono``, ``bi``, ``bi-washout`` or ``trapezoid``.
        times_h, values: the data (h after administration; value unit, e.g. mGy/h).
        integral: ∫₀^∞ in value·h; ``u_integral``: its standard uncertainty from the fit (value·h, NaN when
            it cannot be estimated).
        parameters: fitted parameters (``A``, ``lambda_per_h``, half-lives ...).
        amplitudes, rates_per_h: the curve as Σ cᵢ e^(−aᵢ t) (exponential models; empty for the trapezoid).
        covariance: covariance of (amplitudes, rates) in the order of :attr:`parameter_names`.
        lambda_tail_per_h: trapezoid: decay constant after the last point.
        aicc: model → AICc of every candidate tried (NaN where undefined).
    """

    model: str
    times_h: np.ndarray
    values: np.ndarray
    integral: float
    u_integral: float
    parameters: Dict[str, float] = field(default_factory=dict)
    amplitudes: np.ndarray = field(default_factory=lambda: np.zeros(0))
    rates_per_h: np.ndarray = field(default_factory=lambda: np.zeros(0))
    covariance: Optional[np.ndarray] = None
    parameter_names: Tuple[str, ...] = ()
    r_squared: float = float("nan")
    lambda_tail_per_h: float = float("nan")
    aicc: Dict[str, float] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)

    def evaluate(self, t_h) -> np.ndarray:
        """The fitted curve at times ``t_h`` [h] (value unit)."""
        t = np.asarray(t_h, dtype=np.float64)
        if self.model != "trapezoid":
            return (self.amplitudes[:, None] * np.exp(-self.rates_per_h[:, None] * t.reshape(-1)[None, :])
                    ).sum(0).reshape(t.shape)
        knots = np.concatenate([[0.0], self.times_h])
        values = np.concatenate([[0.0], self.values])
        inside = np.interp(t, knots, values)
        tail = self.values[-1] * np.exp(-self.lambda_tail_per_h * (t - self.times_h[-1]))
        return np.where(t <= self.times_h[-1], inside, tail)


def exponential_terms(model: str, parameters: Dict[str, np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """(amplitudes c, rates a [1/h]) of the curve Σ cᵢ e^(−aᵢ t), each shaped (..., 2) (mono: second c = 0)."""
    if model == "mono":
        A = np.asarray(parameters["A"], dtype=np.float64)
        lam = np.asarray(parameters["lambda_per_h"], dtype=np.float64)
        return np.stack([A, np.zeros_like(A)], -1), np.stack([lam, lam], -1)
    if model == "bi":
        A = np.asarray(parameters["A"], dtype=np.float64)
        return (np.stack([A, -A], -1), np.stack([np.asarray(parameters["lambda_washout_per_h"], np.float64),
                                                 np.asarray(parameters["lambda_uptake_per_h"], np.float64)], -1))
    if model == "bi-washout":
        return (np.stack([np.asarray(parameters["A_fast"], np.float64), np.asarray(parameters["A_slow"], np.float64)],
                         -1),
                np.stack([np.asarray(parameters["lambda_fast_per_h"], np.float64),
                          np.asarray(parameters["lambda_slow_per_h"], np.float64)], -1))
    raise DeepDoseInputError(f"{model!r} is not an exponential model.")


# ----------------------------------------------------------------------------------------- covariance
def _physical_parameters(model: str, c: np.ndarray, a: np.ndarray) -> Tuple[np.ndarray, Tuple[str, ...]]:
    if model == "mono":
        return np.array([c[0], a[0]]), ("A", "lambda_per_h")
    if model == "bi":
        return np.array([c[0], a[0], a[1]]), ("A", "lambda_washout_per_h", "lambda_uptake_per_h")
    return np.array([c[0], a[0], c[1], a[1]]), ("A_fast", "lambda_fast_per_h", "A_slow", "lambda_slow_per_h")


def _model_jacobian(model: str, p: np.ndarray, t: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(∂y/∂p shaped (n, k), ∂∫/∂p shaped (k,)) at the physical parameters p."""
    if model == "mono":
        A, lam = p
        e = np.exp(-lam * t)
        return np.stack([e, -A * t * e], 1), np.array([1.0 / lam, -A / lam ** 2])
    if model == "bi":
        A, lw, lu = p
        ew, eu = np.exp(-lw * t), np.exp(-lu * t)
        return (np.stack([ew - eu, -A * t * ew, A * t * eu], 1),
                np.array([1.0 / lw - 1.0 / lu, -A / lw ** 2, A / lu ** 2]))
    A1, l1, A2, l2 = p
    e1, e2 = np.exp(-l1 * t), np.exp(-l2 * t)
    return (np.stack([e1, -A1 * t * e1, e2, -A2 * t * e2], 1),
            np.array([1.0 / l1, -A1 / l1 ** 2, 1.0 / l2, -A2 / l2 ** 2]))


def _model_values(model: str, p: np.ndarray, t: np.ndarray) -> np.ndarray:
    if model == "mono":
        return p[0] * np.exp(-p[1] * t)
    if model == "bi":
        return p[0] * (np.exp(-p[1] * t) - np.exp(-p[2] * t))
    return p[0] * np.exp(-p[1] * t) + p[2] * np.exp(-p[3] * t)


def fit_covariance(model: str, p: np.ndarray, times_h: np.ndarray, residuals: np.ndarray,
                   sigma: Optional[np.ndarray] = None) -> Tuple[np.ndarray, float, str]:
    """(parameter covariance, standard uncertainty of the integral [value·h], note) of an unweighted LSQ fit.

    ``sigma`` (n,) are the per-point standard uncertainties in value units; None estimates them from the
    residuals with a relative noise model, σᵢ = s·ŷᵢ, s² = Σ(rᵢ/ŷᵢ)²/(n − k) (NaN result when n ≤ k).
    """
    t = np.asarray(times_h, np.float64)
    J, g = _model_jacobian(model, p, t)
    n, k = J.shape
    if sigma is None:
        if n <= k:
            return np.full((k, k), np.nan), float("nan"), (f"fit uncertainty not estimated: {n} points for {k} "
                                                          "parameters and no per-point uncertainty given")
        # relative noise model, σᵢ = s·ŷᵢ (quantitative SPECT/PET errors scale with the value), s from the residuals
        model_values = _model_values(model, p, t)
        relative = np.asarray(residuals, np.float64) / np.where(model_values != 0, model_values, np.inf)
        s2 = float(np.sum(relative ** 2) / (n - k))
        variances = s2 * model_values ** 2
        note = (f"fit uncertainty from the residuals (relative noise σᵢ = s·ŷᵢ, s = {math.sqrt(s2):.3g}, {n - k} "
                "degree(s) of freedom)")
    else:
        variances = np.asarray(sigma, np.float64) ** 2
        note = "fit uncertainty from the given per-time-point uncertainties (sandwich covariance)"
    bread = np.linalg.pinv(J.T @ J)
    cov = bread @ (J.T * variances) @ J @ bread
    return cov, float(math.sqrt(max(float(g @ cov @ g), 0.0))), note


def trapezoid_weights(times_h: Sequence[float], lambda_tail_per_h: float) -> np.ndarray:
    """Weights wᵢ [h] with ∫ = Σ wᵢ yᵢ for the trapezoid (linear rise from 0 at injection, tail yₙ/λ)."""
    t = np.asarray(times_h, np.float64)
    w = np.zeros(t.size)
    w[0] += 0.5 * t[0]
    dt = np.diff(t)
    w[:-1] += 0.5 * dt
    w[1:] += 0.5 * dt
    w[-1] += 1.0 / lambda_tail_per_h
    return w


def _single_time_point_rate(time_h: float, population_half_life_h: Optional[float]) -> Tuple[float, str]:
    """(λ_eff [1/h], note) of a single-time-point integration: Hänscheid (T_eff = t) or a population value."""
    if population_half_life_h is None:
        return math.log(2.0) / time_h, (f"single time point at {time_h:g} h (Hänscheid 2018): y·2t/ln 2, i.e. a "
                                        "mono-exponential with T_eff = the scan time; fit uncertainty not estimated")
    if not population_half_life_h > 0:
        raise DeepDoseInputError(f"The population effective half-life must be > 0 h (got {population_half_life_h}).")
    return math.log(2.0) / population_half_life_h, (
        f"single time point at {time_h:g} h with the population effective half-life {population_half_life_h:g} h: "
        "y·e^(λt)/λ; fit uncertainty not estimated")


def auto_candidates(n_points: int) -> List[str]:
    """Models ``auto`` tries with n points: those whose AICc is defined (n − k − 1 > 0), and ``mono`` always
    (n ≥ 2) as the fallback when no AICc is defined."""
    return [m for m in FIT_MODELS if (m == "mono" and n_points >= 2) or n_points - N_PARAMETERS[m] - 1 > 0]


# ------------------------------------------------------------------------------------------- one curve
def fit_curve(times_h: Sequence[float], values: Sequence[float], lambda_phys_per_h: float, model: str = "auto", *,
              sigma: Optional[Sequence[float]] = None, population_half_life_h: Optional[float] = None) -> CurveFit:
    """Fit one curve (a structure's mean dose rate [mGy/h] or activity [MBq]) and integrate it 0 → ∞.

    Args:
        times_h: time points [h after administration], > 0, increasing.
        values: the curve at those times (value unit).
        lambda_phys_per_h: physical decay constant [1/h]: lower bound of every fitted rate, trapezoid tail.
        model: one of :data:`FIT_CHOICES`.
        sigma: per-point standard uncertainties (value unit) for the fit covariance; None: from residuals.
        population_half_life_h: one time point only: a population effective half-life [h] instead of
            Hänscheid's T_eff = t.
    """
    if model not in FIT_CHOICES:
        raise DeepDoseInputError(f"Unknown fit {model!r}; use one of {', '.join(FIT_CHOICES)}.")
    t = np.asarray(times_h, np.float64)
    y = np.asarray(values, np.float64)
    n = t.size
    if model != "auto" and n > 1 and n < MIN_TIME_POINTS[model]:
        raise DeepDoseInputError(f"The {model} fit needs at least {MIN_TIME_POINTS[model]} time points (got {n}).")
    sig = None if sigma is None else np.asarray(sigma, np.float64)
    if n == 1:  # Hänscheid et al., J Nucl Med 59:75 (2018): effective half-life taken equal to the scan time
        lam, note = _single_time_point_rate(float(t[0]), population_half_life_h)
        amplitude = float(y[0]) * math.exp(lam * float(t[0]))
        return CurveFit("stp", t, y, amplitude / lam, float("nan"), {"A": amplitude, "lambda_per_h": lam},
                        np.array([amplitude]), np.array([lam]), notes=[note])
    candidates = auto_candidates(n) if model == "auto" else ([model] if model != "trapezoid" else [])
    fits = {m: fit_exponential(t, y[None, :], m, lambda_phys_per_h) for m in candidates}
    aicc = {m: float(f.aicc[0]) for m, f in fits.items()}
    notes: List[str] = []
    chosen = model
    if model == "auto":
        ok = {m: v for m, v in aicc.items()
              if math.isfinite(v) and bool(fits[m].converged[0]) and float(fits[m].r_squared[0]) > 0}
        if ok:
            chosen = min(ok, key=ok.get)
            notes.append("model chosen by AICc among " + ", ".join(f"{m} {v:.3g}" for m, v in ok.items()))
        elif "mono" in fits and float(np.nan_to_num(fits["mono"].r_squared[0], nan=-1)) > 0:
            chosen = "mono"
            notes.append(f"AICc undefined with {n} time points: mono-exponential used (R² "
                         f"{float(fits['mono'].r_squared[0]):.4f})")
        else:
            chosen = "trapezoid"
            notes.append("no exponential fit usable (R² ≤ 0 or too few points): trapezoid with physical tail")
    if chosen == "trapezoid":
        result = integrate_trapezoid(t, y[None, :], lambda_phys_per_h)
        w = trapezoid_weights(t, lambda_phys_per_h)
        if sig is None:
            u, note = float("nan"), "trapezoid: sampling uncertainty not estimated (no per-point uncertainty given)"
        else:
            u, note = float(math.sqrt(np.sum((w * sig) ** 2))), "trapezoid: u² = Σ wᵢ² σᵢ² (linear in the values)"
        return CurveFit("trapezoid", t, y, float(result.integral[0]), u, {}, r_squared=float("nan"),
                        lambda_tail_per_h=float(lambda_phys_per_h), aicc=aicc, notes=notes + result.notes + [note])
    fit = fits[chosen]
    params = {k: float(v[0]) for k, v in fit.parameters.items()}
    c, a = exponential_terms(chosen, {k: np.array([v]) for k, v in params.items()})
    c, a = c[0], a[0]
    p, names = _physical_parameters(chosen, c, a)
    cov, u, note = fit_covariance(chosen, p, t, fit.residuals[0], sig)
    keep = slice(0, 1) if chosen == "mono" else slice(0, 2)
    return CurveFit(chosen, t, y, float(fit.integral[0]), u, params, c[keep], a[keep], cov, names,
                    float(fit.r_squared[0]), aicc=aicc, notes=notes + fit.notes + [note])


# ------------------------------------------------------------------------------------------- voxels
@dataclass
class VoxelKinetics:
    """Voxel-wise integration of (voxels, n) curves (flat arrays, one entry per voxel).

    Attributes:
        integral: ∫₀^∞ [value·h]; 0 where every point is ≤ 0.
        model_index: index into ``models`` (−1: no activity); trapezoid voxels keep their samples for the
            Lea–Catcheside factor (:func:`DeepDoseLib.therapy.radiobiology.g_factor_piecewise`).
        amplitudes, rates_per_h: (voxels, 2) exponential terms (zeros for trapezoid voxels).
        r_squared: NaN where no fit ran.
    """

    integral: np.ndarray
    model_index: np.ndarray
    models: Tuple[str, ...]
    amplitudes: np.ndarray
    rates_per_h: np.ndarray
    r_squared: np.ndarray
    notes: List[str] = field(default_factory=list)

    def count(self, model: str) -> int:
        return int(np.count_nonzero(self.model_index == self.models.index(model)))


def integrate_voxel_curves(times_h: Sequence[float], curves: np.ndarray, lambda_phys_per_h: float,
                           model: str = "auto", *, chunk_voxels: int = 1 << 15,
                           progress: Optional[Callable[[float, str], None]] = None,
                           population_half_life_h: Optional[float] = None) -> VoxelKinetics:
    """Integrate every voxel's curve ``curves`` (voxels, n) [value] at ``times_h`` [h] with ``model``.

    ``auto`` fits every exponential model that the number of points allows and keeps, per voxel, the least
    AICc (defined, R² > 0); voxels where no AICc is defined take ``mono`` if R² > 0. Voxels where no fit is
    usable (R² ≤ 0, not finite) fall back to the trapezoid with the physical tail (counted in the notes).
    """
    if model not in FIT_CHOICES:
        raise DeepDoseInputError(f"Unknown fit {model!r}; use one of {', '.join(FIT_CHOICES)}.")
    t = np.asarray(times_h, np.float64)
    y = np.asarray(curves, np.float64)
    n_vox, n = y.shape
    models = FIT_MODELS + ("trapezoid",)
    trap = models.index("trapezoid")
    integral = np.zeros(n_vox)
    index = np.full(n_vox, -1, np.int16)
    amplitudes = np.zeros((n_vox, 2))
    rates = np.zeros((n_vox, 2))
    r2 = np.full(n_vox, np.nan)
    if model == "auto":
        candidates = auto_candidates(n)
    else:
        candidates = [] if model == "trapezoid" else [model]
    work = np.flatnonzero((y > 0).any(axis=1))
    if n == 1:  # single time point: Hänscheid (a mono-exponential with T_eff = the scan time) or a population T_eff
        lam, note = _single_time_point_rate(float(t[0]), population_half_life_h)
        amplitude = y[work, 0] * math.exp(lam * float(t[0]))
        result = VoxelKinetics(integral, index, models + ("stp",), amplitudes, rates, r2)
        result.integral[work] = amplitude / lam
        result.model_index[work] = len(models)
        result.amplitudes[work, 0] = amplitude
        result.rates_per_h[work] = lam
        result.notes.append(note + " (every voxel)")
        return result
    for start in range(0, work.size, chunk_voxels):
        sel = work[start:start + chunk_voxels]
        if progress is not None:
            progress(start / max(work.size, 1), f"time integration: voxels {start}-{start + sel.size} of {work.size}")
        block = y[sel]
        best = np.full(sel.size, np.inf)
        chosen = np.full(sel.size, trap, np.int16)
        value = integrate_trapezoid(t, block, lambda_phys_per_h).integral
        c_sel = np.zeros((sel.size, 2))
        a_sel = np.zeros((sel.size, 2))
        r_sel = np.full(sel.size, np.nan)
        for m in candidates:
            fit = fit_exponential(t, block, m, lambda_phys_per_h)
            usable = np.isfinite(fit.integral) & (np.nan_to_num(fit.r_squared, nan=-1.0) > 0)
            aicc = np.nan_to_num(fit.aicc, nan=np.inf)
            # better: a defined AICc that beats the best so far; without any AICc, the higher R² (mono first)
            better = usable & (aicc < best)
            if m == "mono":  # without a defined AICc the mono-exponential is kept where it fits (R² > 0)
                better |= usable & ~np.isfinite(aicc)
            if model != "auto":
                better = usable
            c, a = exponential_terms(m, fit.parameters)
            chosen[better] = models.index(m)
            value = np.where(better, fit.integral, value)
            c_sel[better], a_sel[better], r_sel[better] = c[better], a[better], fit.r_squared[better]
            best = np.where(better, aicc, best)
        integral[sel], index[sel], amplitudes[sel], rates[sel], r2[sel] = value, chosen, c_sel, a_sel, r_sel
    if progress is not None:
        progress(1.0, "time integration done")
    result = VoxelKinetics(integral, index, models, amplitudes, rates, r2)
    counts = ", ".join(f"{m} {result.count(m)}" for m in models if result.count(m))
    result.notes.append(f"voxel-wise {model} time integration of {work.size} voxel(s) with activity: {counts}"
                        + (" (trapezoid: fit unusable, physical tail)" if model != "trapezoid" and
                           result.count("trapezoid") else ""))
    return result
