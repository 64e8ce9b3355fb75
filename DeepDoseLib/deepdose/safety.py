"""Deep-dose that cannot make its physics baseline worse where it is unsure.

The network refines the density-scaled VSV baseline B (charged + photon input channels, :mod:`.channels`).
This module wraps its inference so that

1. **the correction is bounded**: with N the network's dose rate, the output is
   ``D = B · clip(N / B, 1 − b, 1 + b)``; ``b`` is :attr:`SafetyRule.max_correction`;
2. **it states its own uncertainty per voxel**: test-time augmentation by mirror flips. The transport
   physics is mirror-symmetric (the VSV kernels are, the Monte Carlo it learned from is in distribution),
   the network is not exactly: it is run on the inputs flipped along each axis (flipped back after), and
   the sample standard deviation σ of the predictions over the mean gives the relative uncertainty
   ``u = σ / N̄`` [fraction]; N̄ (the mean) is the network's dose rate used in 1. The map written beside
   the dose rate adds what the mirrors cannot see, a bias shared by every copy: the network and the physics
   baseline are two estimates of the same dose, and where they differ the truth is not known better than their
   difference, so ``u_D = sqrt(u² + (|N̄ − B| / 2D)²)`` (no fitted constant: half the difference, so that ±2 u_D
   spans it). Without flips the map is the second term alone. Neither term sees an error that the network and the
   baseline share. Two terms add it: the baseline's own approximation, ``c·X/D`` with X the part of B's
   charged-particle dose rate that crossed a density interface (:func:`DeepDoseLib.methods.scaled_vsv.charged_dose_rates`:
   source-density kernels are exact inside a homogeneous region, only X is approximate; ``c`` is
   :attr:`SafetyRule.interface_sigma`, 0.5: ±2σ spans all of X), and the card's ``uncertainty_floor``
   (:mod:`.uncertainty_floor`, per material class, measured on the model's validation and test cases):
   ``sqrt(u_D² + (c·X/D)² + f_c²)``;
3. **it falls back to the baseline** (``D = B`` exactly) where

   - the voxel size is outside :attr:`SafetyRule.voxel_size_range_mm` or the CT holds no tissue (whole volume);
   - the density exceeds :attr:`SafetyRule.max_density_g_per_cm3` (metal, iodinated contrast: not in training);
   - the activity exceeds :attr:`SafetyRule.max_activity_contrast` × the median activity of the tissue, or a
     connected hot region (> :attr:`SafetyRule.hot_contrast` × that median) is larger than
     :attr:`SafetyRule.max_hot_volume_mL` (training lesions: 5–60 mm diameters, ≤ 113 mL);
   - the lungs are less active than in every training case (the card's ``training_range``,
     :mod:`.training_range`: a model trained on tracer tables never saw inactive lungs);
   - the baseline is below :attr:`SafetyRule.min_tile_scale_fraction` of the scale of the tiles that predicted the
     voxel (:func:`.inference.tile_scale_map`; low uptake next to hot regions, voxel by voxel);
   - ``u`` > :attr:`SafetyRule.max_relative_uncertainty` in tissue (≥ 0.05 g/cm³: lung included) where the dose
     rate is above :attr:`SafetyRule.uncertainty_dose_fraction` of its maximum (voxel by voxel);

   the input-range regions are grown by :attr:`SafetyRule.fallback_margin_mm` (the network sees their
   surroundings). The fallback voxels get the physics P: B plus, by default
   (:attr:`SafetyRule.fallback_photon_heterogeneity`), the dose of the unscattered photons that B's water kernel
   attenuates in lung (:mod:`DeepDoseLib.methods.photon_heterogeneity`), which the ``vsv_scaled`` method adds too.
   The network still refines B, the baseline it was trained on.

The result (:class:`SafeDeepDose`) carries D, B, P, N̄, u and the fallback mask on the input grid, and notes that say
where and how much fell back (voxels, % of the tissue, % of the activity).

Grids. The network runs on the model's grid (4 mm). The correction is carried to the input grid as a smooth
factor field: ``F = clip(N̄/B, 1 − b, 1 + b)`` (1 in fallback voxels) is resampled linearly to the input grid and
multiplies the baseline there. ``baseline_grid="model"``: the baseline is the model-grid one resampled (no new
kernels); ``"native"``: the density-scaled VSV computed on the input grid itself (kernels of that voxel size,
computed once and cached: minutes the first time), so lesion peaks come from the physics at native resolution.
Arrays are (z, y, x); spacings (x, y, z) [mm]; dose rates [mGy/h].
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

from ..deepdose_rule import FALLBACK_NOTE_PREFIX, FLIP_SETS, SafetyRule
from ..model_card import describe_floors
from ..progress import ProgressCallback
from ..tissue import tissue_mask
from .channels import physics_inputs
from .tiling import TilePlan
from .training_range import (BODY_DENSITY_g_per_cm3, LUNG_RATIO_MIN_KEY, body_activity_median, lung_activity_ratio,
                             lung_mask)
from .uncertainty_floor import card_floors, floor_map


@dataclass
class SafeDeepDose:
    """Result on the input grid ((z, y, x) float32 arrays).

    Attributes
    ----------
    dose_rate_mGy_per_h : numpy.ndarray
        D: the output.
    baseline_mGy_per_h : numpy.ndarray
        B: the density-scaled VSV baseline on the input grid, as the network was trained on it (the bound is
        relative to it).
    physics_mGy_per_h : numpy.ndarray
        P: what the fallback voxels get, B plus the unscattered-photon heterogeneity correction with the rule's
        ``fallback_photon_heterogeneity="primary"`` (B itself with ``"none"``).
    network_mGy_per_h : numpy.ndarray
        N̄: the network's (mean) prediction, unbounded, resampled to the input grid.
    relative_uncertainty : numpy.ndarray or None
        u_D [fraction of D] (None where the network did not run at all): the relative standard uncertainty
        written beside the dose rate, ``u_D = sqrt(u² + (|N̄ − B| / 2D)² + (c·X/D)² + f²)``: the network's mirrored
        spread ``u``, half the disagreement between the network and the physics baseline, the baseline's
        charged-particle dose X delivered across density interfaces, and the card's error floor f of the voxel's
        material class (module docstring).
    network_spread : numpy.ndarray or None
        u = σ/N̄ [fraction] of the mirrored predictions (None without flips): what the fallback rule tests.
    fallback : numpy.ndarray
        bool: voxels where D equals P exactly.
    notes : list of str
    seconds : dict
        Time of each stage [s].
    """

    dose_rate_mGy_per_h: np.ndarray
    baseline_mGy_per_h: np.ndarray
    network_mGy_per_h: np.ndarray
    relative_uncertainty: Optional[np.ndarray]
    fallback: np.ndarray
    notes: List[str] = field(default_factory=list)
    seconds: dict = field(default_factory=dict)
    network_spread: Optional[np.ndarray] = None
    physics_mGy_per_h: Optional[np.ndarray] = None


def flip(array: np.ndarray, axes: Sequence[int], leading: int = 0) -> np.ndarray:
    """``array`` mirrored along the spatial ``axes`` of (z, y, x) (after ``leading`` non-spatial axes)."""
    return np.flip(array, axis=tuple(a + leading for a in axes)) if axes else array


def predict_padded(runner, inputs: np.ndarray, plan: TilePlan, cancel: Optional[Callable[[], bool]] = None,
                   progress: Optional[Callable[[int], None]] = None) -> np.ndarray:
    """Tile-blended prediction [mGy/h] over the whole padded volume (0 where no tile has weight).

    Same tiles and blending as :func:`.inference.predict_on_model_grid`, but the result is not cropped, so
    that a mirrored volume (whose core lies elsewhere in the padding) can be predicted with the same plan.
    """
    from .inference import predict_tiles

    counted = [0]

    def tiles_done(done: int, total: int) -> None:
        if progress is not None:
            progress(done - counted[0])
        counted[0] = done

    return predict_tiles(runner, inputs, plan, cancel=cancel, tiles_done=tiles_done).padded()


def flipped_predictions(model, activity_Bq_per_mL: np.ndarray, density_g_per_cm3: np.ndarray, n_flips: int, *,
                        device: str = "cpu", tile_size: Optional[int] = None, batch_size: Optional[int] = None,
                        progress: Optional[ProgressCallback] = None, cancel: Optional[Callable[[], bool]] = None,
                        notes: Optional[List[str]] = None,
                        precision: str = "float32") -> Tuple[np.ndarray, List[np.ndarray], np.ndarray, np.ndarray]:
    """Baseline B and the network's predictions on the model's grid: unflipped, then ``n_flips`` mirrored copies
    (:data:`FLIP_SETS`), each flipped back. The physics channels are computed once (FFT) and mirrored with the
    volume (the kernels are mirror-symmetric).

    Returns
    -------
    (numpy.ndarray, list of numpy.ndarray, numpy.ndarray, numpy.ndarray)
        B (z, y, x) [mGy/h], 1 + ``n_flips`` predictions (z, y, x) [mGy/h], per voxel the largest tile scale
        s·k [mGy/h] among the passes (:func:`.inference.tile_scale_map`), and the part of B's charged-particle dose
        rate that crossed a density interface [mGy/h] (:func:`.channels.physics_inputs`), float32.
    """
    from .inference import TileRunner, model_tile_plan, tile_scale_map, tiles_per_batch

    notes = notes if notes is not None else []
    plan = model_tile_plan(model, activity_Bq_per_mL.shape, tile_size)
    a, d = plan.pad(activity_Bq_per_mL, density_g_per_cm3)
    if progress is not None:
        progress(0.0, "Deep-dose: physics channels (density-scaled VSV)")
    inputs, across = physics_inputs(a, d, model.kernels, device=device if device.startswith("cuda") else "cpu")
    baseline = (inputs[2] + inputs[3])[plan.core]
    runner = TileRunner(model.module, device,
                        batch_size or tiles_per_batch(plan.tile_edge, model.base_channels, device), notes, precision)
    total = (1 + n_flips) * len(plan.corners)
    state = {"done": 0}

    def step(n: int) -> None:
        state["done"] += n
        if progress is not None:
            progress(state["done"] / total, f"Deep-dose: {state['done']}/{total} tiles "
                                             f"({_passes(n_flips)})")

    predictions = []
    scale = np.zeros(baseline.shape, np.float32)
    for axes in FLIP_SETS[:1 + n_flips]:
        flipped = np.ascontiguousarray(flip(inputs, axes, leading=1))
        padded = flip(predict_padded(runner, flipped, plan, cancel, step), axes)
        predictions.append(np.ascontiguousarray(padded[plan.core]))
        np.maximum(scale, flip(tile_scale_map(flipped, plan, model.dose_per_activity), axes)[plan.core], out=scale)
    return (np.ascontiguousarray(baseline, dtype=np.float32), predictions, scale,
            np.ascontiguousarray(across[plan.core], dtype=np.float32))


def _passes(n_flips: int) -> str:
    """'1 pass', '2 passes: 1 mirrored', ... (the network passes of :func:`flipped_predictions`)."""
    if n_flips <= 0:
        return "1 pass"
    return f"{1 + n_flips} passes: {n_flips} mirrored"


def _ball(radius_vox: Sequence[float]) -> np.ndarray:
    r = [max(0, int(np.floor(v))) for v in radius_vox]
    zz, yy, xx = np.ogrid[-r[0]:r[0] + 1, -r[1]:r[1] + 1, -r[2]:r[2] + 1]
    rr = sum((g / max(v, 1e-9)) ** 2 for g, v in zip((zz, yy, xx), radius_vox))
    return rr <= 1.0


def grow(mask: np.ndarray, distance_mm: float, spacing_mm: Sequence[float]) -> np.ndarray:
    """``mask`` dilated by ``distance_mm`` (ellipsoidal structuring element on the (x, y, z) [mm] grid)."""
    if not mask.any() or distance_mm <= 0:
        return mask.copy()
    radius = [distance_mm / float(s) for s in tuple(spacing_mm)[::-1]]
    return ndimage.binary_dilation(mask, structure=_ball(radius))


def input_range_flags(activity_Bq_per_mL: np.ndarray, density_g_per_cm3: np.ndarray, spacing_mm: Sequence[float],
                      rule: SafetyRule, training: Optional[dict] = None) -> Tuple[np.ndarray, List[str]]:
    """Voxels whose inputs lie outside the training range (before growing), and why (one line per reason).

    ``training``: the card's ``training_range`` (:mod:`.training_range`); with it, the lungs are flagged when
    they are less active than in every training case."""
    a = np.asarray(activity_Bq_per_mL, np.float32)
    d = np.asarray(density_g_per_cm3, np.float32)
    flags = np.zeros(a.shape, bool)
    reasons = []
    dense = d > rule.max_density_g_per_cm3
    if dense.any():
        flags |= dense
        reasons.append(f"{int(dense.sum())} voxels denser than {rule.max_density_g_per_cm3:g} g/cm³ "
                       f"(max {float(d.max()):.2f})")
    median = body_activity_median(a, d)
    if median is not None:
        extreme = a > rule.max_activity_contrast * median
        if extreme.any():
            flags |= extreme
            reasons.append(f"{int(extreme.sum())} voxels above {rule.max_activity_contrast:g}× the median tissue "
                           f"activity {median:.4g} Bq/mL (max {float(a.max()) / median:.0f}×)")
        hot = a > rule.hot_contrast * median
        if hot.any():
            labels, n = ndimage.label(hot)
            voxel_mL = float(np.prod(spacing_mm)) * 1e-3
            sizes = ndimage.sum_labels(np.ones_like(a), labels, index=np.arange(1, n + 1)) * voxel_mL
            big = [i + 1 for i, v in enumerate(sizes) if v > rule.max_hot_volume_mL]
            if big:
                flags |= np.isin(labels, big)
                reasons.append(f"{len(big)} hot region(s) (> {rule.hot_contrast:g}× the median) larger than "
                               f"{rule.max_hot_volume_mL:g} mL (largest {float(max(sizes)):.0f} mL)")
    lung_min = (training or {}).get(LUNG_RATIO_MIN_KEY)
    if lung_min is not None:
        ratio = lung_activity_ratio(a, d, spacing_mm)
        if ratio is not None and ratio < lung_min:
            lungs = lung_mask(d)
            flags |= lungs
            reasons.append(f"lungs ({int(lungs.sum())} voxels) at {ratio:.3g}× the median body activity, less than "
                           f"in any training case ({lung_min:.3g}×)")
    return flags, reasons


def _fmt_spacing(spacing: Sequence[float]) -> str:
    return "×".join(f"{float(s):g}" for s in spacing)


def older_baseline_note(kernels) -> Optional[str]:
    """A note when the model's baseline kernels predate the ``vsv_scaled`` method's energy-band bone photon kernels
    (one photon factor per material instead): there the method's defaults can be closer to MC than Deep-dose (the
    Lu-177 model bundled before the seventh pass of issue 19, held-out benchmark: bone within 5 % in 18 against 14 of
    20 cases). None otherwise."""
    if getattr(kernels, "photon_material_kernels", ()):
        return None
    return ("this model's physics baseline predates the energy-band bone photon kernels and the scatter-medium "
            "correction of the vsv_scaled method; where bone dose matters compare with --method vsv_scaled "
            "(the model card's limitations give the figures)")


def fallback_notes(fallback: np.ndarray, activity_Bq_per_mL: np.ndarray, density_g_per_cm3: np.ndarray,
                   spacing_mm: Sequence[float]) -> str:
    """How much fell back: voxels, mL, % of the tissue and % of the activity."""
    n = int(fallback.sum())
    tissue = tissue_mask(np.asarray(density_g_per_cm3))
    a = np.asarray(activity_Bq_per_mL, np.float64)
    total = float(a.sum())
    pct_tissue = 100.0 * float((fallback & tissue).sum()) / max(1, int(tissue.sum()))
    pct_activity = 100.0 * float(a[fallback].sum()) / total if total > 0 else 0.0
    return (f"{FALLBACK_NOTE_PREFIX} in {n} voxels "
            f"({n * float(np.prod(spacing_mm)) * 1e-3:.1f} mL, {pct_tissue:.1f} % of the tissue, "
            f"{pct_activity:.1f} % of the activity)")


def safe_deepdose(activity_Bq_per_mL: np.ndarray, density_g_per_cm3: np.ndarray, spacing_mm: Sequence[float],
                  model, rule: Optional[SafetyRule] = None, *, baseline_grid: str = "model",
                  native_kernels=None, device: str = "cpu", tile_size: Optional[int] = None,
                  batch_size: Optional[int] = None, progress: Optional[ProgressCallback] = None,
                  cancel: Optional[Callable[[], bool]] = None, precision: str = "float32",
                  error_floor: bool = True) -> SafeDeepDose:
    """Bounded, self-checking Deep-dose on the input grid (see the module docstring).

    Parameters
    ----------
    activity_Bq_per_mL, density_g_per_cm3 : numpy.ndarray
        (z, y, x) activity [Bq/mL] and density [g/cm³].
    spacing_mm : sequence of float
        Voxel size (x, y, z) [mm].
    model : DeepDoseLib.deepdose.model_io.LoadedModel
    rule : SafetyRule, optional
        Bounds and fallback rule (default :class:`SafetyRule`).
    baseline_grid : str
        ``"model"`` (baseline resampled from the model grid) or ``"native"`` (computed on the input grid with
        ``native_kernels``, a :class:`~DeepDoseLib.methods.scaled_vsv.ScaledKernels` of ``spacing_mm``).
    device, tile_size, batch_size, progress, cancel, precision
        As in :func:`.inference.deepdose_dose_rate`.
    error_floor : bool
        Add the card's per-class error floor to the uncertainty map (False: the map without it, as the floor's
        own measurement needs).
    """
    from .inference import resample_array, resample_to_model_grid
    from ..methods.scaled_vsv import scaled_vsv_dose_rate

    rule = rule or SafetyRule()
    if baseline_grid not in ("model", "native"):
        raise ValueError("baseline_grid must be 'model' or 'native'")
    notes: List[str] = [n for n in (older_baseline_note(model.kernels),) if n]
    seconds = {}
    spacing = tuple(float(s) for s in spacing_mm)
    model_spacing = model.spacing_mm
    resample = not np.allclose(spacing, model_spacing, rtol=1e-3)
    shape = np.asarray(activity_Bq_per_mL).shape
    t0 = time.perf_counter()
    a, d = (activity_Bq_per_mL, density_g_per_cm3)
    if resample:
        a, d = resample_to_model_grid(np.asarray(a, np.float32), np.asarray(d, np.float32), spacing, model_spacing)
    seconds["resample"] = time.perf_counter() - t0

    lo, hi = rule.voxel_size_range_mm
    whole = []
    if any(s < lo or s > hi for s in spacing):
        whole.append(f"voxel size {_fmt_spacing(spacing)} mm outside the model's {lo:g}–{hi:g} mm")
    if not (np.asarray(density_g_per_cm3) >= 0.5).any():
        whole.append("the CT holds no tissue (no voxel ≥ 0.5 g/cm³)")

    t0 = time.perf_counter()
    if whole:
        from .channels import CHARGED_MODE

        baseline_m = scaled_vsv_dose_rate(a, d, model.kernels, device="cpu", mode=CHARGED_MODE).astype(np.float32)
        predictions = [baseline_m]
    else:
        baseline_m, predictions, tile_scale_m, across_m = flipped_predictions(
            model, a, d, rule.flips, device=device, tile_size=tile_size, batch_size=batch_size, progress=progress,
            cancel=cancel, notes=notes, precision=precision)
    seconds["network"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    stack = np.stack(predictions)
    net_m = stack.mean(axis=0)
    if len(predictions) > 1:
        sigma = stack.std(axis=0, ddof=1)
        u_m = np.zeros_like(net_m)
        np.divide(sigma, net_m, out=u_m, where=net_m > 0)
    else:
        u_m = None
    ratio = np.ones_like(net_m)
    np.divide(net_m, baseline_m, out=ratio, where=baseline_m > 0)
    b = rule.max_correction
    factor = np.clip(ratio, 1.0 - b, 1.0 + b).astype(np.float32)
    clipped = (ratio < 1.0 - b) | (ratio > 1.0 + b)
    body_m = d >= BODY_DENSITY_g_per_cm3
    if clipped.any():
        notes.append(f"Deep-dose correction bounded to ±{100 * b:g} % of the baseline in {int((clipped & body_m).sum())} "
                     f"tissue voxels of the model grid ({100 * float((clipped & body_m).sum()) / max(1, int(body_m.sum())):.1f} %)")

    # fallback on the model grid
    if whole:
        flags = np.ones(baseline_m.shape, bool)
        notes.append("Deep-dose not applied: " + "; ".join(whole) + "; the output is the density-scaled VSV baseline")
    else:
        flags, reasons = input_range_flags(a, d, model_spacing, rule, model.card.get("training_range"))
        flags = grow(flags, rule.fallback_margin_mm, model_spacing)
        if rule.min_tile_scale_fraction > 0:
            # voxel by voxel (not grown): tissue whose baseline is a small fraction of its tiles' scale
            small = tissue_mask(d) & (baseline_m < rule.min_tile_scale_fraction * tile_scale_m)
            if small.any():
                flags |= small
                reasons.append(f"{int(small.sum())} tissue voxels whose baseline is below "
                               f"{100 * rule.min_tile_scale_fraction:g} % of their tiles' scale (low uptake next to "
                               "hot regions: the network's error there is absolute, not relative)")
        if u_m is not None:
            # voxel by voxel (not grown): tissue, lung included, with a dose rate above the rule's fraction of the max
            relevant = (net_m > rule.uncertainty_dose_fraction * float(net_m.max())) & tissue_mask(d)
            unsure = relevant & (u_m > rule.max_relative_uncertainty)
            if unsure.any():
                flags |= unsure
                reasons.append(f"{int(unsure.sum())} tissue voxels with σ/dose > "
                               f"{100 * rule.max_relative_uncertainty:g} %")
        if reasons:
            notes.append("Deep-dose out of its training range: " + "; ".join(reasons))
    factor[flags] = 1.0
    u_total_m = None  # where the network did not run (whole): no uncertainty of its own to state
    floors = None
    if not whole:  # the map written beside the dose rate: the mirrored spread and half the network-physics gap
        dose_m = baseline_m * factor
        disagreement = np.zeros_like(net_m)
        np.divide(np.abs(net_m - baseline_m), 2.0 * dose_m, out=disagreement, where=dose_m > 0)
        u_total_m = disagreement if u_m is None else np.sqrt(u_m * u_m + disagreement * disagreement)
        if rule.interface_sigma > 0:  # the physics's own approximation: charged particles across density interfaces
            interface = np.zeros_like(net_m)
            np.divide(rule.interface_sigma * across_m, dose_m, out=interface, where=dose_m > 0)
            u_total_m = np.sqrt(u_total_m * u_total_m + interface * interface)
        floors = card_floors(model.card) if error_floor else None
        if floors is not None:
            floor_m = floor_map(d, floors)
            u_total_m = np.sqrt(u_total_m * u_total_m + floor_m * floor_m)
    seconds["bound_and_fallback"] = time.perf_counter() - t0

    # to the input grid: factor field × baseline
    t0 = time.perf_counter()
    if resample:
        # one more model voxel of F = 1 so that linear interpolation keeps F = 1 exactly on the flagged voxels
        factor_wide = factor.copy()
        factor_wide[grow(flags, 1.01 * max(model_spacing), model_spacing)] = 1.0
        factor_n = resample_array(factor_wide, model_spacing, spacing, new_shape=shape, default=1.0)
        fallback_n = resample_array(flags.astype(np.float32), model_spacing, spacing, new_shape=shape) > 0
        factor_n[fallback_n] = 1.0
        net_n = np.clip(resample_array(net_m, model_spacing, spacing, new_shape=shape), 0, None)
        u_n = None if u_m is None else np.clip(resample_array(u_m, model_spacing, spacing, new_shape=shape), 0, None)
        u_total_n = None if u_total_m is None else np.clip(resample_array(u_total_m, model_spacing, spacing,
                                                                          new_shape=shape), 0, None)
    else:
        factor_n, fallback_n, net_n, u_n, u_total_n = factor, flags, net_m.astype(np.float32), u_m, u_total_m
    if baseline_grid == "native" and not (resample and native_kernels is None):
        kernels = native_kernels if resample else model.kernels
        from .channels import CHARGED_MODE

        baseline_n = scaled_vsv_dose_rate(np.asarray(activity_Bq_per_mL, np.float32),
                                          np.asarray(density_g_per_cm3, np.float32), kernels,
                                          device=device if device.startswith("cuda") else "cpu",
                                          mode=CHARGED_MODE).astype(np.float32)
        if resample:
            notes.append(f"Deep-dose correction applied as a smooth factor field to the density-scaled VSV baseline "
                         f"computed on the input grid ({_fmt_spacing(spacing)} mm)")
    elif resample:
        baseline_n = np.clip(resample_array(baseline_m, model_spacing, spacing, new_shape=shape), 0, None)
        notes.append(f"inputs resampled from {_fmt_spacing(spacing)} mm to the model's {_fmt_spacing(model_spacing)} "
                     "mm voxels (total activity kept); the correction factor and baseline resampled back (small "
                     "lesions lose ≈ 9–13 % of their mean dose rate in this round trip at 4–6 mL: "
                     "--deepdose-baseline-grid native avoids it)")
    else:
        baseline_n = baseline_m
    baseline_n = np.asarray(baseline_n, np.float32)
    dose = (baseline_n * factor_n).astype(np.float32)
    physics_n = baseline_n
    if rule.fallback_photon_heterogeneity == "primary" and fallback_n.any():
        from ..methods.photon_heterogeneity import nuclide_primary_excess

        excess = nuclide_primary_excess(model.kernels.nuclide, activity_Bq_per_mL, density_g_per_cm3, spacing)
        physics_n = np.maximum(baseline_n + excess, 0.0).astype(np.float32)
        changed = fallback_n & (np.abs(excess) > 0.01 * baseline_n)
        notes.append(f"fallback voxels: the baseline plus the unscattered photons that cross lung and bone by their "
                     f"density ({int(changed.sum())} of them changed by more than 1 %)")
    dose[fallback_n] = physics_n[fallback_n]
    seconds["to_input_grid"] = time.perf_counter() - t0
    if fallback_n.any():
        notes.append(fallback_notes(fallback_n, activity_Bq_per_mL, density_g_per_cm3, spacing))
    else:
        notes.append("Deep-dose applied everywhere (no fallback to the baseline)")
    if dose.max() > 0 and u_total_n is not None:
        hot = dose > 0.1 * float(dose.max())
        spread = (f"the spread of {_passes(rule.flips)} (median {100 * float(np.median(u_n[hot])):.1f} %) "
                  "combined with " if u_n is not None else "")
        floor = "" if floors is None else (" and the error floor measured on the model's validation/test cases ("
                                           + describe_floors(floors) + ")")
        interface = (f", {rule.interface_sigma:g} × the baseline's charged-particle dose that crossed a density "
                     "interface" if rule.interface_sigma > 0 else "")
        notes.append(f"uncertainty map: {spread}half the network-baseline difference{interface}{floor}; median "
                     f"{100 * float(np.median(u_total_n[hot])):.1f} % above 10 % of the maximum")
    return SafeDeepDose(dose, baseline_n, net_n.astype(np.float32),
                        None if u_total_n is None else u_total_n.astype(np.float32), fallback_n, notes,
                        seconds, None if u_n is None else u_n.astype(np.float32), physics_n)
