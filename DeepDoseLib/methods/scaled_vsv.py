"""Density-scaled VSV: voxel S-values with separate charged-particle and photon kernels.

Plain VSV treats the patient as soft tissue; "density-corrected" VSV divides the whole dose by the
local density, which fixes the mass of the charged-particle self-dose but wrongly scales the photon
dose that comes from elsewhere (in lung next to a hot liver or heart it overestimates by tens of %).
This method treats the two parts by their own physics:

* **Charged particles** (β±, conversion and Auger electrons): kernels computed by the MC engine in
  homogeneous media on a ladder of densities ρ_k (material by density:
  :func:`DeepDoseLib.tissue.density_to_material`). Each source voxel's activity is split between the two
  ladder kernels around its own density (linear weights) and spread with them; the deposited energy
  density Σ ρ_k · (w_k·A ⊛ K_k) is divided by the receiving voxel's density. In any homogeneous region
  this is exactly the MC kernel of that density (O'Connor's scaling theorem), and the energy of every
  source voxel is conserved; at interfaces the source voxel's density decides the range (positrons
  born in tissue keep tissue ranges when they cross into lung).
* **Photons** (γ, X, annihilation): the soft-tissue photon kernel without density correction (the
  photon dose per mass is ∝ μ_en/ρ, independent of the density), times a factor of the receiving
  voxel's *material*: R_m = photon dose per mass in a thin layer of material m / that of soft tissue,
  both inside a uniform soft-tissue source (MC, :func:`photon_material_factors`). R_bone is > 1 where
  scattered and low-energy photons are absorbed photoelectrically by calcium (1.67 for Lu-177 at 4 mm).
* **Bone's photon dose follows the local spectrum** (``photon_bands``, the default for new kernels): one
  R does not fit every body, because the share of multiply scattered, low-energy photons grows with the
  size of the source around a point (Ga-68, bone layer in a uniform soft-tissue cube: R_bone = 0.97,
  0.99, 1.04 in 16, 23, 30 cm cubes). The photon kernel is split by the energy of the interacting photon
  into bands (:data:`PHOTON_BAND_EDGES_MeV`), R_b(bone) is measured per band (Ga-68: 0.9 above 350 keV,
  3–4 at 30–80 keV, :func:`photon_band_factors`), and bone voxels receive A ⊛ Σ_b R_b·K_b: the
  convolution itself weighs the bands as the surrounding source does. Lung and adipose have nearly the
  composition of soft tissue (their R_b agree with one factor within the calibration's noise) and keep
  one factor, measured in the same phantom.
* **Unscattered photons cross lung by its density** (``photon_heterogeneity="primary"``, the method's default):
  the water kernel attenuates a photon crossing lung as if it crossed water (photon dose 12–19 % low in lung); the
  dose of the unscattered photons that it takes away is added back, computed along 26 lines through the voxels'
  densities (:mod:`.photon_heterogeneity`; no fitted constant). The bundled Deep-dose networks were trained on the
  baseline without it (``"none"``); their fallback uses it.
* **Scattered photons need a body to scatter in** (``scatter_medium``, the default with the bands): the kernel's
  scatter comes from an infinite medium; the scattered share of each voxel's photon dose is scaled by how much of
  its surroundings is body (:mod:`.photon_scatter`; an 88 mm slab: photon dose 5–10 % too high without it).

It is the physics baseline the Deep-dose network corrects (:mod:`DeepDoseLib.deepdose`), and a method
of its own (``--method vsv_scaled``). All dose rates in mGy/h, activity in Bq/mL, arrays (z, y, x).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

import numpy as np

from ..deepdose_rule import PHOTON_HETEROGENEITY
from ..errors import DeepDoseInputError
from ..nuclides import Nuclide, get_nuclide
from ..tissue import TISSUE_MIN_DENSITY_g_per_cm3, density_to_material, material_names, materials
from .._version import __version__
from .photon_heterogeneity import nuclide_primary_excess
from .photon_scatter import (WEIGHT_LENGTH_mm, WEIGHT_RADIUS_mm, scatter_band_count, scatter_fraction,
                             scatter_medium_coefficients, scatter_medium_factor)
from ..disk_cache import cached_json
from ..fft_convolution import fft_convolve, fft_convolve_many
from .vsv import DEFAULT_KERNEL_DECAYS, DEFAULT_KERNEL_RADIUS_mm, compute_kernel

#: Densities [g/cm³] of the charged-particle kernels (lung, through soft tissue, to cortical bone).
DEFAULT_DENSITY_LADDER = (0.1, 0.2, 0.3, 0.45, 0.65, 0.85, 1.0, 1.1, 1.25, 1.5, 1.75, 2.0)
#: Charged-particle kernel extent × density [g/cm²] from the centre (2.4 cm of water: beyond the
#: CSDA range of every β spectrum of the bundled nuclides, 1.1 cm for Y-90), capped at 150 mm.
CHARGED_KERNEL_RADIUS_g_per_cm2 = 2.4
#: Charged particles count as having crossed a density interface (:func:`charged_dose_rates`) where the receiving
#: voxel's density lies outside the densities of the source voxels that use the kernel (its ladder neighbours),
#: widened by this factor: soft tissue into lung or bone does, soft tissue into adipose does not.
INTERFACE_DENSITY_RATIO = 1.15
#: Below the tissue threshold (gas, air) the charged-particle dose uses the lowest kernel of the ladder.
#: Charged-particle kernels are cropped to the smallest centred box outside which this fraction of
#: their energy lies (the statistical tail of the few longest tracks; keeps model files small).
CROP_ENERGY_FRACTION = 1e-4
#: Energies [MeV] of the interacting photon that split the photon kernel into bands (``photon_bands``):
#: around the region where the photoelectric effect of calcium and phosphorus makes bone's μ_en/ρ differ
#: from soft tissue's (×3–5 at 30–60 keV, ×1.1 at 120 keV, ×0.96 above 300 keV).
PHOTON_BAND_EDGES_MeV = (0.03, 0.05, 0.08, 0.12, 0.2, 0.35)
#: Materials whose photon dose comes from a kernel of their own, Σ_b R_b·K_b (see the module docstring).
BAND_KERNEL_MATERIALS = ("bone",)


def crop_kernel(kernel: np.ndarray, energy_fraction: float = CROP_ENERGY_FRACTION) -> np.ndarray:
    """Smallest centred box (same half-width on every axis, in voxels) holding ≥ 1 − ``energy_fraction``
    of the kernel's sum, renormalised to the full sum (energy conserved)."""
    total = float(kernel.sum(dtype=np.float64))
    c = [s // 2 for s in kernel.shape]
    for h in range(max(c) + 1):
        box = kernel[tuple(slice(max(0, ci - h), ci + h + 1) for ci in c)]
        if total <= 0 or box.sum(dtype=np.float64) >= (1.0 - energy_fraction) * total:
            return (box * (total / max(float(box.sum(dtype=np.float64)), 1e-300))).astype(np.float32)
    return kernel


@dataclass
class ScaledKernels:
    """Kernels of one nuclide and voxel size [mGy/h per Bq in the central voxel], (z, y, x) float32.

    ``charged[k]``: charged-particle kernel in a homogeneous medium of density ``densities[k]``
    (its own odd shape); ``photon``: photon kernel of soft tissue; ``photon_factors[label]``: R_m of
    each material label of :func:`DeepDoseLib.tissue.materials` (1 for soft tissue);
    ``photon_material_kernels``: (label, kernel) of the materials whose voxels receive A ⊛ kernel instead
    of R_m·(A ⊛ photon) (``photon_bands``; the kernel has the photon kernel's shape);
    ``photon_band_edges_MeV`` and ``photon_band_factors`` ((label, R_b per band)) record how they were made;
    ``scatter_medium``: (a, b) of the scatter-medium correction (:mod:`.photon_scatter`; empty: none) and
    ``photon_scatter_fractions[label]``: the scattered share of the photon kernel a voxel of that material receives.
    """

    nuclide: str
    spacing_mm: Tuple[float, float, float]
    densities_g_per_cm3: Tuple[float, ...]
    charged: Tuple[np.ndarray, ...]
    photon: np.ndarray
    n_decays: int
    photon_factors: Tuple[float, ...] = ()
    photon_material_kernels: Tuple[Tuple[int, np.ndarray], ...] = ()
    photon_band_edges_MeV: Tuple[float, ...] = ()
    photon_band_factors: Tuple[Tuple[int, Tuple[float, ...]], ...] = ()
    scatter_medium: Tuple[float, ...] = ()
    photon_scatter_fractions: Tuple[float, ...] = ()

    def photon_band_summary(self) -> dict:
        """Model-card entries of the photon bands (empty without them): edges [keV], R_b per material,
        and the materials with their own photon kernel."""
        if not self.photon_material_kernels:
            return {}
        names = material_names()
        summary = {"photon_band_edges_keV": [round(1000.0 * e, 3) for e in self.photon_band_edges_MeV],
                   "photon_band_factors": {names[label]: [round(v, 4) for v in band]
                                           for label, band in self.photon_band_factors},
                   "photon_material_kernels": [names[label] for label, _ in self.photon_material_kernels]}
        if self.scatter_medium:
            summary["scatter_medium"] = {
                "f": "a + b*c(x)", "a": round(self.scatter_medium[0], 4), "b": round(self.scatter_medium[1], 4),
                "weight": f"exp(-r/{WEIGHT_LENGTH_mm:g} mm)/r^2, r <= {WEIGHT_RADIUS_mm:g} mm",
                "scatter_fraction": {names[label]: round(v, 4)
                                     for label, v in enumerate(self.photon_scatter_fractions)}}
        return summary

    def photon_factor_map(self, density_g_per_cm3: np.ndarray) -> np.ndarray:
        """R of the material of every voxel (materials from the density, as for the kernels)."""
        if not self.photon_factors:
            return np.ones(np.shape(density_g_per_cm3), np.float64)
        labels = density_to_material(np.asarray(density_g_per_cm3))
        return np.asarray(self.photon_factors, np.float64)[labels]


def compute_scaled_kernels(nuclide: Nuclide | str, spacing_mm: Sequence[float], *,
                           densities_g_per_cm3: Sequence[float] = DEFAULT_DENSITY_LADDER,
                           n_decays: int = DEFAULT_KERNEL_DECAYS, device: str = "auto", use_cache: bool = True,
                           material_factors: bool = True, photon_bands: bool = True, scatter_medium: bool = True,
                           photon_radius_mm: float = DEFAULT_KERNEL_RADIUS_mm,
                           progress: Optional[Callable[[float, str], None]] = None) -> ScaledKernels:
    """Monte Carlo kernels of :class:`ScaledKernels` (cached like the VSV kernels); ``material_factors``:
    also the photon factors R_m (else every R is 1); ``photon_bands`` (with ``material_factors``): bone's
    photon kernel from the energy bands (module docstring; else one R_bone from a 16 cm phantom: the
    baseline of models trained with ``--no-photon-bands`` and of those made before the bands);
    ``scatter_medium`` (with ``photon_bands``): the scatter-medium correction (:mod:`.photon_scatter`);
    ``photon_radius_mm``: extent of the soft-tissue photon kernel [mm]. 150 mm (the default, and the baseline of
    the bundled Deep-dose models) leaves out 43 % of Ga-68's infinite-medium photon energy, the cross-fire that
    reaches an organ from more than 15 cm away in a large body with widespread uptake; 300 mm keeps it
    (docs/validation/deepdose_generalization.md) at (2r/s + 1)³ kernel voxels."""
    check_photon_radius(photon_radius_mm, spacing_mm)
    nuc = get_nuclide(nuclide) if isinstance(nuclide, str) else nuclide
    spacing = tuple(float(s) for s in spacing_mm)
    names = material_names()
    ladder = tuple(float(r) for r in sorted(densities_g_per_cm3))
    n = len(ladder) + 1
    charged = []
    for i, rho in enumerate(ladder):
        if progress is not None:
            progress(i / n, f"charged-particle kernel {i + 1}/{len(ladder)} ({rho:g} g/cm³)")
        medium = names[int(density_to_material(np.array([rho]))[0])]
        radius = min(150.0, 10.0 * CHARGED_KERNEL_RADIUS_g_per_cm2 / rho)
        kernel = compute_kernel(nuc, spacing, medium, radius_mm=max(radius, 2.0 * max(spacing)), n_decays=n_decays,
                                seed=101 + i, device=device, use_cache=use_cache, density_g_per_cm3=rho,
                                component="charged")
        charged.append(crop_kernel(kernel.dose_rate_mGy_per_h_per_Bq))
    if progress is not None:
        progress(len(ladder) / n, "photon kernel (soft tissue)")
    if material_factors and photon_bands:
        bands = compute_kernel(nuc, spacing, "soft_tissue", n_decays=n_decays, seed=100, device=device,
                               use_cache=use_cache, component="photon_bands", radius_mm=float(photon_radius_mm),
                               photon_band_edges_MeV=PHOTON_BAND_EDGES_MeV).dose_rate_mGy_per_h_per_Bq
        photon = bands.sum(axis=0, dtype=np.float64).astype(np.float32)
    else:
        photon = compute_kernel(nuc, spacing, "soft_tissue", n_decays=n_decays, seed=100, device=device,
                                use_cache=use_cache, component="photon",
                                radius_mm=float(photon_radius_mm)).dose_rate_mGy_per_h_per_Bq
    if not material_factors:
        return ScaledKernels(nuc.name, spacing, ladder, tuple(charged), photon, int(n_decays))
    if progress is not None:
        progress(len(ladder) / n, "photon dose factors of lung, adipose and bone")
    if not photon_bands:
        factors = photon_material_factors(nuc, spacing, n_decays=FACTOR_DECAYS_PER_KERNEL_DECAY * n_decays,
                                          device=device, use_cache=use_cache)
        return ScaledKernels(nuc.name, spacing, ladder, tuple(charged), photon, int(n_decays), factors)
    factors, band_factors = photon_band_factors(nuc, spacing, PHOTON_BAND_EDGES_MeV,
                                                n_decays=FACTOR_DECAYS_PER_KERNEL_DECAY * n_decays, device=device,
                                                use_cache=use_cache)
    labels = [materials()[name].label for name in BAND_KERNEL_MATERIALS]
    own = tuple((label, np.tensordot(np.asarray(band_factors[label], np.float64), bands, axes=1).astype(np.float32))
                for label in labels)
    coefficients, fractions = (), ()
    n_scatter = scatter_band_count(nuc, PHOTON_BAND_EDGES_MeV)
    if scatter_medium and n_scatter:
        if progress is not None:
            progress(len(ladder) / n, "scatter-medium correction (MC of uniform cubes and slabs)")
        a, b, _ = scatter_medium_coefficients(nuc, spacing, bands, PHOTON_BAND_EDGES_MeV,
                                              n_decays=FACTOR_DECAYS_PER_KERNEL_DECAY * n_decays, device=device,
                                              use_cache=use_cache)
        coefficients = (a, b)
        fractions = [scatter_fraction(bands, n_scatter)] * len(factors)
        for label in labels:
            fractions[label] = scatter_fraction(bands, n_scatter, band_factors[label])
        fractions = tuple(fractions)
    return ScaledKernels(nuc.name, spacing, ladder, tuple(charged), photon, int(n_decays), factors, own,
                         tuple(float(v) for v in PHOTON_BAND_EDGES_MeV),
                         tuple((label, tuple(band_factors[label])) for label in labels), coefficients, fractions)


#: Largest photon-kernel grid [voxels] (the Monte Carlo tallies hold several int64 values per voxel and thread)
MAX_PHOTON_KERNEL_VOXELS = 16_000_000


def check_photon_radius(photon_radius_mm: float, spacing_mm: Sequence[float]) -> None:
    """Refuse a photon-kernel radius [mm] whose grid at ``spacing_mm`` would exceed
    :data:`MAX_PHOTON_KERNEL_VOXELS` (e.g. 300 mm at 2 mm voxels: 301³ = 27 M voxels)."""
    r = float(photon_radius_mm)
    if not np.isfinite(r) or r <= 0:
        raise DeepDoseInputError(f"The photon kernel radius must be a positive length in mm (got {photon_radius_mm}).")
    voxels = int(np.prod([2 * int(np.ceil(r / float(s))) + 1 for s in spacing_mm]))
    if voxels > MAX_PHOTON_KERNEL_VOXELS:
        raise DeepDoseInputError(f"A {r:g} mm photon kernel at {'×'.join(f'{float(s):g}' for s in spacing_mm)} mm "
                                 f"voxels has {voxels:,} voxels (limit {MAX_PHOTON_KERNEL_VOXELS:,}); use a smaller "
                                 "radius for this voxel size.")


#: Layers of :func:`photon_material_factors`: material → first z index of its two-voxel layer (41-voxel phantom).
_FACTOR_LAYERS = {"lung": 9, "adipose": 19, "bone": 29}
#: Decays of each run of :func:`photon_material_factors` per decay of a kernel (a thin layer collects few
#: photon interactions: 4e6 decays, for kernels of 1e6, give R to ~1 % for Ga-68 and Lu-177).
FACTOR_DECAYS_PER_KERNEL_DECAY = 4


def layered_soft_tissue_source(shape: Tuple[int, int, int], layers: dict,
                               activity_Bq_per_mL: float = 1e4) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Uniform soft-tissue source of ``shape`` (z, y, x) voxels with a two-voxel layer of each material
    {name: first z index} (nominal densities; the activity stays uniform): (activity [Bq/mL], density
    [g/cm³], material labels) — the phantom of the photon-factor calibrations."""
    mats = materials()
    soft = mats["soft_tissue"]
    activity = np.full(shape, activity_Bq_per_mL, np.float32)
    density = np.full(shape, soft.nominal_density_g_per_cm3, np.float32)
    labels = np.full(shape, soft.label, np.uint8)
    for name, z in layers.items():
        density[z:z + 2] = mats[name].nominal_density_g_per_cm3
        labels[z:z + 2] = mats[name].label
    return activity, density, labels


def _layer_photon_doses(nuc: Nuclide, spacing: Tuple[float, ...], shape: Tuple[int, int, int], layers: dict,
                        n_decays: int, device: str, band_edges_MeV: Tuple[float, ...] = (),
                        core_margin: int = 12) -> dict:
    """Photon dose per band in each two-voxel layer ({name: first z}) of a uniform soft-tissue source of
    ``shape`` voxels, without and with the layers (two MC runs, one seed; the layers' central part, ``core_margin``
    voxels in from the sides): {material name: (reference per band, layered per band)}; one band without edges."""
    from ..mc import run_monte_carlo

    def photon_bands(with_layers: dict) -> np.ndarray:
        result = run_monte_carlo(*layered_soft_tissue_source(shape, with_layers), spacing, nuc, n_decays, seed=7,
                                 device=device, split_photons=True, photon_band_edges_MeV=band_edges_MeV)
        if band_edges_MeV:
            return result.photon_band_dose_rate_mGy_per_h
        return result.photon_dose_rate_mGy_per_h[None]

    plain, layered = photon_bands({}), photon_bands(layers)
    core = (slice(None), slice(None), slice(core_margin, -core_margin), slice(core_margin, -core_margin))
    return {name: (plain[:, z:z + 2][core].mean(axis=(1, 2, 3), dtype=np.float64),
                   layered[:, z:z + 2][core].mean(axis=(1, 2, 3), dtype=np.float64)) for name, z in layers.items()}


def photon_material_factors(nuclide: Nuclide | str, spacing_mm: Sequence[float], *, n_decays: int = DEFAULT_KERNEL_DECAYS,
                            device: str = "auto", use_cache: bool = True) -> Tuple[float, ...]:
    """R_m per material label: the photon dose per mass in a two-voxel layer of material m (nominal
    density) over that in soft tissue at the same place, both in a uniform soft-tissue source of
    41 × 45 × 45 voxels (two MC runs of ``n_decays`` decays with the split tally and the same seed, layers
    10 voxels apart). Air and water: 1."""
    nuc = get_nuclide(nuclide) if isinstance(nuclide, str) else nuclide
    spacing = tuple(float(v) for v in spacing_mm)
    params = {"what": "photon_material_factors", "nuclide": nuc.name, "spacing_mm": spacing, "n_decays": int(n_decays),
              "layers": _FACTOR_LAYERS, "shape": [41, 45, 45], "deepdose": __version__}

    def compute() -> dict:
        mats = materials()
        factors = [1.0] * (max(m.label for m in mats.values()) + 1)
        for name, (ref, got) in _layer_photon_doses(nuc, spacing, (41, 45, 45), _FACTOR_LAYERS, int(n_decays),
                                                    device).items():
            if ref[0] > 0:
                factors[mats[name].label] = float(got[0] / ref[0])
        return {"factors": factors}

    return tuple(float(v) for v in cached_json(f"{nuc.name}_photon_factors", params, use_cache, compute)["factors"])


#: Calibration phantom of :func:`photon_band_factors` (61³ voxels: a 24 cm cube at 4 mm, the size of a
#: trunk) and the first z index of each material's two-voxel layer, 12 voxels apart.
_BAND_PHANTOM_SHAPE = (61, 61, 61)
_BAND_LAYERS = {"lung": 18, "bone": 30, "adipose": 42}


def photon_band_factors(nuclide: Nuclide | str, spacing_mm: Sequence[float], band_edges_MeV: Sequence[float], *,
                        n_decays: int = DEFAULT_KERNEL_DECAYS, device: str = "auto",
                        use_cache: bool = True) -> Tuple[Tuple[float, ...], dict]:
    """Photon dose factors measured per energy band of the interacting photon.

    As :func:`photon_material_factors`, in a uniform soft-tissue source of :data:`_BAND_PHANTOM_SHAPE`
    voxels with two-voxel layers of lung, bone and adipose (compared in the central half of each layer).
    Returns (R_m per material label over all bands, {label: R_b per band}); a band that deposits nothing in
    the reference gets R_b = 1. Air, soft tissue and water: 1.
    """
    nuc = get_nuclide(nuclide) if isinstance(nuclide, str) else nuclide
    spacing = tuple(float(v) for v in spacing_mm)
    edges = tuple(sorted(float(v) for v in band_edges_MeV))
    params = {"what": "photon_band_factors", "nuclide": nuc.name, "spacing_mm": spacing, "n_decays": int(n_decays),
              "band_edges_MeV": edges, "layers": _BAND_LAYERS, "shape": list(_BAND_PHANTOM_SHAPE),
              "deepdose": __version__}

    def compute() -> dict:
        mats = materials()
        n_labels = max(m.label for m in mats.values()) + 1
        factors = [1.0] * n_labels
        band_factors = {str(label): [1.0] * (len(edges) + 1) for label in range(n_labels)}
        doses = _layer_photon_doses(nuc, spacing, _BAND_PHANTOM_SHAPE, _BAND_LAYERS, int(n_decays), device, edges,
                                    core_margin=_BAND_PHANTOM_SHAPE[1] // 4)
        for name, (ref, got) in doses.items():
            if ref.sum() > 0:
                factors[mats[name].label] = float(got.sum() / ref.sum())
                band_factors[str(mats[name].label)] = [float(g / r) if r > 0 else 1.0 for g, r in zip(got, ref)]
        return {"factors": factors, "band_factors": band_factors}

    saved = cached_json(f"{nuc.name}_photon_band_factors", params, use_cache, compute)
    return tuple(saved["factors"]), {int(k): tuple(v) for k, v in saved["band_factors"].items()}


def _interpolation_weights(density: np.ndarray, ladder: Sequence[float]) -> Tuple[np.ndarray, np.ndarray]:
    """Index of the lower ladder point and its weight (densities clamped into the ladder)."""
    grid = np.asarray(ladder, np.float64)
    rho = np.clip(density, grid[0], grid[-1])
    i = np.clip(np.searchsorted(grid, rho, side="right") - 1, 0, len(ladder) - 2)
    w_hi = (rho - grid[i]) / (grid[i + 1] - grid[i])
    return i, 1.0 - w_hi


def _near_kernels(rho: np.ndarray, ladder: Sequence[float]) -> Tuple[np.ndarray, np.ndarray]:
    """Per receiving voxel, the first and last ladder index k whose sources' densities (ρ_k's ladder neighbours),
    widened by :data:`INTERFACE_DENSITY_RATIO`, include the voxel's density: kernels outside [first, last] deliver
    across a density interface."""
    upper = np.asarray(list(ladder[1:]) + [np.inf], np.float64) * INTERFACE_DENSITY_RATIO
    lower = np.asarray([0.0] + list(ladder[:-1]), np.float64)
    first = np.searchsorted(upper, rho, side="left").astype(np.int16)
    last = (np.searchsorted(lower, rho * INTERFACE_DENSITY_RATIO, side="right") - 1).astype(np.int16)
    return first, last


def _charged_energy(source: np.ndarray, rho: np.ndarray, kernels: ScaledKernels, where: str,
                    device: str, with_across: bool = False) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Charged-particle energy-density rate ρ·D [mGy/h · g/cm³] (float64) with the kernel chosen by the
    density of the source voxel (``where="source"``) or of the receiving voxel (``"receiver"``); with
    ``with_across`` (source mode) also the part of it delivered across a density interface (:func:`_near_kernels`;
    None otherwise). ``rho``: densities already clamped to the tissue minimum."""
    ladder = kernels.densities_g_per_cm3
    i, w_lo = _interpolation_weights(rho, ladder)
    energy = np.zeros(rho.shape, np.float64)
    across = None
    if with_across and where == "source":
        across = np.zeros(rho.shape, np.float64)
        first, last = _near_kernels(rho, ladder)
    i = i.astype(np.int16)
    if where == "source":  # float32: what the transforms take (fft_convolution.FFT_DTYPE)
        low = source * w_lo  # the share of each source voxel's activity spread with its lower ladder kernel
        high = (source - low).astype(np.float32)
        low = low.astype(np.float32)
    for k, (rho_k, kernel) in enumerate(zip(ladder, kernels.charged)):
        at_k, below = i == k, i == k - 1  # voxels whose lower / upper ladder point is ρ_k
        if not (at_k.any() or below.any()):
            continue
        if where == "source":
            part = np.where(at_k, low, np.float32(0.0))
            np.copyto(part, high, where=below)
            if not part.any():
                continue
            part_energy = rho_k * np.asarray(fft_convolve(part, kernel, device=device), np.float64)
            energy += part_energy
            if across is not None:
                np.add(across, part_energy, out=across, where=(first > k) | (last < k))
        else:
            weight = np.where(at_k, w_lo, 0.0)
            np.copyto(weight, 1.0 - w_lo, where=below)
            energy += weight * rho_k * np.asarray(fft_convolve(source, kernel, device=device), np.float64)
    return energy, across


def voxel_sources(activity_Bq_per_mL: np.ndarray, density_g_per_cm3: np.ndarray,
                        kernels: ScaledKernels) -> Tuple[np.ndarray, np.ndarray]:
    """Activity per voxel [Bq] (what the kernels spread) and the density [g/cm³] that picks the charged-particle
    kernels (clamped to the tissue minimum), float64 (z, y, x)."""
    voxel_mL = float(np.prod(kernels.spacing_mm)) * 1e-3
    source = np.asarray(activity_Bq_per_mL, np.float64) * voxel_mL
    rho = np.maximum(np.asarray(density_g_per_cm3, np.float64), TISSUE_MIN_DENSITY_g_per_cm3)
    return source, rho


def charged_dose_rates(activity_Bq_per_mL: np.ndarray, density_g_per_cm3: np.ndarray, kernels: ScaledKernels,
                       device: str = "cpu") -> Tuple[np.ndarray, np.ndarray]:
    """The charged-particle dose rate [mGy/h] of the method (source mode), and the part of it that crossed a density
    interface [mGy/h]: delivered by kernels whose sources' densities differ from the receiving voxel's (tissue into
    lung or bone, lung into tissue; :data:`INTERFACE_DENSITY_RATIO`). Source-density kernels are exact inside a
    homogeneous region (O'Connor); only this part is approximate (module docstring). Arrays (z, y, x)."""
    source, rho = voxel_sources(activity_Bq_per_mL, density_g_per_cm3, kernels)
    energy, across = _charged_energy(source, rho, kernels, "source", device, with_across=True)
    return (energy / rho).astype(np.float32), (across / rho).astype(np.float32)


def scaled_vsv_components(activity_Bq_per_mL: np.ndarray, density_g_per_cm3: np.ndarray, kernels: ScaledKernels,
                          device: str = "cpu", mode: str = "source",
                          photon_heterogeneity: str = "none") -> Tuple[np.ndarray, np.ndarray]:
    """(charged-particle, photon) dose rates [mGy/h] on the activity's grid (see the module docstring).

    ``mode``: the density that picks the charged-particle kernel — ``source`` (the method: conserves the
    energy of each source voxel; right where particles leave dense tissue into lung), ``receiver``
    (right only for particles born in the receiving voxel's medium; 3× too much energy in lung beside
    hot tissue), or ``mean`` (the average of both energy maps); the last two are kept for comparison.
    Voxels lighter than :data:`TISSUE_MIN_DENSITY_g_per_cm3` count as that density for the kernel choice.
    ``photon_heterogeneity``: one of :data:`PHOTON_HETEROGENEITY` (``none`` here: the Deep-dose input baseline).
    """
    if mode not in ("source", "receiver", "mean"):
        raise ValueError(f"mode must be source, receiver or mean (got {mode!r})")
    if photon_heterogeneity not in PHOTON_HETEROGENEITY:
        raise ValueError(f"photon_heterogeneity must be one of {PHOTON_HETEROGENEITY} (got {photon_heterogeneity!r})")
    source, rho = voxel_sources(activity_Bq_per_mL, density_g_per_cm3, kernels)
    if mode == "mean":
        energy = 0.5 * (_charged_energy(source, rho, kernels, "source", device)[0]
                        + _charged_energy(source, rho, kernels, "receiver", device)[0])
    else:
        energy = _charged_energy(source, rho, kernels, mode, device)[0]
    charged = (energy / rho).astype(np.float32)
    photon = photon_dose_rate(source, density_g_per_cm3, kernels, device)
    if photon_heterogeneity == "primary":
        excess = nuclide_primary_excess(kernels.nuclide, activity_Bq_per_mL, density_g_per_cm3, kernels.spacing_mm)
        photon = np.maximum(photon + excess, 0.0).astype(np.float32)
    return charged, photon


def photon_dose_rate(source_Bq: np.ndarray, density_g_per_cm3: np.ndarray, kernels: ScaledKernels,
                     device: str = "cpu") -> np.ndarray:
    """Photon part [mGy/h] of the baseline from the activity per voxel [Bq]: R_m·(A ⊛ photon kernel), and
    A ⊛ the material's own kernel in the voxels of ``photon_material_kernels``' materials; with ``scatter_medium``
    the scattered share of each voxel's dose scaled by f(x) (:mod:`.photon_scatter`)."""
    if not kernels.photon_factors:
        return fft_convolve(source_Bq, kernels.photon, device=device)
    labels = density_to_material(np.asarray(density_g_per_cm3))
    own = [(label, kernel) for label, kernel in kernels.photon_material_kernels if bool((labels == label).any())]
    doses = fft_convolve_many(source_Bq, [kernels.photon] + [kernel for _, kernel in own], device=device)
    photon = doses[0] * kernels.photon_factor_map(density_g_per_cm3)
    for (label, _), dose in zip(own, doses[1:]):
        photon[labels == label] = dose[labels == label]
    if kernels.scatter_medium:
        photon *= scatter_medium_factor(density_g_per_cm3, kernels.spacing_mm, kernels.scatter_medium,
                                        np.asarray(kernels.photon_scatter_fractions, np.float64)[labels], device)
    return photon.astype(np.float32)


def scaled_vsv_dose_rate(activity_Bq_per_mL: np.ndarray, density_g_per_cm3: np.ndarray, kernels: ScaledKernels,
                         device: str = "cpu", mode: str = "source", photon_heterogeneity: str = "none") -> np.ndarray:
    """Dose rate [mGy/h] of the density-scaled VSV method (charged + photon parts); ``photon_heterogeneity`` as
    :func:`scaled_vsv_components`."""
    charged, photon = scaled_vsv_components(activity_Bq_per_mL, density_g_per_cm3, kernels, device, mode,
                                            photon_heterogeneity)
    return charged + photon
