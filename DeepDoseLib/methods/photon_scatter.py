"""Scatter-medium correction of the photon kernel: scattered photons need a body to scatter in.

A photon kernel computed in an infinite (here: 30 cm, cut at 150 mm) soft-tissue medium contains the
dose of photons scattered anywhere in that medium. In a patient the medium ends — at the skin and, for a
CT that cuts through the body, at the ends of the field of view, beyond which the Monte Carlo engine
(and so the reference) has nothing. Near such a boundary, and everywhere in a small or thin body, the
scattered part of the convolution is too high: in an 88 mm slab the scattered photon dose is 25–45 %
below the kernel's (Ga-68, measured with the band tally), the whole photon dose 5–15 %; in bone, where the
low-energy scatter is absorbed photoelectrically, more.

The correction scales the scattered part of the photon dose at each voxel by

    f(x) = a + b · c(x),   c(x) = Σ_r M(x + r) w(r) / Σ_r w(r),   w(r) = exp(−r/λ) / r²  (r ≤ R),

where M is 1 in scattering medium (ρ ≥ :data:`TISSUE_MIN_DENSITY_g_per_cm3`: the body, lungs included) and
0 in air and outside the grid (as for the MC engine, the grid is the world). With w ∝ 1/r², c is the
fraction of the directions and distances up to R around x that lie in the body. ``a`` and ``b`` are
fitted per nuclide and voxel size against the MC band tally in uniform soft-tissue cubes (16, 23, 30 cm)
and slabs (88 and 60 mm × 24 cm) (:func:`scatter_medium_coefficients`; Ga-68 at 4 mm: the scattered dose of
those 57 regions, faces to centres, within 3.5 % rms; without it, off by up to 50 %). Because the kernel is
cut at 150 mm, f exceeds 1 in the middle of a large body (scatter from farther away): the fit covers that.

"Scattered" are the photon energy bands wholly below the lowest emission line that carries ≥ 5 % of the
nuclide's photon energy (Ga-68: every band below 350 keV; Lu-177: below 80 keV; :func:`scatter_band_count`);
a voxel's scattered share of the convolution is taken from the kernel it receives (soft tissue's, or bone's
Σ_b R_b·K_b), :func:`scatter_fraction`. Arrays (z, y, x); lengths in mm.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
import torch

from ..nuclides import PHOTON_KINDS, Nuclide
from ..tissue import TISSUE_MIN_DENSITY_g_per_cm3, materials
from .._version import __version__
from ..disk_cache import cached_json
from ..fft_convolution import fft_convolve

#: Radius R [mm] and length λ [mm] of the weight w(r) = exp(−r/λ)/r² of the medium fraction c(x) (the best
#: of R = 150, 300 and λ = 30–300 mm in the Ga-68 calibration).
WEIGHT_RADIUS_mm = 300.0
WEIGHT_LENGTH_mm = 300.0
#: Voxel size [mm] of the coarse grid c(x) is computed on (w is smooth; c is interpolated back).
COARSE_VOXEL_mm = 8.0
#: A photon line carrying at least this share of the photon energy is primary; the bands below the lowest
#: such line hold only scattered photons (and weak lines).
PRIMARY_LINE_ENERGY_SHARE = 0.05
#: Uniform soft-tissue sources of the calibration, extent (z, y, x) [mm]: cubes of 16, 23 and 30 cm, slabs of 88
#: and 60 mm (the thickness of a short PET/CT field of view) across 24 cm.
CALIBRATION_SOURCES_mm = ((164.0,) * 3, (228.0,) * 3, (300.0,) * 3, (88.0, 244.0, 244.0), (60.0, 244.0, 244.0))


def scatter_band_count(nuclide: Nuclide, band_edges_MeV: Sequence[float]) -> int:
    """Number of lowest bands (bands between the sorted edges; band 0 below the first) that lie wholly below
    the nuclide's lowest photon line with ≥ :data:`PRIMARY_LINE_ENERGY_SHARE` of its photon energy."""
    energies = np.concatenate([nuclide.lines(k).energies_MeV for k in PHOTON_KINDS])
    yields = np.concatenate([nuclide.lines(k).yields_per_decay for k in PHOTON_KINDS])
    energy = energies * yields
    if not energy.sum() > 0:
        return 0
    lowest = float(energies[energy >= PRIMARY_LINE_ENERGY_SHARE * energy.sum()].min())
    return int(sum(1 for edge in sorted(band_edges_MeV) if edge <= lowest))


def medium_fraction(density_g_per_cm3: np.ndarray, spacing_mm: Sequence[float], device: str = "cpu") -> np.ndarray:
    """c(x) of the module docstring: the w-weighted fraction of the sphere of :data:`WEIGHT_RADIUS_mm` around
    every voxel that lies in scattering medium (0 … 1; computed on a grid of about :data:`COARSE_VOXEL_mm`).
    ``spacing_mm`` (x, y, z), the array (z, y, x)."""
    medium = torch.as_tensor(np.asarray(density_g_per_cm3) >= TISSUE_MIN_DENSITY_g_per_cm3, dtype=torch.float64)
    spacing_zyx = [float(s) for s in spacing_mm][::-1]
    step = [max(1, int(round(COARSE_VOXEL_mm / s))) for s in spacing_zyx]
    pad = [(-n) % k for n, k in zip(medium.shape, step)]
    coarse = torch.nn.functional.avg_pool3d(  # outside the grid counts as empty: pad with zeros, then average
        torch.nn.functional.pad(medium, (0, pad[2], 0, pad[1], 0, pad[0]))[None, None], step)
    coarse_spacing = [s * k for s, k in zip(spacing_zyx, step)]
    half = [int(WEIGHT_RADIUS_mm // h) for h in coarse_spacing]
    axes = [h * np.arange(-n, n + 1) for h, n in zip(coarse_spacing, half)]
    z, y, x = np.meshgrid(*axes, indexing="ij")
    r = np.sqrt(z ** 2 + y ** 2 + x ** 2)
    weight = np.exp(-r / WEIGHT_LENGTH_mm) / np.maximum(r, 0.5 * min(coarse_spacing)) ** 2
    weight[r > WEIGHT_RADIUS_mm] = 0.0
    c = fft_convolve(coarse[0, 0].numpy(), weight / weight.sum(), device=device)
    fine = torch.nn.functional.interpolate(torch.as_tensor(c, dtype=torch.float64)[None, None],
                                           scale_factor=tuple(float(k) for k in step), mode="trilinear",
                                           align_corners=False)[0, 0]
    n = medium.shape
    return fine[:n[0], :n[1], :n[2]].clamp(0.0, 1.0).numpy()


def scatter_fraction(band_kernels: np.ndarray, n_scatter: int, band_factors: Optional[Sequence[float]] = None) -> float:
    """Share of the scattered bands in a kernel Σ_b R_b·K_b (R_b = 1 without ``band_factors``)."""
    energy = np.asarray(band_kernels, np.float64).sum(axis=(1, 2, 3))
    if band_factors is not None:
        energy = energy * np.asarray(band_factors, np.float64)
    return float(energy[:n_scatter].sum() / energy.sum()) if energy.sum() > 0 else 0.0


def _calibration_regions(shape: Tuple[int, ...]) -> list:
    """Regions of one calibration source: slices of the lateral central half from the face to the middle along z,
    and columns at and near the lateral face in the middle slices."""
    nz, ny, nx = shape
    lat = (slice(ny // 4, ny - ny // 4), slice(nx // 4, nx - nx // 4))
    regions = [(slice(z, z + 1),) + lat for z in range(0, nz // 2 + 1, max(1, nz // 12))]
    mid = slice(nz // 2 - 2, nz // 2 + 2)
    regions += [(mid, lat[0], slice(x, x + 1)) for x in (0, 2, 6) if x < nx]
    return regions


def scatter_medium_coefficients(nuclide: Nuclide, spacing_mm: Sequence[float], band_kernels: np.ndarray,
                                band_edges_MeV: Sequence[float], *, n_decays: int, device: str = "auto",
                                use_cache: bool = True) -> Tuple[float, float, float]:
    """(a, b, rms) of f = a + b·c fitted to MC / convolution of the scattered bands in the
    :data:`CALIBRATION_SOURCES_mm` (one MC run of ``n_decays`` each, band tally; least squares over
    :func:`_calibration_regions`; rms of the fit's residual). ``band_kernels``: the soft-tissue photon kernel
    by band (bands, z, y, x) [mGy/h per Bq]. Cached like the kernels."""
    from ..mc import run_monte_carlo

    spacing = tuple(float(v) for v in spacing_mm)
    edges = tuple(sorted(float(v) for v in band_edges_MeV))
    n_scatter = scatter_band_count(nuclide, edges)
    params = {"what": "scatter_medium_coefficients", "nuclide": nuclide.name, "spacing_mm": spacing,
              "n_decays": int(n_decays), "band_edges_MeV": edges, "sources_mm": CALIBRATION_SOURCES_mm,
              "weight_mm": [WEIGHT_RADIUS_mm, WEIGHT_LENGTH_mm, COARSE_VOXEL_mm], "deepdose": __version__,
              # the fit depends on the kernel it corrects: a wider photon kernel needs its own coefficients
              "band_kernel_shape": [int(v) for v in np.shape(band_kernels)]}

    def compute() -> dict:
        soft = materials()["soft_tissue"]
        scatter_kernel = np.asarray(band_kernels, np.float64)[:n_scatter].sum(axis=0)
        measured, fraction = [], []
        for i, extent in enumerate(CALIBRATION_SOURCES_mm):
            shape = tuple(max(8, int(round(e / s))) for e, s in zip(extent, spacing[::-1]))  # (z, y, x)
            activity = np.full(shape, 1e4, np.float32)
            density = np.full(shape, soft.nominal_density_g_per_cm3, np.float32)
            result = run_monte_carlo(activity, density, np.full(shape, soft.label, np.uint8), spacing, nuclide,
                                     int(n_decays), seed=13 + i, device=device, photon_band_edges_MeV=edges)
            mc = result.photon_band_dose_rate_mGy_per_h[:n_scatter].sum(axis=0, dtype=np.float64)
            conv = fft_convolve(activity.astype(np.float64) * float(np.prod(spacing)) * 1e-3, scatter_kernel)
            c = medium_fraction(density, spacing)
            for region in _calibration_regions(shape):
                if conv[region].mean() > 0:
                    measured.append(float(mc[region].mean() / conv[region].mean()))
                    fraction.append(float(c[region].mean()))
        design = np.stack([np.ones(len(fraction)), np.asarray(fraction)], axis=1)
        coef, *_ = np.linalg.lstsq(design, np.asarray(measured), rcond=None)
        rms = float(np.sqrt(np.mean((np.asarray(measured) - design @ coef) ** 2)))
        return {"a": float(coef[0]), "b": float(coef[1]), "rms": rms}

    if n_scatter == 0:
        return 1.0, 0.0, 0.0
    saved = cached_json(f"{nuclide.name}_scatter_medium", params, use_cache, compute)
    return float(saved["a"]), float(saved["b"]), float(saved["rms"])


def scatter_medium_factor(density_g_per_cm3: np.ndarray, spacing_mm: Sequence[float], coefficients: Sequence[float],
                          scatter_fractions: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Factor on each voxel's photon dose: 1 − s·(1 − f(x)) with f = a + b·c(x) and ``scatter_fractions`` s
    (per voxel: the scattered share of the kernel that voxel receives)."""
    a, b = float(coefficients[0]), float(coefficients[1])
    f = a + b * medium_fraction(density_g_per_cm3, spacing_mm, device)
    return 1.0 - np.asarray(scatter_fractions, np.float64) * (1.0 - f)
