"""Heterogeneity correction of the photon dose: unscattered photons cross lung by its density, not as water.

The photon kernel of :mod:`.scaled_vsv` comes from an infinite soft-tissue medium, so the convolution attenuates a
photon crossing 5 cm of lung as if it crossed 5 cm of water. Against the MC engine the baseline's photon dose is
12–19 % low in lung (deeper is lower), for Lu-177 and Ga-68 alike, and 15 % low inside a lung with activity of its
own (docs/validation/photon_heterogeneity.md).

The correction adds the dose of the *unscattered* photons that the water kernel takes away:

    ΔP(x) = P_het(x) − P_hom(x),

two collapsed-cone estimates of the primary photon dose at x with the same 26 line directions and the same sampling.
Along a direction ω the primary dose is ∫ A(x − r ω) G_p(T(r)) dr, with G_p(r) = 4π r² K_p(r) =
Σ_lines y E (μ_en/ρ) exp(−μ r) in water (exact for unscattered photons: the shipped attenuation tables, no fit) and
T the radiological distance ∫ ρ dr. P_het follows each line through the voxels' densities, P_hom through water; in
soft tissue ΔP = 0 exactly, and the discretisation of the directions largely cancels in the difference.

Scattered photons are left to the kernel. Scaling the whole kernel along the lines (O'Connor's theorem, exact in
a uniform medium of any density) was measured first and corrects only a third of the deficit: it also scales the
scatter *created* along the line with the density, while in a body most scatter that reaches the lung was created
in the tissue around the source. The primary alone brings the lung's photon dose within 0–4 % of MC in the
phantoms (it stays a little low: scattered photons, too, cross lung more easily).

Each exponential is summed along a line by one recursive pass (voxels are piecewise uniform: the segment integral
is exact), so the cost is 26 directions × the lines' exponentials × the voxels; it runs on a grid of about
:data:`COARSE_VOXEL_mm` (ΔP varies over centimetres) and is interpolated back. Voxels lighter than
:data:`~DeepDoseLib.tissue.TISSUE_MIN_DENSITY_g_per_cm3` count as that density; the grid is the world (as for the
MC engine). Arrays (z, y, x); spacings (x, y, z) as everywhere in DeepDose; lengths mm; densities g/cm³; dose
rates mGy/h.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numba
import numpy as np
import torch

from ..nuclides import PHOTON_KINDS, Nuclide, get_nuclide
from ..physics.photons import photon_mu_rho
from ..tissue import TISSUE_MIN_DENSITY_g_per_cm3
from ..units import MGY_PER_H_PER_BQ_PER_ML_MEV_PER_G_PER_CM3

#: Points of the Fibonacci sphere that give each of the 26 line directions its solid angle.
DIRECTION_SAMPLES = 20_000
#: Voxel size [mm] of the grid ΔP is computed on (coarser input grids are used as they are).
COARSE_VOXEL_mm = 8.0
#: Lines are kept, strongest first, until they carry this share of the energy their unscattered photons deposit
#: (y·E·μ_en/μ; soft X-rays that stop within a voxel drop out); lines whose attenuation coefficients differ by
#: less than :data:`MERGE_RELATIVE_MU` are merged.
LINE_DOSE_SHARE = 0.95
MERGE_RELATIVE_MU = 0.2


def line_directions(spacing_mm: Sequence[float]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 26 neighbour steps (z, y, x) in voxels, their length [mm] and their share of the solid angle (sum 1):
    each point of a Fibonacci sphere counts for the physical direction nearest to it. ``spacing_mm`` (x, y, z)."""
    steps = np.array([(z, y, x) for z in (-1, 0, 1) for y in (-1, 0, 1) for x in (-1, 0, 1) if (z, y, x) != (0, 0, 0)],
                     np.int64)
    physical = steps * np.asarray(spacing_mm, np.float64)[::-1]
    lengths = np.linalg.norm(physical, axis=1)
    units = physical / lengths[:, None]
    i = np.arange(DIRECTION_SAMPLES) + 0.5
    polar = np.arccos(1.0 - 2.0 * i / DIRECTION_SAMPLES)
    azimuth = np.pi * (1.0 + 5.0 ** 0.5) * i
    points = np.stack([np.cos(polar), np.sin(polar) * np.sin(azimuth), np.sin(polar) * np.cos(azimuth)], axis=1)
    nearest = np.argmax(points @ units.T, axis=1)
    weights = np.bincount(nearest, minlength=len(steps)) / DIRECTION_SAMPLES
    opposite = [int(np.flatnonzero((steps == -d).all(axis=1))[0]) for d in steps]
    return steps, lengths, 0.5 * (weights + weights[opposite])  # the kernel is isotropic: d and −d weigh the same


def primary_terms(nuclide: Nuclide) -> Tuple[np.ndarray, np.ndarray]:
    """(a_i [mGy/h per Bq per mm], μ_i [1/mm in water]) of G_p(r) = 4π r² K_p(r) = Σ_i a_i exp(−μ_i r): the
    unscattered photons of the nuclide's photon lines (γ, X, annihilation) in water, strongest first (by the energy
    they deposit, y·E·μ_en/μ), kept and merged as :data:`LINE_DOSE_SHARE` and :data:`MERGE_RELATIVE_MU` say (K_p in
    mGy/h per Bq, r in mm)."""
    energies = np.concatenate([nuclide.lines(k).energies_MeV for k in PHOTON_KINDS])
    yields = np.concatenate([nuclide.lines(k).yields_per_decay for k in PHOTON_KINDS])
    keep = (energies > 0) & (yields > 0)
    if not keep.any():
        return np.zeros(0), np.zeros(0)
    energies, yields = energies[keep], yields[keep]
    mu = photon_mu_rho("water", energies, "total") * 0.1
    # MeV/g per photon/cm² → mGy/h per Bq; × 100: per photon/mm² (r in mm)
    a = (yields * energies * photon_mu_rho("water", energies, "energy_absorption")
         * MGY_PER_H_PER_BQ_PER_ML_MEV_PER_G_PER_CM3 * 100.0)
    deposited = a / mu
    order = np.argsort(-deposited)
    a, mu, deposited = a[order], mu[order], deposited[order]
    n = int(np.searchsorted(np.cumsum(deposited), LINE_DOSE_SHARE * deposited.sum())) + 1
    merged_a, merged_mu = [], []
    for ai, mi in zip(a[:n], mu[:n]):
        for j, mj in enumerate(merged_mu):
            if abs(mi - mj) <= MERGE_RELATIVE_MU * mj:
                merged_mu[j] = (merged_a[j] * mj + ai * mi) / (merged_a[j] + ai)
                merged_a[j] += ai
                break
        else:
            merged_a.append(float(ai))
            merged_mu.append(float(mi))
    return np.asarray(merged_a), np.asarray(merged_mu)


def _segments(a: np.ndarray, mu: np.ndarray, rho: np.ndarray, length: float) -> Tuple[np.ndarray, ...]:
    """Whole and half steps of ``length`` through uniform segments of density ``rho`` (any shape), the terms i on a
    last axis (float32): (∫_0^length a_i·exp(−μ_i ρ s) ds, exp(−μ_i ρ length), the same two over length/2). A whole
    step is two half steps: its transmission is the half's squared and its integral the half's × (1 + the half's
    transmission)."""
    x = rho[..., None].astype(np.float32) * (mu * 0.5 * length).astype(np.float32)
    half_att = np.exp(-x)
    small = x < 1e-4
    half = np.where(small, 1.0 - 0.5 * x, -np.expm1(-x) / np.where(small, 1.0, x)) * (a * 0.5 * length).astype(np.float32)
    return (half * (1.0 + half_att)).astype(np.float32), half_att * half_att, half.astype(np.float32), half_att


@numba.njit(parallel=True, cache=True)
def _sweep(source, starts, dz, dy, dx, weight, full, att, half, half_att, full_w, att_w, half_w, half_att_w,
           excess):
    """Adds ``weight`` × (het − hom) along every line of the step (dz, dy, dx) to ``excess``. Each line begins at one
    of ``starts`` (the voxels whose predecessor lies outside the grid) and is walked on its own, the lines in
    parallel. Along a line, F is the dose a point just downstream of the current voxel receives from it and every
    voxel upstream; a voxel receives its own upstream half step and F of its predecessor. ``full``/``att``
    (``half``/``half_att``): segment integral and transmission of a whole (half) step through each voxel; the ``_w``
    arrays: the same through water."""
    nz, ny, nx = source.shape
    n_terms = full.shape[3]
    for k in numba.prange(starts.shape[0]):
        z, y, x = starts[k, 0], starts[k, 1], starts[k, 2]
        f_het = np.zeros(n_terms)
        f_hom = np.zeros(n_terms)
        while 0 <= z < nz and 0 <= y < ny and 0 <= x < nx:
            s = source[z, y, x]
            difference = 0.0
            for i in range(n_terms):
                difference += (s * (half[z, y, x, i] - half_w[i]) + half_att[z, y, x, i] * f_het[i]
                               - half_att_w[i] * f_hom[i])
                f_het[i] = s * full[z, y, x, i] + att[z, y, x, i] * f_het[i]
                f_hom[i] = s * full_w[i] + att_w[i] * f_hom[i]
            excess[z, y, x] += weight * difference
            z += dz
            y += dy
            x += dx


def _line_starts(shape: Tuple[int, int, int], step: np.ndarray) -> np.ndarray:
    """(n, 3) voxels (z, y, x) whose predecessor along ``step`` lies outside the grid: where the lines begin."""
    grids = np.ogrid[:shape[0], :shape[1], :shape[2]]
    outside = np.zeros(shape, bool)
    for axis, (g, d) in enumerate(zip(grids, step)):
        outside |= (g - d < 0) | (g - d >= shape[axis])
    return np.argwhere(outside).astype(np.int64)


def primary_excess_on_grid(activity_Bq_per_mL: np.ndarray, density_g_per_cm3: np.ndarray,
                           spacing_mm: Sequence[float], terms: Tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """ΔP = P_het − P_hom [mGy/h] on the grid as given (module docstring); ``terms``: :func:`primary_terms`;
    ``spacing_mm`` (x, y, z)."""
    source = np.ascontiguousarray(np.asarray(activity_Bq_per_mL, np.float64) * 1e-3, np.float32)  # Bq/mm³
    excess = np.zeros(source.shape)
    a, mu = (np.asarray(t, np.float64) for t in terms)
    if a.size == 0:
        return excess.astype(np.float32)
    rho = np.maximum(np.asarray(density_g_per_cm3, np.float32), np.float32(TISSUE_MIN_DENSITY_g_per_cm3))
    water = np.ones(1, np.float32)
    steps, lengths, weights = line_directions(spacing_mm)
    for length in np.unique(np.round(lengths, 6)):
        segments = _segments(a, mu, rho, length)
        in_water = [v[0] for v in _segments(a, mu, water, length)]
        same = np.isclose(lengths, length)
        for (dz, dy, dx), weight in zip(steps[same], weights[same]):
            _sweep(source, _line_starts(source.shape, (dz, dy, dx)), int(dz), int(dy), int(dx), float(weight),
                   *segments, *in_water, excess)
    return excess.astype(np.float32)


def coarse_factors(spacing_mm: Sequence[float], coarse_voxel_mm: float = COARSE_VOXEL_mm) -> Tuple[int, int, int]:
    """Whole number of voxels per coarse voxel along the array axes (z, y, x), so that the coarse voxel is about
    ``coarse_voxel_mm``; ``spacing_mm`` (x, y, z)."""
    return tuple(max(1, int(round(coarse_voxel_mm / float(s)))) for s in spacing_mm[::-1])


def primary_excess_dose_rate(activity_Bq_per_mL: np.ndarray, density_g_per_cm3: np.ndarray,
                             spacing_mm: Sequence[float], terms: Tuple[np.ndarray, np.ndarray],
                             coarse_voxel_mm: float = COARSE_VOXEL_mm) -> np.ndarray:
    """ΔP [mGy/h, float32] on the input grid: :func:`primary_excess_on_grid` on a grid of blocks of about
    ``coarse_voxel_mm`` (activity and density averaged), interpolated back (trilinear between block centres).
    ``spacing_mm`` (x, y, z)."""
    factors = coarse_factors(spacing_mm, coarse_voxel_mm)
    if factors == (1, 1, 1):
        return primary_excess_on_grid(activity_Bq_per_mL, density_g_per_cm3, spacing_mm, terms)
    shape = np.shape(activity_Bq_per_mL)
    padded = tuple(-(-n // f) * f for n, f in zip(shape, factors))
    pad = [(0, p - n) for p, n in zip(padded, shape)]
    activity = np.pad(np.asarray(activity_Bq_per_mL, np.float64), pad)
    rho = np.pad(np.asarray(density_g_per_cm3, np.float64), pad, mode="edge")
    blocks = tuple(x for p, f in zip(padded, factors) for x in (p // f, f))
    coarse_activity = activity.reshape(blocks).mean(axis=(1, 3, 5))
    coarse_rho = rho.reshape(blocks).mean(axis=(1, 3, 5))
    coarse_spacing = tuple(float(s) * f for s, f in zip(spacing_mm, factors[::-1]))
    coarse = primary_excess_on_grid(coarse_activity, coarse_rho, coarse_spacing, terms)
    # trilinear between block centres, clamped at the edges (align_corners=False: output voxel i sits at (i + ½)/f − ½)
    fine = torch.nn.functional.interpolate(torch.from_numpy(coarse)[None, None], size=padded, mode="trilinear",
                                           align_corners=False)[0, 0]
    return np.ascontiguousarray(fine[:shape[0], :shape[1], :shape[2]].numpy(), dtype=np.float32)


def nuclide_primary_excess(nuclide: Nuclide | str, activity_Bq_per_mL: np.ndarray, density_g_per_cm3: np.ndarray,
                           spacing_mm: Sequence[float]) -> np.ndarray:
    """ΔP [mGy/h] of ``nuclide``'s photon lines (:func:`primary_terms`) on the activity's grid
    (:func:`primary_excess_dose_rate`); ``spacing_mm`` (x, y, z). Negative where bone shields."""
    nuc = get_nuclide(nuclide) if isinstance(nuclide, str) else nuclide
    return primary_excess_dose_rate(activity_Bq_per_mL, density_g_per_cm3, spacing_mm, primary_terms(nuc))
