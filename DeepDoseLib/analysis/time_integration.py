"""Time integration of dose-rate (or activity) curves: absorbed dose from several time points.

Every function works on a *batch* of curves at once — one organ, all organs, or every voxel of a map
(vectorised with torch; CPU and CUDA share the code) — shaped ``(curves, time points)``.

Units: time in h after administration; values in their own unit per hour (dose rate mGy/h, or activity
Bq/mL); integrals in value·h (mGy for dose rates: divide by 1000 for Gy, :func:`mGy_to_Gy`).
Each value must be the quantity *at its own time point* (decay-corrected to its scan start at most, never
to the injection), as a dose-rate map from a PET/SPECT of that time point is.

Models (``MODELS``):

* ``trapezoid``: linear between the points; from 0 to the first point the curve rises linearly from
  zero at injection (the usual uptake assumption; ``head="constant"`` holds the first value back to 0
  instead); after the last point physical decay only, ∫ = y_n/λ_phys (no biological washout: an upper
  bound; ``tail="fit"`` uses the decay constant of the last two points, never below λ_phys).
* ``mono``: y = A e^(−λt) fitted (least squares, all points) and integrated analytically from 0 to ∞,
  A/λ (instantaneous uptake); λ ≥ λ_phys by default (biological clearance cannot be negative).
* ``bi``: uptake–washout y = A (e^(−λw t) − e^(−λu t)), λu > λw (≥ λ_phys): ∫ = A (1/λw − 1/λu).
* ``bi-washout``: two-phase washout y = A1 e^(−λ1 t) + A2 e^(−λ2 t): ∫ = A1/λ1 + A2/λ2.
* ``stp``: one time point. Hänscheid et al., J Nucl Med 2018: ∫ ≈ y(t)·2t/ln 2, exact when the effective
  half-life equals t (the mono-exponential integral y(t)e^(λt)/λ is flat around λ = 1/t); with a given
  (population) effective half-life T: ∫ = y(t) e^(λt)/λ, λ = ln 2/T.
* ``physical``: one (diagnostic) time point, physical decay only: the value is decay-corrected back to the
  injection, y(0) = y(t_ref) e^(λ_phys t_ref), and integrated to ∞: y(0)/λ_phys (instantaneous uptake, no
  washout; ``integrate_from="reference"`` gives y(t_ref)/λ_phys from the reference time on).

Fits report R², residuals and AIC/AICc (least squares: n ln(SSE/n) + 2k, AICc adds 2k(k+1)/(n−k−1)).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from ..errors import DeepDoseInputError

MODELS = ("trapezoid", "mono", "bi", "bi-washout", "stp", "physical")
#: Least number of time points each model needs (fits: one more than their parameters, except `bi-washout`,
#: which with 4 points interpolates them exactly).
MIN_TIME_POINTS = {"trapezoid": 1, "mono": 2, "bi": 3, "bi-washout": 4, "stp": 1, "physical": 1}
_N_PARAMETERS = {"mono": 2, "bi": 3, "bi-washout": 4}
_LOG_CLAMP = 30.0  # bounds of the log-parameters during the fits (e^±30: far beyond any physical rate)


def mGy_to_Gy(value_mGy):
    """Absorbed dose in mGy → Gy (÷ 1000)."""
    return value_mGy / 1000.0


def decay_constant_per_h(half_life_h: float) -> float:
    """λ = ln 2 / T½ [1/h] from a half-life in hours."""
    if not half_life_h > 0:
        raise DeepDoseInputError(f"A half-life must be positive (got {half_life_h} h).")
    return math.log(2.0) / half_life_h


@dataclass
class CurveIntegration:
    """Integrals of a batch of B curves sampled at n time points (arrays on the CPU, float64).

    Attributes:
        integral: (B,) ∫₀^∞ y dt in value·h (mGy for dose rates in mGy/h).
        model: one of :data:`MODELS`.
        parameters: name → (B,) fitted parameters in h and value units (``A``, ``lambda_per_h``, ...);
            for ``trapezoid`` the parts ``head``, ``body``, ``tail`` of the integral.
        r_squared, aic, aicc: (B,) fit quality (NaN for models without a fit; AICc NaN when n ≤ k + 1).
        residuals: (B, n) data − model in value units (zeros without a fit).
        converged: (B,) bool: the fit met its tolerance (always True without a fit).
        notes: assumptions made, in words.
    """

    integral: np.ndarray
    model: str
    parameters: Dict[str, np.ndarray] = field(default_factory=dict)
    r_squared: Optional[np.ndarray] = None
    aic: Optional[np.ndarray] = None
    aicc: Optional[np.ndarray] = None
    residuals: Optional[np.ndarray] = None
    converged: Optional[np.ndarray] = None
    notes: List[str] = field(default_factory=list)


def _as_batch(times_h, values, device: str = "cpu"):
    t = torch.as_tensor(np.asarray(times_h, dtype=np.float64), device=device).reshape(-1)
    y = torch.as_tensor(np.asarray(values, dtype=np.float64), device=device)
    if y.ndim == 1:
        y = y[None, :]
    if y.ndim != 2 or y.shape[1] != t.numel():
        raise DeepDoseInputError(f"{t.numel()} time point(s) but values shaped {tuple(y.shape)}; expected "
                                 f"(curves, {t.numel()}).")
    if not torch.all(torch.isfinite(t)) or not torch.all(t > 0) or not torch.all(t[1:] > t[:-1]):
        raise DeepDoseInputError(f"Time points must be finite, > 0 h after administration and strictly increasing "
                                 f"(got {[round(float(v), 4) for v in t]} h).")
    if not torch.all(torch.isfinite(y)):
        raise DeepDoseInputError("The curves contain NaN or infinite values.")
    return t, y


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy().astype(np.float64)


# --------------------------------------------------------------------------------------------- trapezoid
def integrate_trapezoid(times_h, values, lambda_phys_per_h: float, *, head: str = "zero",
                        tail: str = "physical", device: str = "cpu") -> CurveIntegration:
    """Trapezoid rule between the points + a head from 0 h + a tail after the last point.

    Args:
        times_h: (n,) time points [h after administration], > 0, increasing.
        values: (B, n) or (n,) curve values (e.g. dose rate mGy/h).
        lambda_phys_per_h: physical decay constant [1/h].
        head: ``"zero"`` (linear rise from 0 at t = 0) or ``"constant"`` (first value held back to t = 0).
        tail: ``"physical"`` (y_n/λ_phys), ``"fit"`` (y_n/λ from the last two points, λ ≥ λ_phys) or ``"none"``.
    """
    t, y = _as_batch(times_h, values, device)
    if head not in ("zero", "constant") or tail not in ("physical", "fit", "none"):
        raise DeepDoseInputError(f"head must be 'zero' or 'constant' and tail 'physical', 'fit' or 'none' "
                                 f"(got {head!r}, {tail!r}).")
    head_part = y[:, 0] * t[0] * (0.5 if head == "zero" else 1.0)
    body = (0.5 * (y[:, 1:] + y[:, :-1]) * (t[1:] - t[:-1])).sum(dim=1)
    lam = torch.full_like(head_part, float(lambda_phys_per_h))
    if tail == "fit" and t.numel() >= 2:
        ok = (y[:, -1] > 0) & (y[:, -2] > 0)
        fitted = torch.log(y[:, -2].clamp_min(1e-300) / y[:, -1].clamp_min(1e-300)) / (t[-1] - t[-2])
        lam = torch.where(ok, torch.maximum(fitted, lam), lam)
    tail_part = torch.zeros_like(head_part) if tail == "none" else y[:, -1] / lam
    notes = [f"trapezoid; 0 h → {float(t[0]):g} h: " + ("linear rise from 0 at injection" if head == "zero"
                                                      else "first value held constant back to injection"),
             {"physical": "after the last point: physical decay only (no biological washout: an upper bound)",
              "fit": "after the last point: decay constant of the last two points (≥ physical)",
              "none": "nothing after the last point (truncated)"}[tail]]
    integral = head_part + body + tail_part
    n = y.shape[0]
    return CurveIntegration(_np(integral), "trapezoid",
                            {"head": _np(head_part), "body": _np(body), "tail": _np(tail_part),
                             "tail_lambda_per_h": _np(lam)},
                            np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan),
                            np.zeros(tuple(y.shape)), np.ones(n, dtype=bool), notes)


# --------------------------------------------------------------------------------- exponential models
# Fits run in scaled units (t / t_max, y / max|y| per curve) on log-parameters, so every constraint is built in:
#   mono       θ = (ln A, ln(λ − λmin))
#   bi         θ = (ln A, ln(λw − λmin), ln(λu − λw))
#   bi-washout θ = (ln A1, ln A2, ln(λ2 − λmin), ln(λ1 − λ2))   (phase 1 fast, phase 2 slow)
def _rates(model: str, theta: torch.Tensor, lam_min: float):
    if model == "mono":
        return (lam_min + torch.exp(theta[..., 1]),)
    if model == "bi":
        lw = lam_min + torch.exp(theta[..., 1])
        return lw, lw + torch.exp(theta[..., 2])
    slow = lam_min + torch.exp(theta[..., 2])
    return slow + torch.exp(theta[..., 3]), slow


def _curve(model: str, theta: torch.Tensor, t: torch.Tensor, lam_min: float) -> torch.Tensor:
    """Model values for θ shaped (..., p) at t (n,) → (..., n)."""
    rates = _rates(model, theta, lam_min)
    if model == "mono":
        return torch.exp(theta[..., :1] - rates[0][..., None] * t)
    if model == "bi":
        return torch.exp(theta[..., :1]) * (torch.exp(-rates[0][..., None] * t) - torch.exp(-rates[1][..., None] * t))
    return (torch.exp(theta[..., :1] - rates[0][..., None] * t) + torch.exp(theta[..., 1:2] - rates[1][..., None] * t))


def _jacobian(model: str, theta: torch.Tensor, t: torch.Tensor, lam_min: float) -> torch.Tensor:
    """∂(model values)/∂θ for θ (B, p) → (B, n, p), analytic."""
    rates = _rates(model, theta, lam_min)
    if model == "mono":
        f = torch.exp(theta[:, :1] - rates[0][:, None] * t)
        return torch.stack([f, -t * torch.exp(theta[:, 1:2]) * f], dim=-1)
    if model == "bi":
        amplitude = torch.exp(theta[:, :1])
        uptake = torch.exp(-rates[1][:, None] * t)
        f = amplitude * (torch.exp(-rates[0][:, None] * t) - uptake)
        return torch.stack([f, -t * torch.exp(theta[:, 1:2]) * f, t * torch.exp(theta[:, 2:3]) * amplitude * uptake],
                           dim=-1)
    fast = torch.exp(theta[:, :1] - rates[0][:, None] * t)
    slow = torch.exp(theta[:, 1:2] - rates[1][:, None] * t)
    return torch.stack([fast, slow, -t * torch.exp(theta[:, 2:3]) * (fast + slow),
                        -t * torch.exp(theta[:, 3:4]) * fast], dim=-1)


def _integral(model: str, theta: torch.Tensor, lam_min: float) -> torch.Tensor:
    rates = _rates(model, theta, lam_min)
    if model == "mono":
        return torch.exp(theta[..., 0]) / rates[0]
    if model == "bi":
        return torch.exp(theta[..., 0]) * (1.0 / rates[0] - 1.0 / rates[1])
    return torch.exp(theta[..., 0]) / rates[0] + torch.exp(theta[..., 1]) / rates[1]


def _log_linear(t: torch.Tensor, y: torch.Tensor, weight: torch.Tensor):
    """Weighted regression of ln y on t per curve → (intercept ln A, slope −λ); weight 0 ignores a point."""
    ly = torch.log(y.clamp_min(1e-12))
    w = weight
    sw = w.sum(1).clamp_min(1e-30)
    tm = (w * t).sum(1) / sw
    lm = (w * ly).sum(1) / sw
    var = (w * (t - tm[:, None]) ** 2).sum(1).clamp_min(1e-30)
    slope = (w * (t - tm[:, None]) * (ly - lm[:, None])).sum(1) / var
    return lm - slope * tm, slope


def _starts(model: str, t: torch.Tensor, y: torch.Tensor, lam_min: float) -> torch.Tensor:
    """Initial θ, shaped (B, K, p): K starting points per curve (the best fit of the K is kept)."""
    B, n = y.shape
    positive = (y > 0).to(y.dtype)
    # washout phase: the points from the maximum on (at least the last two), weighted by y² (≈ linear LSQ)
    peak = torch.argmax(y, dim=1, keepdim=True).clamp_max(n - 2)
    after = (torch.arange(n, device=y.device)[None, :] >= peak).to(y.dtype) * positive * y.clamp_min(0) ** 2
    after = torch.where(after.sum(1, keepdim=True) > 0, after, positive + 1e-6)
    intercept, slope = _log_linear(t, y, after)
    lam = torch.maximum(-slope, torch.full_like(slope, lam_min + 1e-3))
    log_excess = torch.log((lam - lam_min).clamp_min(1e-3))
    if model == "mono":
        return torch.stack([intercept, log_excess], dim=-1)[:, None, :]
    factors = torch.tensor([2.0, 6.0, 20.0, 80.0], dtype=y.dtype, device=y.device)
    k = factors.numel()
    if model == "bi":
        # amplitude: the washout line back-extrapolated to t = 0; uptake rates 2 to 80 × the washout rate
        log_a = intercept[:, None].expand(B, k)
        return torch.stack([log_a, log_excess[:, None].expand(B, k),
                            torch.log(lam[:, None] * (factors - 1.0))], dim=-1)
    # bi-washout: slow phase from the tail, fast phase carrying what the slow one misses at the first point
    slow_first = torch.exp(intercept - lam * t[0])
    fast_first = (y[:, 0] - slow_first).abs().clamp_min(1e-3 * y[:, 0].abs().clamp_min(1e-12))
    fast_rates = lam[:, None] * factors
    log_a1 = torch.log(fast_first)[:, None] + fast_rates * t[0]
    return torch.stack([log_a1.clamp(-_LOG_CLAMP, _LOG_CLAMP), intercept[:, None].expand(B, k),
                        log_excess[:, None].expand(B, k), torch.log(lam[:, None] * (factors - 1.0))], dim=-1)


def _levenberg_marquardt(model: str, theta: torch.Tensor, t: torch.Tensor, y: torch.Tensor, lam_min: float,
                         max_iterations: int = 100, tolerance: float = 1e-10):
    """Batched Levenberg–Marquardt on θ (B, p) for data y (B, n) → (θ, SSE (B,), converged (B,)).

    A curve stops when an accepted step improves the SSE by less than ``tolerance`` × Σy², when the step no
    longer moves θ (a bound of :data:`_LOG_CLAMP` or a stationary point) or when the fit is exact;
    ``converged`` is False only for curves still running after ``max_iterations``.
    """
    B, p = theta.shape
    eye = torch.eye(p, dtype=theta.dtype, device=theta.device)
    sse = ((_curve(model, theta, t, lam_min) - y) ** 2).sum(1)
    sse = torch.where(torch.isfinite(sse), sse, torch.full_like(sse, float("inf")))
    mu = torch.full((B,), 1e-2, dtype=theta.dtype, device=theta.device)
    converged = torch.zeros(B, dtype=torch.bool, device=theta.device)
    active = torch.arange(B, device=theta.device)
    for _ in range(max_iterations):
        if active.numel() == 0:
            break
        th, yy, m = theta[active], y[active], mu[active]
        r = _curve(model, th, t, lam_min) - yy
        J = _jacobian(model, th, t, lam_min)
        JtJ = J.transpose(1, 2) @ J
        g = (J.transpose(1, 2) @ r[..., None])[..., 0]
        damped = JtJ + m[:, None, None] * (torch.diagonal(JtJ, dim1=1, dim2=2)[:, :, None] * eye + 1e-9 * eye)
        solution, info = torch.linalg.solve_ex(damped, g[..., None])  # singular (e.g. all-zero curve): no step
        step = -solution[..., 0]
        step = torch.where(torch.isfinite(step) & (info == 0)[:, None], step, torch.zeros_like(step))
        trial = (th + step).clamp(-_LOG_CLAMP, _LOG_CLAMP)
        new_sse = ((_curve(model, trial, t, lam_min) - yy) ** 2).sum(1)
        old_sse = sse[active]
        better = torch.isfinite(new_sse) & (new_sse < old_sse)
        theta[active] = torch.where(better[:, None], trial, th)
        sse[active] = torch.where(better, new_sse, old_sse)
        mu[active] = torch.where(better, m * 0.3, m * 4.0)
        scale = (yy ** 2).sum(1).clamp_min(1e-300)
        done = (better & ((old_sse - new_sse) <= tolerance * scale)) | (sse[active] <= 1e-28 * scale) | \
            ((trial - th).abs().amax(1) < 1e-9) | (mu[active] > 1e10)
        converged[active] = done
        active = active[~done]
    return theta, sse, converged


def fit_exponential(times_h, values, model: str = "mono", lambda_min_per_h: float = 0.0,
                    device: str = "cpu", max_iterations: int = 200) -> CurveIntegration:
    """Least-squares fit of ``mono``, ``bi`` (uptake–washout) or ``bi-washout`` and its analytic integral 0 → ∞.

    Args:
        times_h: (n,) time points [h], > 0, increasing.
        values: (B, n) or (n,) curves (e.g. dose rate mGy/h); unweighted least squares on the values.
        lambda_min_per_h: lower bound of every decay constant [1/h]; pass λ_phys so that no phase clears
            slower than physical decay (biological clearance ≥ 0), or 0 for no constraint.
    """
    if model not in _N_PARAMETERS:
        raise DeepDoseInputError(f"Unknown fit model {model!r}; use one of {', '.join(_N_PARAMETERS)}.")
    t, y = _as_batch(times_h, values, device)
    B, n = y.shape
    k = _N_PARAMETERS[model]
    if n < MIN_TIME_POINTS[model]:
        raise DeepDoseInputError(f"The {model} model needs at least {MIN_TIME_POINTS[model]} time points (got {n}).")
    t_scale = float(t[-1])
    y_scale = y.abs().amax(1).clamp_min(1e-300)
    ts, ys = t / t_scale, y / y_scale[:, None]
    lam_min = float(lambda_min_per_h) * t_scale
    starts = _starts(model, ts, ys, lam_min)
    K = starts.shape[1]
    theta, sse, ok = _levenberg_marquardt(model, starts.reshape(B * K, k).clone(), ts,
                                          ys.repeat_interleave(K, dim=0), lam_min, max_iterations)
    best = torch.argmin(sse.reshape(B, K), dim=1)
    pick = torch.arange(B, device=y.device) * K + best
    theta, sse, ok = theta[pick], sse[pick], ok[pick]
    has_signal = y.abs().amax(1) > 0
    integral = torch.where(has_signal, _integral(model, theta, lam_min) * y_scale * t_scale, torch.zeros_like(sse))
    fitted = _curve(model, theta, ts, lam_min) * y_scale[:, None]
    residuals = torch.where(has_signal[:, None], y - fitted, torch.zeros_like(y))
    sse_abs = (residuals ** 2).sum(1)
    sst = ((y - y.mean(1, keepdim=True)) ** 2).sum(1)
    r2 = torch.where(sst > 0, 1.0 - sse_abs / sst.clamp_min(1e-300), torch.full_like(sst, float("nan")))
    floor = (1e-24 * (y ** 2).sum(1)).clamp_min(1e-300)  # an exact fit would give ln 0
    aic = n * torch.log(sse_abs.clamp_min(floor) / n) + 2 * k
    aicc = aic + (2.0 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else float("nan"))
    amplitude = torch.exp(theta[:, :2]) * y_scale[:, None]
    rates = [r / t_scale for r in _rates(model, theta, lam_min)]
    params = {"mono": lambda: {"A": amplitude[:, 0], "lambda_per_h": rates[0]},
              "bi": lambda: {"A": amplitude[:, 0], "lambda_washout_per_h": rates[0], "lambda_uptake_per_h": rates[1]},
              "bi-washout": lambda: {"A_fast": amplitude[:, 0], "A_slow": amplitude[:, 1],
                                     "lambda_fast_per_h": rates[0], "lambda_slow_per_h": rates[1]}}[model]()
    for name in list(params):
        if name.startswith("lambda"):
            params[name.replace("lambda_", "half_life_").replace("_per_h", "_h")] = math.log(2.0) / params[name]
    bound = f"every decay constant ≥ {lambda_min_per_h:.4g}/h" if lambda_min_per_h > 0 else "decay constants > 0"
    notes = [{"mono": "mono-exponential A·exp(−λt) fitted to all points, integrated 0 → ∞ (instantaneous uptake)",
              "bi": "uptake–washout A·(exp(−λw·t) − exp(−λu·t)), λu > λw, integrated 0 → ∞",
              "bi-washout": "two-phase washout A1·exp(−λ1·t) + A2·exp(−λ2·t), integrated 0 → ∞"}[model]
             + f"; unweighted least squares, {bound}"]
    return CurveIntegration(_np(integral), model, {key: _np(v) for key, v in params.items()}, _np(r2), _np(aic),
                            _np(aicc), _np(residuals), _np(ok | ~has_signal), notes)


# ------------------------------------------------------------------------------------ single time point
def integrate_single_time_point(time_h: float, values, *, effective_half_life_h: Optional[float] = None
                                ) -> CurveIntegration:
    """STP integral 0 → ∞ from the value at one time point [value·h].

    Without ``effective_half_life_h``: Hänscheid et al. (J Nucl Med 2018) y(t)·2t/ln 2. With it (a population
    value): the mono-exponential y(t)·e^(λ t)/λ, λ = ln 2 / T_eff.
    """
    if not time_h > 0:
        raise DeepDoseInputError(f"The single time point must be > 0 h after administration (got {time_h}).")
    y = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if effective_half_life_h is None:
        integral = y * 2.0 * time_h / math.log(2.0)
        note = (f"single time point at {time_h:g} h, Hänscheid et al. 2018: y(t)·2t/ln 2 (exact for an effective "
                "half-life equal to t; mono-exponential clearance assumed)")
    else:
        lam = decay_constant_per_h(effective_half_life_h)
        integral = y * math.exp(lam * time_h) / lam
        note = (f"single time point at {time_h:g} h with a given effective half-life {effective_half_life_h:g} h: "
                "y(t)·exp(λt)/λ (mono-exponential from injection)")
    return _plain(integral, "stp", y.size, note)


def integrate_physical_decay(values, lambda_phys_per_h: float, *, reference_time_h: float = 0.0,
                             integrate_from: str = "injection") -> CurveIntegration:
    """Physical decay only, from one (diagnostic) time point [value·h].

    Args:
        values: values at ``reference_time_h`` (the time the activity of the map refers to, h after injection).
        integrate_from: ``"injection"``: y(t_ref)·e^(λ t_ref)/λ (decay-corrected back to the injection,
            instantaneous uptake, no washout); ``"reference"``: y(t_ref)/λ from the reference time on.
    """
    if reference_time_h < 0 or integrate_from not in ("injection", "reference"):
        raise DeepDoseInputError("reference_time_h must be ≥ 0 h and integrate_from 'injection' or 'reference'.")
    y = np.atleast_1d(np.asarray(values, dtype=np.float64))
    factor = math.exp(lambda_phys_per_h * reference_time_h) if integrate_from == "injection" else 1.0
    note = (f"physical decay only (T½ = {math.log(2.0) / lambda_phys_per_h:.4g} h, no biological washout) from the "
            + (f"injection: value at {reference_time_h:g} h decay-corrected back by ×{factor:.4g}"
               if integrate_from == "injection" else f"reference time {reference_time_h:g} h on"))
    return _plain(y * factor / lambda_phys_per_h, "physical", y.size, note)


def _plain(integral: np.ndarray, model: str, n: int, note: str) -> CurveIntegration:
    nan = np.full(n, np.nan)
    return CurveIntegration(integral.astype(np.float64), model, {}, nan, nan.copy(), nan.copy(), np.zeros((n, 1)),
                            np.ones(n, dtype=bool), [note])


# ------------------------------------------------------------------------------------------ dispatcher
def integrate_curves(times_h: Sequence[float], values, model: str, lambda_phys_per_h: float, *,
                     constrain_to_physical: bool = True, effective_half_life_h: Optional[float] = None,
                     head: str = "zero", tail: str = "physical", integrate_from: str = "injection",
                     device: str = "cpu") -> CurveIntegration:
    """Integrate (B, n) curves at ``times_h`` [h] with one of :data:`MODELS` → integrals in value·h.

    ``constrain_to_physical`` bounds fitted decay constants below by λ_phys. ``stp`` and ``physical`` take
    exactly one time point.
    """
    if model not in MODELS:
        raise DeepDoseInputError(f"Unknown time-integration model {model!r}; use one of {', '.join(MODELS)}.")
    n = len(times_h)
    if model in ("stp", "physical") and n != 1:
        raise DeepDoseInputError(f"The {model} model takes exactly one time point (got {n}).")
    if n < MIN_TIME_POINTS[model]:
        raise DeepDoseInputError(f"The {model} model needs at least {MIN_TIME_POINTS[model]} time points (got {n}).")
    if model == "trapezoid":
        return integrate_trapezoid(times_h, values, lambda_phys_per_h, head=head, tail=tail, device=device)
    if model == "stp":
        return integrate_single_time_point(float(times_h[0]), np.asarray(values).reshape(-1),
                                           effective_half_life_h=effective_half_life_h)
    if model == "physical":
        return integrate_physical_decay(np.asarray(values).reshape(-1), lambda_phys_per_h,
                                        reference_time_h=float(times_h[0]), integrate_from=integrate_from)
    return fit_exponential(times_h, values, model, lambda_phys_per_h if constrain_to_physical else 0.0,
                           device=device)


def integrate_voxels(times_h: Sequence[float], arrays: Sequence[np.ndarray], model: str, lambda_phys_per_h: float, *,
                     chunk_voxels: int = 1 << 16, progress: Optional[Callable[[float, str], None]] = None,
                     device: str = "cpu", **options) -> Dict[str, np.ndarray]:
    """Integrate every voxel of n registered maps (arrays of one shape, e.g. (z, y, x)) → maps in value·h.

    Voxels that are ≤ 0 at every time point integrate to 0 without a fit. Where a fit fails (not finite,
    or R² < 0: worse than a constant) the voxel falls back to ``trapezoid`` with the physical tail.

    Returns:
        ``integral`` (value·h), ``r_squared`` (NaN without a fit) and ``fallback`` (bool) arrays of the
        maps' shape, and ``notes`` (list of str).
    """
    shape = arrays[0].shape
    stack = np.stack([np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays], axis=1)  # (voxels, n)
    integral = np.zeros(stack.shape[0])
    r2 = np.full(stack.shape[0], np.nan)
    fallback = np.zeros(stack.shape[0], dtype=bool)
    work = np.flatnonzero((stack > 0).any(axis=1))
    notes: List[str] = []
    for start in range(0, max(work.size, 1), chunk_voxels):
        index = work[start:start + chunk_voxels]
        if index.size == 0:
            break
        if progress is not None:
            progress(start / max(work.size, 1), f"{model}: voxels {start}-{start + index.size} of {work.size}")
        result = integrate_curves(times_h, stack[index], model, lambda_phys_per_h, device=device, **options)
        notes = result.notes
        value, quality = result.integral, result.r_squared
        if model in _N_PARAMETERS:
            bad = ~np.isfinite(value) | (np.nan_to_num(quality, nan=1.0) < 0)
            if bad.any():
                trap = integrate_trapezoid(times_h, stack[index[bad]], lambda_phys_per_h, device=device).integral
                value, quality = value.copy(), quality.copy()
                value[bad], quality[bad] = trap, np.nan
                fallback[index[bad]] = True
        integral[index], r2[index] = value, quality
    if fallback.any():
        notes = notes + [f"{int(fallback.sum())} of {work.size} voxel(s) with activity: fit failed (R² < 0 or not "
                         "finite), trapezoid with physical tail used instead"]
    if progress is not None:
        progress(1.0, "time integration done")
    return {"integral": integral.reshape(shape), "r_squared": r2.reshape(shape), "fallback": fallback.reshape(shape),
            "notes": notes}
