"""Recovery coefficients versus volume from a sphere-phantom measurement (e.g. NEMA IEC spheres), for the
partial-volume correction of lesion means.

The user supplies the measured recovery coefficient RC = measured / true activity concentration of each
sphere and its volume [mL] (a JSON file ``{"volume_mL": [...], "recovery": [...]}``, optional
``"u_recovery"``, or a two-column TSV/CSV ``volume_mL, recovery``). The curve fitted to them is the
sigmoid RC(V) = RC_max / (1 + (V₅₀/V)^s) (three parameters: plateau, half-recovery volume [mL], steepness;
the form of Tran-Gia & Lassmann, J Nucl Med 59:1716 (2018)) by least squares (scipy ``curve_fit``), and its
covariance gives u(RC) at any volume. Correcting a lesion mean means dividing it by RC(V) of the lesion's
volume; the relative uncertainty of the correction u(RC)/RC enters the dose uncertainty.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Sequence, Tuple, Union

import numpy as np

from ..errors import DeepDoseInputError


def _model(volume_mL, rc_max, v50_mL, steepness):
    return rc_max / (1.0 + (v50_mL / volume_mL) ** steepness)


@dataclass
class RecoveryCurve:
    """Fitted RC(V) = RC_max / (1 + (V₅₀/V)^s) with its parameter covariance."""

    rc_max: float
    v50_mL: float
    steepness: float
    covariance: np.ndarray
    volumes_mL: np.ndarray
    recovery: np.ndarray
    notes: List[str] = field(default_factory=list)

    def __call__(self, volume_mL: float) -> Tuple[float, float]:
        """(RC, u(RC)) at ``volume_mL`` [mL]."""
        v = float(volume_mL)
        if not v > 0:
            raise DeepDoseInputError(f"A recovery coefficient needs a positive volume (got {v} mL).")
        p = np.array([self.rc_max, self.v50_mL, self.steepness])
        rc = float(_model(v, *p))
        grad = np.zeros(3)
        for i in range(3):  # central differences: the model is smooth, steps relative to each parameter
            step = 1e-6 * max(abs(p[i]), 1e-6)
            hi, lo = p.copy(), p.copy()
            hi[i] += step
            lo[i] -= step
            grad[i] = (_model(v, *hi) - _model(v, *lo)) / (2 * step)
        return rc, float(math.sqrt(max(float(grad @ self.covariance @ grad), 0.0)))

    def describe(self) -> str:
        return (f"recovery curve RC(V) = {self.rc_max:.3f}/(1 + ({self.v50_mL:.3g} mL/V)^{self.steepness:.3g}) "
                f"fitted to {self.volumes_mL.size} spheres ({self.volumes_mL.min():.3g}–{self.volumes_mL.max():.3g} mL)")


def fit_recovery_curve(volumes_mL: Sequence[float], recovery: Sequence[float],
                       u_recovery: Sequence[float] = None) -> RecoveryCurve:
    """Fit RC(V) to sphere measurements (volumes [mL], recovery coefficients, optional uncertainties)."""
    from scipy.optimize import curve_fit

    v = np.asarray(volumes_mL, np.float64)
    rc = np.asarray(recovery, np.float64)
    if v.shape != rc.shape or v.size < 3:
        raise DeepDoseInputError(f"A recovery curve needs at least 3 spheres with one RC each (got {v.size} volumes, "
                                 f"{rc.size} RCs).")
    if np.any(v <= 0) or np.any(rc <= 0) or not np.all(np.isfinite(np.concatenate([v, rc]))):
        raise DeepDoseInputError("Sphere volumes [mL] and recovery coefficients must be positive and finite.")
    sigma = None if u_recovery is None else np.asarray(u_recovery, np.float64)
    start = (float(rc.max()), float(np.median(v)), 1.0)
    try:
        p, cov = curve_fit(_model, v, rc, p0=start, sigma=sigma, absolute_sigma=sigma is not None,
                           bounds=([0.0, 1e-6, 0.1], [2.0, 1e6, 10.0]), maxfev=20000)
    except RuntimeError as exc:
        raise DeepDoseInputError(f"The recovery curve could not be fitted to the spheres: {exc}")
    if not np.all(np.isfinite(cov)):
        cov = np.zeros((3, 3))
    curve = RecoveryCurve(float(p[0]), float(p[1]), float(p[2]), cov, v, rc)
    curve.notes.append(curve.describe())
    return curve


def load_recovery_curve(path: Union[str, Path]) -> RecoveryCurve:
    """Read sphere measurements from JSON (``volume_mL``, ``recovery``[, ``u_recovery``]) or TSV/CSV and fit."""
    p = Path(path)
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(p.read_text())
            return fit_recovery_curve(data["volume_mL"], data["recovery"], data.get("u_recovery"))
        rows = [line.replace(",", "\t").split("\t") for line in p.read_text().splitlines() if line.strip()]
        body = [r for r in rows if not r[0].strip().lower().startswith("volume")]
        return fit_recovery_curve([float(r[0]) for r in body], [float(r[1]) for r in body])
    except (OSError, KeyError, ValueError, IndexError) as exc:
        if isinstance(exc, DeepDoseInputError):
            raise
        raise DeepDoseInputError(f"Recovery file {p}: expected JSON {{\"volume_mL\": [...], \"recovery\": [...]}} or "
                                 f"two columns volume_mL, recovery ({exc}).")
