"""Voxel S-value (VSV) method: FFT convolution of the activity with a dose kernel of the voxel size.

The kernel (dose rate in every voxel per Bq in the central voxel, homogeneous medium) is computed by
DeepDose's own Monte Carlo engine for the nuclide, the exact voxel size and the medium, symmetrised
over the symmetries of the voxel lattice (48 for cubic voxels, 8 otherwise) to reduce its variance,
and cached on disk with the parameters that made it (``$DEEPDOSE_CACHE_DIR`` or ``~/.cache/deepdose``).

Variants: plain VSV (the medium everywhere, the conventional method), and density-corrected VSV,
where the dose is scaled by ρ_medium / ρ_local — it fixes the mass but not the transport in lung and
bone (that is what Monte Carlo and Deep-dose add).
"""
from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import dataclass
from itertools import permutations
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import torch

from .._version import __version__
from ..errors import DeepDoseInputError
from ..nuclides import Nuclide, get_nuclide
from ..disk_cache import cache_dir, cache_path, cached_json, same_params, write_cache_file  # noqa: F401 (re-exported)
from ..fft_convolution import fft_convolve, fft_convolve_many  # noqa: F401 (re-exported)
from ..tissue import materials

logger = logging.getLogger(__name__)

#: Kernel extent [mm] from the centre: beyond 150 mm the 511 keV photon dose is < 1e-4 of the self-dose.
DEFAULT_KERNEL_RADIUS_mm = 150.0
#: Decays simulated per kernel (after symmetrisation the inner voxels reach < 1 % statistical uncertainty).
DEFAULT_KERNEL_DECAYS = 2_000_000
KERNEL_FORMAT_VERSION = 1


@dataclass
class VSVKernel:
    """Dose rate [mGy/h] per Bq in the central voxel, (z, y, x) float32, odd size on every axis."""

    dose_rate_mGy_per_h_per_Bq: np.ndarray
    spacing_mm: Tuple[float, float, float]
    nuclide: str
    medium: str
    density_g_per_cm3: float
    n_decays: int
    seed: int

    @property
    def s_values_mGy_per_MBq_s(self) -> np.ndarray:
        """Voxel S-values in mGy/(MBq·s) (the unit of published VSV tables)."""
        return self.dose_rate_mGy_per_h_per_Bq * 1e6 / 3600.0

    def s_value(self, i: int, j: int, k: int) -> float:
        """S-value [mGy/(MBq·s)] of the voxel offset (i, j, k) (x, y, z) from the source voxel."""
        c = [s // 2 for s in self.dose_rate_mGy_per_h_per_Bq.shape]
        return float(self.s_values_mGy_per_MBq_s[c[0] + k, c[1] + j, c[2] + i])


def symmetrise(kernel: np.ndarray, spacing_mm) -> np.ndarray:
    """Average over axis flips and over the permutations of axes that have equal spacing."""
    out = np.zeros_like(kernel, dtype=np.float64)
    count = 0
    sx, sy, sz = spacing_mm
    axes_spacing = (sz, sy, sx)  # array axes (z, y, x)
    perms = [p for p in permutations(range(3)) if all(np.isclose(axes_spacing[a], axes_spacing[b])
                                                       for a, b in zip(range(3), p))]
    for perm in perms:
        if any(kernel.shape[a] != kernel.shape[b] for a, b in zip(range(3), perm)):
            continue
        k = np.transpose(kernel, perm)
        for flips in range(8):
            axes = [a for a in range(3) if flips >> a & 1]
            out += np.flip(k, axis=axes) if axes else k
            count += 1
    return (out / count).astype(np.float32)


def compute_kernel(nuclide: Nuclide | str, spacing_mm, medium: str = "soft_tissue", *,
                   radius_mm: float = DEFAULT_KERNEL_RADIUS_mm, n_decays: int = DEFAULT_KERNEL_DECAYS, seed: int = 1,
                   device: str = "auto", use_cache: bool = True, exclude_kinds: tuple = (),
                   density_g_per_cm3: Optional[float] = None, component: str = "all",
                   photon_band_edges_MeV: Sequence[float] = (),
                   progress: Optional[Callable[[float, str], None]] = None) -> VSVKernel:
    """Monte Carlo VSV kernel for ``nuclide`` in a homogeneous ``medium``.

    ``density_g_per_cm3``: the medium's density (default: its nominal density). ``component``: ``all``
    (the dose), ``photon`` (the part deposited by photon interactions), ``charged`` (the rest: β±,
    conversion and Auger electrons, alphas) or ``photon_bands``: the photon part split by the energy of
    the interacting photon at ``photon_band_edges_MeV`` — then the kernel array is (bands, z, y, x), band 0
    below the first edge, and its sum over bands is the ``photon`` kernel of the same seed.
    """
    from ..mc import run_monte_carlo

    nuc = get_nuclide(nuclide) if isinstance(nuclide, str) else nuclide
    if medium not in materials():
        raise DeepDoseInputError(f"Unknown kernel medium {medium!r}; use one of {sorted(materials())}.")
    if component not in ("all", "photon", "charged", "photon_bands"):
        raise DeepDoseInputError(f"Unknown kernel component {component!r}; use all, photon, charged or photon_bands.")
    edges = sorted(float(v) for v in photon_band_edges_MeV) if component == "photon_bands" else []
    if component == "photon_bands" and not edges:
        raise DeepDoseInputError("photon_bands kernels need photon_band_edges_MeV.")
    mat = materials()[medium]
    rho = float(density_g_per_cm3) if density_g_per_cm3 is not None else mat.nominal_density_g_per_cm3
    if rho <= 0:
        raise DeepDoseInputError(f"Kernel medium density must be > 0 g/cm³ (got {rho}).")
    spacing = tuple(float(s) for s in spacing_mm)
    half = [max(1, int(np.ceil(radius_mm / s))) for s in spacing[::-1]]  # (z, y, x)
    params = {"format": KERNEL_FORMAT_VERSION, "nuclide": nuc.name, "spacing_mm": spacing, "medium": medium,
              "density_g_per_cm3": rho, "half_size_zyx": half, "n_decays": int(n_decays),
              "seed": int(seed), "exclude_kinds": sorted(exclude_kinds), "deepdose": __version__}
    if component != "all":  # (kept out of the parameters of plain kernels: their cache keys stay valid)
        params["component"] = component
    if edges:
        params["photon_band_edges_MeV"] = edges
    path = cache_path(f"{nuc.name}_{medium}_{'x'.join(f'{s:g}' for s in spacing)}mm", params, ".npz")
    if use_cache and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                if same_params(str(data["params"]), params):
                    return VSVKernel(data["kernel"], spacing, nuc.name, medium, rho, int(n_decays), int(seed))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:  # a damaged entry: compute it again
            logger.warning("VSV kernel cache %s unreadable (%s); recomputing it", path, exc)
    shape = tuple(2 * h + 1 for h in half)
    activity = np.zeros(shape, dtype=np.float32)
    voxel_mL = float(np.prod(spacing)) * 1e-3
    activity[half[0], half[1], half[2]] = 1.0 / voxel_mL  # 1 Bq in the central voxel
    density = np.full(shape, rho, dtype=np.float32)
    labels = np.full(shape, mat.label, dtype=np.uint8)
    result = run_monte_carlo(activity, density, labels, spacing, nuc, n_decays, seed=seed, device=device,
                             progress=progress, exclude_kinds=tuple(exclude_kinds), split_photons=component != "all",
                             photon_band_edges_MeV=edges)
    dose = result.dose_rate_mGy_per_h
    if component == "photon":
        dose = result.photon_dose_rate_mGy_per_h
    elif component == "charged":
        dose = np.clip(dose - result.photon_dose_rate_mGy_per_h, 0.0, None)
    if component == "photon_bands":
        kernel = np.stack([symmetrise(band, spacing) for band in result.photon_band_dose_rate_mGy_per_h])
    else:
        kernel = symmetrise(dose, spacing)
    if use_cache:
        write_cache_file(path, lambda f: np.savez_compressed(f, kernel=kernel,
                                                              params=json.dumps(params, sort_keys=True)))
    return VSVKernel(kernel, spacing, nuc.name, medium, rho, int(n_decays), int(seed))


def vsv_dose_rate(activity_Bq_per_mL: np.ndarray, density_g_per_cm3: np.ndarray, kernel: VSVKernel, *,
                  density_correction: bool = False, device: str = "cpu") -> np.ndarray:
    """Dose-rate map [mGy/h] by VSV convolution; optionally scaled by ρ_kernel / ρ_local."""
    voxel_mL = float(np.prod(kernel.spacing_mm)) * 1e-3
    dose = fft_convolve(np.asarray(activity_Bq_per_mL, dtype=np.float64) * voxel_mL,
                        kernel.dose_rate_mGy_per_h_per_Bq, device=device)
    if density_correction:
        dose = (dose * (kernel.density_g_per_cm3 / np.maximum(density_g_per_cm3, 1e-6))).astype(np.float32)
    return dose
