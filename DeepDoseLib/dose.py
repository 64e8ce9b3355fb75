"""The one Python API behind every entry point: PET + CT → dose-rate map [mGy/h].

Flow: inputs (units and geometry checked) → tissue model (density, material) → method → image on
the dose grid (the PET grid unless another reference grid is given).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, List, Optional

import numpy as np
import SimpleITK as sitk

from ._version import __version__
from .errors import DeepDoseInputError
from .geometry import check_ct_covers_activity, resample_to_grid
from .methods import METHODS, PLANNED_METHODS, led_dose_rate
from .nuclides import Nuclide, get_nuclide
from .tissue import HUDensityCalibration, HUMaterialTable, hu_to_density, hu_to_material

logger = logging.getLogger(__name__)

#: progress(fraction in [0, 1], message) — called by long computations.
ProgressCallback = Callable[[float, str], None]

#: HU given to dose-grid voxels that the CT does not cover (water: see :func:`prepare_inputs`).
HU_OUTSIDE_CT = 0.0
#: Activity in voxels lighter than this [g/cm³] (air, outside the body) is reported.
LOW_DENSITY_g_per_cm3 = 0.05


@dataclass
class DoseInputs:
    """Everything a dose method needs, on one grid. Arrays are (z, y, x) float32 / uint8.

    Attributes:
        grid: reference image that defines origin, spacing [mm] and direction of all arrays.
        activity_Bq_per_mL, hu, density_g_per_cm3, material_labels: voxel data on ``grid``.
        notes: what was assumed or corrected on the way (shown to the user).
    """

    grid: sitk.Image
    activity_Bq_per_mL: np.ndarray
    hu: np.ndarray
    density_g_per_cm3: np.ndarray
    material_labels: np.ndarray
    notes: List[str] = field(default_factory=list)

    @property
    def spacing_mm(self) -> tuple:
        """Voxel spacing (x, y, z) [mm]."""
        return self.grid.GetSpacing()

    def to_image(self, array: np.ndarray) -> sitk.Image:
        """Wrap a (z, y, x) array as an image on :attr:`grid`."""
        image = sitk.GetImageFromArray(np.ascontiguousarray(array))
        image.CopyInformation(self.grid)
        return image


def _report(progress: Optional[ProgressCallback], fraction: float, message: str) -> None:
    logger.info(message)
    if progress is not None:
        progress(fraction, message)


def check_activity(activity_Bq_per_mL: np.ndarray, clip_negative: bool = False) -> List[str]:
    """Validate an activity array in place: NaN/inf refused; negatives refused or clipped to 0.

    Returns notes describing what was changed.
    """
    if not np.all(np.isfinite(activity_Bq_per_mL)):
        bad = int(np.size(activity_Bq_per_mL) - np.count_nonzero(np.isfinite(activity_Bq_per_mL)))
        raise DeepDoseInputError(f"The PET contains {bad} NaN or infinite voxel(s); fix or mask them first.")
    negative = activity_Bq_per_mL < 0
    if negative.any():
        count = int(negative.sum())
        lost = float(-activity_Bq_per_mL[negative].sum())
        total = float(activity_Bq_per_mL[~negative].sum())
        if not clip_negative:
            raise DeepDoseInputError(
                f"The PET contains {count} negative voxel(s) (down to {activity_Bq_per_mL.min():.4g} Bq/mL; "
                f"their sum is {100 * lost / max(total, 1e-30):.3f} % of the positive activity). Negative activity "
                "has no physical meaning: pass clip_negative=True (--clip-negative) to set them to 0."
            )
        activity_Bq_per_mL[negative] = 0.0
        return [f"{count} negative PET voxel(s) set to 0 ({100 * lost / max(total, 1e-30):.3f} % of the activity)"]
    return []


def prepare_inputs(ct_HU: sitk.Image, pet_Bq_per_mL: sitk.Image, *, grid: Optional[sitk.Image] = None,
                   density_calibration: Optional[HUDensityCalibration] = None,
                   material_table: Optional[HUMaterialTable] = None, clip_negative: bool = False,
                   max_activity_fraction_outside_ct: float = 0.01) -> DoseInputs:
    """Bring CT and PET onto one grid with checked units.

    The PET is resampled (linear, activity concentration preserved, not total activity) only when a
    different ``grid`` is requested; the CT is always resampled linearly onto the dose grid. Dose-grid
    voxels outside the CT field of view get HU 0 (water) — allowed only for at most
    ``max_activity_fraction_outside_ct`` of the activity — instead of air, which would multiply their
    local dose by ~800.
    """
    grid = pet_Bq_per_mL if grid is None else grid
    notes: List[str] = []
    pet = sitk.Cast(pet_Bq_per_mL, sitk.sitkFloat32)
    if grid is not pet_Bq_per_mL:
        pet = resample_to_grid(pet, grid, default_value=0.0)
        notes.append("PET resampled (linear) onto the requested dose grid")
    activity = sitk.GetArrayFromImage(pet).astype(np.float32)  # a copy: inputs are never modified
    notes += check_activity(activity, clip_negative)
    pet_on_grid = sitk.GetImageFromArray(activity)
    pet_on_grid.CopyInformation(grid)
    covered = check_ct_covers_activity(ct_HU, pet_on_grid, max_activity_fraction_outside_ct)
    ct = resample_to_grid(sitk.Cast(ct_HU, sitk.sitkFloat32), grid, default_value=HU_OUTSIDE_CT)
    hu = sitk.GetArrayFromImage(ct).astype(np.float32)
    if not covered.all():
        notes.append(f"{int((~covered).sum())} dose-grid voxel(s) outside the CT field of view treated as water")
    density = hu_to_density(hu, density_calibration)
    labels = hu_to_material(hu, material_table)
    low = (density < LOW_DENSITY_g_per_cm3) & (activity > 0)
    if low.any() and activity.sum() > 0:
        fraction = float(activity[low].sum() / activity.sum())
        if fraction > 1e-3:
            notes.append(f"WARNING: {100 * fraction:.2f} % of the activity lies in air-like voxels "
                         f"(< {LOW_DENSITY_g_per_cm3} g/cm³); their dose rate is per gram of air")
    return DoseInputs(grid, activity, hu, density, labels, notes)


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` → ``"cuda"`` when available, else ``"cpu"``; other values are checked."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeepDoseInputError("device 'cuda' requested but PyTorch sees no CUDA GPU; use 'cpu' or 'auto'.")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise DeepDoseInputError(f"Unknown device {device!r}: use auto, cpu or cuda.")
    return device


@dataclass
class MethodOptions:
    """Options of the dose methods (each method reads the ones it needs).

    Attributes:
        include_photons: LED — deposit photon energy locally too.
        n_decays, seed, n_batches: MC — simulated decays, random seed, batches for the uncertainty.
        density_correction: VSV — scale by ρ_kernel/ρ_local (the density-corrected variant).
        kernel_medium: VSV — medium of the kernel (a material of ``tissue.materials()``).
        kernel_decays: VSV — decays simulated for the kernel (cached on disk); also per kernel of vsv_scaled.
        kernel_radius_mm: VSV — kernel extent from its centre.
        model_path: Deep-dose — model file (``.pt``/``.pt2`` with its card); None: the bundled model.
    """

    include_photons: bool = False
    n_decays: int = 10_000_000
    seed: int = 0
    n_batches: int = 10
    density_correction: bool = False
    kernel_medium: str = "soft_tissue"
    kernel_decays: int = 2_000_000
    kernel_radius_mm: float = 150.0
    labels: Optional[sitk.Image] = None
    label_names: Optional[dict] = None
    model_path: Optional[str] = None
    #: MC — ``kernel`` (compiled, default) or ``torch`` (the reference engine)
    mc_engine: str = "kernel"
    #: MC (kernel) — stop when the hot-tissue median relative uncertainty reaches this fraction (e.g. 0.02)
    target_uncertainty: Optional[float] = None
    #: MC (kernel) — most decays a target-uncertainty run may spend (default 100 × n_decays)
    max_decays: Optional[int] = None


@dataclass
class DoseResult:
    """A dose-rate map [mGy/h] with what produced it; ``relative_uncertainty`` only for Monte Carlo."""

    dose_rate: sitk.Image
    method: str
    nuclide: str
    seconds: float
    relative_uncertainty: Optional[sitk.Image] = None
    notes: List[str] = field(default_factory=list)


def run_dose_method(inputs: DoseInputs, nuclide: Nuclide | str, method: str = "led",
                    options: Optional[MethodOptions] = None, *, device: str = "auto",
                    progress: Optional[ProgressCallback] = None,
                    cancel: Optional[Callable[[], bool]] = None) -> DoseResult:
    """Run one method on prepared inputs; the dose rate lies on ``inputs.grid``."""
    import time

    nuc = get_nuclide(nuclide) if isinstance(nuclide, str) else nuclide
    opts = options or MethodOptions()
    if method in PLANNED_METHODS:
        raise DeepDoseInputError(f"Method {method!r} is not available in DeepDose {__version__}; use one of {METHODS}.")
    if method not in METHODS:
        raise DeepDoseInputError(f"Unknown method {method!r}; available: {', '.join(METHODS)}.")
    dev = resolve_device(device)
    start = time.perf_counter()
    notes: List[str] = []
    uncertainty = None
    _report(progress, 0.05, f"{method.upper()} dose rate for {nuc.name} on {dev}")
    if method == "led":
        dose = led_dose_rate(inputs.activity_Bq_per_mL, inputs.density_g_per_cm3, nuc,
                             include_photons=opts.include_photons, device=dev)
    elif method == "vsv":
        from .methods.vsv import compute_kernel, vsv_dose_rate

        def kernel_progress(fraction: float, message: str) -> None:
            _report(progress, 0.05 + 0.85 * fraction, "VSV kernel: " + message)

        kernel = compute_kernel(nuc, inputs.spacing_mm, opts.kernel_medium, n_decays=opts.kernel_decays,
                                radius_mm=opts.kernel_radius_mm, device=dev, progress=kernel_progress)
        dose = vsv_dose_rate(inputs.activity_Bq_per_mL, inputs.density_g_per_cm3, kernel,
                             density_correction=opts.density_correction, device=dev)
        notes.append(f"VSV kernel: {kernel.medium} ({kernel.density_g_per_cm3} g/cm³), "
                     f"{kernel.dose_rate_mGy_per_h_per_Bq.shape} voxels, {kernel.n_decays:,} decays"
                     + (", density-corrected" if opts.density_correction else ""))
    elif method == "vsv_scaled":
        from .methods.scaled_vsv import compute_scaled_kernels, scaled_vsv_dose_rate

        def ladder_progress(fraction: float, message: str) -> None:
            _report(progress, 0.05 + 0.85 * fraction, "density-scaled VSV kernels: " + message)

        kernels = compute_scaled_kernels(nuc, inputs.spacing_mm, n_decays=opts.kernel_decays, device=dev,
                                         progress=ladder_progress)
        dose = scaled_vsv_dose_rate(inputs.activity_Bq_per_mL, inputs.density_g_per_cm3, kernels, device=dev,
                                    mode="source")
        notes.append(f"density-scaled VSV: charged-particle kernels at {len(kernels.densities_g_per_cm3)} densities "
                     f"({min(kernels.densities_g_per_cm3):g}–{max(kernels.densities_g_per_cm3):g} g/cm³, chosen by "
                     f"the source voxel), soft-tissue photon kernel"
                     + (", bone's own photon kernel from energy bands" if kernels.photon_material_kernels else "")
                     + (", scatter-medium correction" if kernels.scatter_medium else "")
                     + f", {kernels.n_decays:,} decays each")
    elif method == "deepdose":
        from .deepdose.inference import deepdose_dose_rate
        from .deepdose.model_io import resolve_model

        model = resolve_model(opts.model_path, nuc.name, device=dev)

        def net_progress(fraction: float, message: str) -> None:
            _report(progress, 0.05 + 0.9 * fraction, message)

        dose = deepdose_dose_rate(inputs.activity_Bq_per_mL, inputs.density_g_per_cm3, inputs.spacing_mm, model,
                                  device=dev, progress=net_progress, cancel=cancel, notes=notes)
        notes.append(f"Deep-dose model {model.path.name} (SHA-256 {model.card['weights_sha256'][:12]}…, "
                     f"{'×'.join(f'{s:g}' for s in model.spacing_mm)} mm)")
    elif method == "mird":
        from .methods.mird import mird_dose_rate_map, mird_organ_dose_rates

        if opts.labels is None:
            raise DeepDoseInputError("The MIRD organ-level method needs an organ label map (--labels).")
        labels_on_grid = sitk.GetArrayFromImage(resample_to_grid(
            sitk.Cast(opts.labels, sitk.sitkUInt16), inputs.grid, interpolator=sitk.sitkNearestNeighbor))
        rows, mird_notes = mird_organ_dose_rates(inputs.activity_Bq_per_mL, inputs.density_g_per_cm3, labels_on_grid,
                                                 opts.label_names or {}, inputs.spacing_mm, nuc)
        dose = mird_dose_rate_map(labels_on_grid, rows)
        notes += mird_notes + ["MIRD sphere model: uniform activity per organ, self-dose only, 0 outside organs"]
        notes += [f"MIRD {r.name}: {r.activity_MBq:.4g} MBq in {r.mass_g:.4g} g -> {r.dose_rate_mGy_per_h:.4g} mGy/h"
                  for r in rows]
    else:  # mc
        from .mc import run_monte_carlo

        def mc_progress(fraction: float, message: str) -> None:
            _report(progress, 0.05 + 0.9 * fraction, message)

        stop = {k: v for k, v in (("target_uncertainty", opts.target_uncertainty), ("max_decays", opts.max_decays))
                if v is not None}
        mc = run_monte_carlo(inputs.activity_Bq_per_mL, inputs.density_g_per_cm3, inputs.material_labels,
                             inputs.spacing_mm, nuc, opts.n_decays, seed=opts.seed, device=dev,
                             n_batches=opts.n_batches, progress=mc_progress, cancel=cancel, engine=opts.mc_engine,
                             **stop)
        dose = mc.dose_rate_mGy_per_h
        uncertainty = inputs.to_image(mc.relative_uncertainty)
        uncertainty.SetMetaData("DeepDose.quantity", "relative standard uncertainty of the dose rate")
        notes += mc.notes + [f"MC: {mc.n_decays:,} decays, seed {mc.seed}, {mc.decays_per_second:,.0f} decays/s "
                             f"on {mc.device}"]
    image = inputs.to_image(dose.astype(np.float32))
    for key, value in {"DeepDose.quantity": "dose rate", "DeepDose.units": "mGy/h", "DeepDose.method": method,
                       "DeepDose.nuclide": nuc.name, "DeepDose.version": __version__}.items():
        image.SetMetaData(key, value)
    _report(progress, 1.0, "done")
    return DoseResult(image, method, nuc.name, time.perf_counter() - start, uncertainty, notes)


def compute_dose_rate_from_inputs(inputs: DoseInputs, nuclide: Nuclide | str, method: str = "led", *,
                                  include_photons: bool = False, device: str = "auto",
                                  options: Optional[MethodOptions] = None,
                                  progress: Optional[ProgressCallback] = None) -> sitk.Image:
    """Run one method on prepared inputs; returns the dose-rate image [mGy/h] on ``inputs.grid``."""
    opts = options or MethodOptions(include_photons=include_photons)
    return run_dose_method(inputs, nuclide, method, opts, device=device, progress=progress).dose_rate


def compute_dose_rate(ct_image: sitk.Image, pet_image: sitk.Image, nuclide: Nuclide | str, method: str = "led", *,
                      include_photons: bool = False, clip_negative: bool = False, grid: Optional[sitk.Image] = None,
                      density_calibration: Optional[HUDensityCalibration] = None,
                      max_activity_fraction_outside_ct: float = 0.01, device: str = "auto",
                      options: Optional[MethodOptions] = None,
                      progress: Optional[ProgressCallback] = None) -> sitk.Image:
    """Dose-rate map [mGy/h] from a CT [HU] and a PET [Bq/mL] (SimpleITK images, LPS).

    The result lies on the PET grid (or ``grid``), is float32, and refers to the same time as the
    activity (e.g. the scan start for decay-corrected PET). Input images are never modified.
    """
    nuc = get_nuclide(nuclide) if isinstance(nuclide, str) else nuclide
    _report(progress, 0.0, "checking inputs and building the tissue model")
    inputs = prepare_inputs(ct_image, pet_image, grid=grid, density_calibration=density_calibration,
                            clip_negative=clip_negative,
                            max_activity_fraction_outside_ct=max_activity_fraction_outside_ct)
    for note in inputs.notes:
        logger.warning(note) if note.startswith("WARNING") else logger.info(note)
    return compute_dose_rate_from_inputs(inputs, nuc, method, include_photons=include_photons,
                                         device=device, options=options, progress=progress)
