"""The therapy-dosimetry pipeline: several SPECT/CT or PET/CT time points → absorbed dose [Gy], BED, EQD2, EUD
and their uncertainty per structure.

Steps (:func:`run_therapy_study`):

1. **Quantification**: activity maps in Bq/mL are used as given; count images are converted with the
   calibration factor, A [Bq/mL] = counts / (frame duration [s] × factor [counts/s per MBq]) × 10⁶ / voxel [mL].
2. **Dose rate per time point** [mGy/h] with any DeepDose method, each in its own frame (its own CT gives the
   density), at the time of that scan.
3. **Registration**: every CT to the reference CT (rigid, optionally B-spline; :mod:`.registration`); the
   activity and dose-rate maps are carried onto the reference time point's activity grid with that transform
   (linear interpolation of concentrations).
4. **Kinetics**: voxel-wise integration of the registered dose rates (``auto``: AICc per voxel) → absorbed
   dose [Gy]; per structure, the mass-weighted mean dose rate and the activity [MBq] are fitted as curves
   (:mod:`.kinetics`) → mean absorbed dose [Gy] and time-integrated activity [MBq·h].
5. **Radiobiology**: BED/EQD2 per voxel (the voxel's own fitted time course and its structure's α/β and
   repair half-time) and per structure (its mean dose and the G factor of its fitted curve); gEUD and EUBED
   from the voxels (:mod:`.radiobiology`).
6. **Uncertainty** of each structure's mean dose (:mod:`.uncertainty`), and the optional recovery correction
   of lesion means (:mod:`.recovery`).

Images are SimpleITK (LPS), numpy arrays (z, y, x). Nothing here reads or writes files (see :mod:`.outputs`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
import SimpleITK as sitk

from ..errors import DeepDoseInputError
from ..nuclides import get_nuclide
from ..progress import ProgressCallback, report_progress
from .kinetics import FIT_CHOICES, CurveFit, fit_curve, integrate_voxel_curves
from .radiobiology import (RadiobiologyParameters, bed_Gy, eqd2_Gy, eubed_Gy, g_factor_exponential,
                           g_factor_piecewise, geud_Gy, parameters_for)
from .recovery import RecoveryCurve
from .registration import RegistrationQuality, RegistrationSettings, register_ct, resample_into_reference
from .uncertainty import (METHOD_RELATIVE_UNCERTAINTY, UncertaintyBudget, mc_structure_relative_uncertainty,
                          segmentation_relative_uncertainty)

ACTIVITY_UNITS = ("Bq/mL", "counts")


@dataclass
class TimePoint:
    """One scan of the study.

    Attributes:
        ct_HU: CT [HU] of this scan.
        activity: PET/SPECT activity concentration [Bq/mL], or counts per voxel (``activity_unit="counts"``).
        time_h: scan time [h after administration]; the map must refer to that time (decay-corrected to the
            scan start at most, never to the injection).
        frame_duration_s: acquisition duration [s] of a count image.
        labels: this scan's own segmentation (same label values as the study's), optional: gives the
            organ-mask Dice after registration.
    """

    ct_HU: sitk.Image
    activity: sitk.Image
    time_h: float
    name: str = ""
    activity_unit: str = "Bq/mL"
    frame_duration_s: Optional[float] = None
    labels: Optional[sitk.Image] = None


@dataclass
class TherapyOptions:
    """Choices of a therapy study (defaults: Deep-dose, AICc fits, first time point as reference).

    Attributes:
        calibration_cps_per_MBq: SPECT calibration factor for count images [counts/s per MBq].
        calibration_relative_uncertainty: its relative standard uncertainty (None: not given, reported as such).
        timepoint_relative_uncertainty: relative standard uncertainty of each time point's structure mean, for
            the fit covariance (None: estimated from the fit residuals).
        segmentation_boundary_mm: boundary uncertainty of the segmentation [mm] (None: half a label voxel).
        method_relative_uncertainty: overrides :data:`~.uncertainty.METHOD_RELATIVE_UNCERTAINTY`.
        radiobiology: structure or class name → {alpha_beta_Gy, repair_half_time_h, alpha_per_Gy, geud_a}.
        recovery: recovery curve; applied to the structures named in ``recovery_structures``.
        population_half_life_h: one time point only: population effective half-life [h] (default: Hänscheid).
    """

    nuclide: str = "Lu177"
    method: str = "deepdose"
    fit: str = "auto"
    reference_index: int = 0
    register: bool = True
    registration: RegistrationSettings = field(default_factory=RegistrationSettings)
    method_options: object = None
    calibration_cps_per_MBq: Optional[float] = None
    calibration_relative_uncertainty: Optional[float] = None
    timepoint_relative_uncertainty: Optional[float] = None
    segmentation_boundary_mm: Optional[float] = None
    method_relative_uncertainty: Optional[float] = None
    radiobiology: Dict[str, Dict[str, float]] = field(default_factory=dict)
    recovery: Optional[RecoveryCurve] = None
    recovery_structures: Sequence[str] = ()
    device: str = "auto"
    clip_negative: bool = False
    population_half_life_h: Optional[float] = None


@dataclass
class RegisteredTimePoint:
    """One time point in the reference frame (on the reference activity grid)."""

    name: str
    time_h: float
    activity_Bq_per_mL: sitk.Image
    dose_rate_mGy_per_h: sitk.Image
    ct_HU: sitk.Image
    quality: Optional[RegistrationQuality]
    dose_seconds: float = 0.0
    relative_uncertainty: Optional[sitk.Image] = None


@dataclass
class StructureResult:
    """Everything reported for one structure (doses in Gy, masses in g, activities in MBq)."""

    name: str
    label: int
    volume_mL: float
    mass_g: float
    mean_Gy: float
    u_mean_Gy: float
    bed_Gy: float
    u_bed_Gy: float
    eqd2_Gy: float
    u_eqd2_Gy: float
    g_factor: float
    voxel_mean_Gy: float
    D2_Gy: float
    D50_Gy: float
    D98_Gy: float
    bed_voxel_mean_Gy: float
    geud_Gy: float
    eubed_Gy: float
    tia_MBq_h: float
    dose_rate_fit: CurveFit
    activity_fit: CurveFit
    radiobiology: RadiobiologyParameters
    uncertainty: UncertaintyBudget
    recovery_coefficient: float = float("nan")
    notes: List[str] = field(default_factory=list)

    @property
    def effective_half_life_h(self) -> float:
        """Effective half-life of the dose-rate curve's slowest phase [h] (NaN for the trapezoid)."""
        rates = self.dose_rate_fit.rates_per_h
        return float(math.log(2.0) / rates.min()) if rates.size else float("nan")


@dataclass
class TherapyResult:
    """The study's outputs on the reference activity grid."""

    absorbed_dose_Gy: sitk.Image
    bed_Gy: sitk.Image
    eqd2_Gy: sitk.Image
    time_points: List[RegisteredTimePoint]
    structures: List[StructureResult]
    reference_index: int
    options: TherapyOptions
    reference_ct_HU: sitk.Image
    labels: Optional[sitk.Image] = None
    label_names: Dict[int, str] = field(default_factory=dict)
    fit_map: Optional[sitk.Image] = None
    fit_models: Sequence[str] = ()
    effective_half_life_h: Optional[sitk.Image] = None
    seconds: Dict[str, float] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)

    @property
    def times_h(self) -> List[float]:
        return [tp.time_h for tp in self.time_points]


def activity_Bq_per_mL(tp: TimePoint, options: TherapyOptions) -> (sitk.Image, List[str]):
    """The time point's activity concentration [Bq/mL] (count images converted with the calibration factor)."""
    if tp.activity_unit not in ACTIVITY_UNITS:
        raise DeepDoseInputError(f"{tp.name}: activity unit must be one of {', '.join(ACTIVITY_UNITS)} "
                                 f"(got {tp.activity_unit!r}).")
    image = sitk.Cast(tp.activity, sitk.sitkFloat32)
    if tp.activity_unit == "Bq/mL":
        return image, []
    factor = options.calibration_cps_per_MBq
    if factor is None or not factor > 0:
        raise DeepDoseInputError(f"{tp.name} is a count image: give the SPECT calibration factor in counts/s per MBq "
                                 "(--calibration-cps-per-MBq).")
    if tp.frame_duration_s is None or not tp.frame_duration_s > 0:
        raise DeepDoseInputError(f"{tp.name} is a count image: give its acquisition duration in s "
                                 "(--frame-duration-s).")
    voxel_mL = float(np.prod(image.GetSpacing())) * 1e-3
    scale = 1e6 / (tp.frame_duration_s * factor * voxel_mL)
    out = image * scale
    out.CopyInformation(image)
    return out, [f"{tp.name}: counts → Bq/mL with {factor:g} cps/MBq over {tp.frame_duration_s:g} s "
                 f"({voxel_mL:.4g} mL voxels: × {scale:.5g})"]


def _check(time_points: Sequence[TimePoint], options: TherapyOptions) -> List[TimePoint]:
    if not time_points:
        raise DeepDoseInputError("A therapy study needs at least one time point (CT, activity, hours).")
    if options.fit not in FIT_CHOICES:
        raise DeepDoseInputError(f"Unknown fit {options.fit!r}; use one of {', '.join(FIT_CHOICES)}.")
    if not 0 <= options.reference_index < len(time_points):
        raise DeepDoseInputError(f"The reference time point {options.reference_index + 1} does not exist "
                                 f"({len(time_points)} time point(s); --reference counts from 1).")
    times = [float(tp.time_h) for tp in time_points]
    if any(not (math.isfinite(t) and t > 0) for t in times) or len(set(times)) != len(times):
        raise DeepDoseInputError(f"Time points must be distinct and > 0 h after administration (got {times} h).")
    for i, tp in enumerate(time_points):
        if not tp.name:
            tp.name = f"time point {i + 1} ({tp.time_h:g} h)"
    return list(time_points)


def _labels_on_grid(labels: sitk.Image, grid: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.Resample(sitk.Cast(labels, sitk.sitkUInt16), grid, sitk.Transform(),
                                                sitk.sitkNearestNeighbor, 0)).astype(np.int64)


def _wrap(array: np.ndarray, grid: sitk.Image, quantity: str, unit: str) -> sitk.Image:
    image = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.float32))
    image.CopyInformation(grid)
    image.SetMetaData("DeepDose.quantity", quantity)
    image.SetMetaData("DeepDose.units", unit)
    return image


def run_therapy_study(time_points: Sequence[TimePoint], options: Optional[TherapyOptions] = None, *,
                      labels: Optional[sitk.Image] = None, label_names: Optional[Dict[int, str]] = None,
                      progress: Optional[ProgressCallback] = None) -> TherapyResult:
    """Run the therapy pipeline (see the module docstring) → :class:`TherapyResult`.

    Args:
        time_points: the scans, any order (sorted by time; ``options.reference_index`` counts in the order
            given).
        labels: structures in the reference frame (label map on any grid, e.g. the reference CT's), 0 = none.
        label_names: label value → structure name.
    """
    from ..analysis.masks import fractional_masks
    from ..analysis.organs import organ_statistics
    from ..devices import resolve_device
    from ..dose import run_dose_method
    from ..inputs import prepare_inputs
    from ..progress import sub_progress

    options = options or TherapyOptions()
    time_points = _check(time_points, options)
    reference = time_points[options.reference_index]
    nuc = get_nuclide(options.nuclide)
    lam_phys = math.log(2.0) / (nuc.half_life_s / 3600.0)
    device = resolve_device(options.device)
    method_options = options.method_options
    seconds: Dict[str, float] = {}
    notes: List[str] = [f"{nuc.name} (physical half-life {nuc.half_life_s / 3600:.4g} h), {len(time_points)} time "
                        f"point(s), dose method {options.method}, reference frame: {reference.name}"]
    start_all = time.perf_counter()
    n = len(time_points)

    reference_activity, conversion = activity_Bq_per_mL(reference, options)
    grid = reference_activity
    notes += conversion
    registered: List[RegisteredTimePoint] = []
    for i, tp in enumerate(time_points):
        share = 0.75 / n
        base = i * share
        activity, conversion = (reference_activity, []) if tp is reference else activity_Bq_per_mL(tp, options)
        notes += conversion
        report_progress(progress, base, f"{tp.name}: dose rate ({options.method})")
        t0 = time.perf_counter()
        inputs = prepare_inputs(tp.ct_HU, activity, clip_negative=options.clip_negative)
        notes += [f"{tp.name}: {note}" for note in inputs.notes]
        dose = run_dose_method(inputs, nuc, options.method, method_options, device=device,
                               progress=sub_progress(progress, base, base + 0.6 * share, f"{tp.name}: "),
                               labels=labels, label_names=label_names)
        dose_seconds = time.perf_counter() - t0
        seconds[f"dose rate {tp.name}"] = dose_seconds
        notes += [f"{tp.name}: {note}" for note in dose.notes]
        quality = None
        transform = sitk.Transform()
        if tp is not reference and options.register:
            report_progress(progress, base + 0.6 * share, f"{tp.name}: registration to the reference CT")
            t0 = time.perf_counter()
            reg = register_ct(reference.ct_HU, tp.ct_HU, tp.name, options.registration,
                              reference_labels=labels if tp.labels is not None else None, moving_labels=tp.labels,
                              label_names=label_names)
            seconds[f"registration {tp.name}"] = time.perf_counter() - t0
            transform, quality = reg.transform, reg.quality
            notes += reg.notes
        elif tp is not reference:
            notes.append(f"{tp.name}: NOT registered (identity: the scans are assumed aligned)")
        act_ref = resample_into_reference(activity, grid, transform)
        rate_ref = resample_into_reference(dose.dose_rate, grid, transform)
        ct_ref = resample_into_reference(sitk.Cast(tp.ct_HU, sitk.sitkFloat32), reference.ct_HU, transform,
                                         default_value=-1000.0)
        unc_ref = None if dose.relative_uncertainty is None else \
            resample_into_reference(dose.relative_uncertainty, grid, transform)
        for key, value in {"DeepDose.time_h": f"{tp.time_h:g}", "DeepDose.units": "mGy/h"}.items():
            rate_ref.SetMetaData(key, value)
        registered.append(RegisteredTimePoint(tp.name, float(tp.time_h), act_ref, rate_ref, ct_ref, quality,
                                              dose_seconds, unc_ref))
    registered.sort(key=lambda r: r.time_h)
    times = [r.time_h for r in registered]

    # ---- voxel kinetics → absorbed dose, G, BED
    report_progress(progress, 0.78, "voxel-wise time integration")
    t0 = time.perf_counter()
    shape = tuple(reversed(grid.GetSize()))
    curves = np.stack([sitk.GetArrayViewFromImage(r.dose_rate_mGy_per_h).astype(np.float64).reshape(-1)
                       for r in registered], 1)
    kin = integrate_voxel_curves(times, curves, lam_phys, options.fit,
                                 population_half_life_h=options.population_half_life_h)
    notes += kin.notes
    absorbed = (kin.integral / 1000.0).reshape(shape)
    label_array = _labels_on_grid(labels, grid).reshape(-1) if labels is not None else np.zeros(curves.shape[0],
                                                                                                  np.int64)
    names = dict(label_names or {})
    present = sorted(int(v) for v in np.unique(label_array) if v != 0)
    params_by_label = {0: parameters_for("outside structures", options.radiobiology)}
    params_by_label.update({v: parameters_for(names.get(v, f"label {v}"), options.radiobiology) for v in present})
    top = max(present + [0])
    ab_lut = np.full(top + 1, params_by_label[0].alpha_beta_Gy)
    mu_lut = np.full(top + 1, params_by_label[0].mu_per_h)
    for v in present:
        ab_lut[v], mu_lut[v] = params_by_label[v].alpha_beta_Gy, params_by_label[v].mu_per_h
    ab, mu = ab_lut[label_array], mu_lut[label_array]
    g = np.zeros(curves.shape[0])
    exp_vox = np.flatnonzero((kin.model_index >= 0) & (kin.model_index != kin.models.index("trapezoid")))
    g[exp_vox] = g_factor_exponential(kin.amplitudes[exp_vox], kin.rates_per_h[exp_vox], mu[exp_vox])
    trap_vox = np.flatnonzero(kin.model_index == kin.models.index("trapezoid"))
    for s in range(0, trap_vox.size, 4096):
        idx = trap_vox[s:s + 4096]
        g[idx] = g_factor_piecewise(times, curves[idx], lam_phys, mu[idx])
    bed_map = bed_Gy(absorbed.reshape(-1), g, ab).reshape(shape)
    eqd2_map = eqd2_Gy(bed_map.reshape(-1), ab).reshape(shape)
    seconds["time integration and radiobiology"] = time.perf_counter() - t0
    dose_image = _wrap(absorbed, grid, "absorbed dose", "Gy")
    for key, value in {"DeepDose.nuclide": nuc.name, "DeepDose.method": options.method,
                       "DeepDose.time_integration": options.fit,
                       "DeepDose.time_points_h": " ".join(f"{t:g}" for t in times)}.items():
        dose_image.SetMetaData(key, value)
    bed_image = _wrap(bed_map, grid, "biologically effective dose", "Gy")
    eqd2_image = _wrap(eqd2_map, grid, "equivalent dose in 2-Gy fractions", "Gy")
    fit_map = sitk.GetImageFromArray(kin.model_index.reshape(shape).astype(np.int16))
    fit_map.CopyInformation(grid)
    # effective half-life of each voxel's slowest phase [h] (exponential fits; NaN for the trapezoid / no activity)
    slowest = np.where(kin.amplitudes != 0, kin.rates_per_h, np.inf).min(axis=1)
    with np.errstate(divide="ignore"):
        t_eff = np.where(np.isfinite(slowest) & (slowest > 0), math.log(2.0) / slowest, np.nan)
    t_eff_image = _wrap(t_eff.reshape(shape), grid, "effective half-life of the slowest phase", "h")
    notes.append("radiobiology: " + "; ".join(
        f"{names.get(v, 'outside') if v else 'outside structures'}: α/β {p.alpha_beta_Gy:g} Gy, T_rep "
        f"{p.repair_half_time_h:g} h ({p.structure_class})" for v, p in params_by_label.items()))

    # ---- structures
    structures: List[StructureResult] = []
    if labels is not None and present:
        report_progress(progress, 0.9, "structure curves, fits and uncertainty")
        t0 = time.perf_counter()
        ref_inputs = prepare_inputs(reference.ct_HU, grid, clip_negative=True)
        density = ref_inputs.density_g_per_cm3
        stats = organ_statistics(dose_image, labels, names, density, unit="Gy")
        masks = fractional_masks(labels, grid, [s.label for s in stats])
        rate_rows = [organ_statistics(r.dose_rate_mGy_per_h, labels, names, density) for r in registered]
        voxel_mL = float(np.prod(grid.GetSpacing())) * 1e-3
        label_grid = label_array.reshape(shape)
        for k, st in enumerate(stats):
            mask = masks[st.label]
            if mask.is_empty:
                continue
            rates = np.array([rows[k].mean for rows in rate_rows])
            activity_MBq = []
            for r in registered:
                values, fractions = mask.values_and_weights(sitk.GetArrayViewFromImage(r.activity_Bq_per_mL))
                activity_MBq.append(float(np.dot(values.astype(np.float64), fractions)) * voxel_mL * 1e-6)
            sigma = None if options.timepoint_relative_uncertainty is None else \
                options.timepoint_relative_uncertainty * rates
            rate_fit = fit_curve(times, rates, lam_phys, options.fit, sigma=sigma,
                                 population_half_life_h=options.population_half_life_h)
            act_sigma = None if options.timepoint_relative_uncertainty is None else \
                options.timepoint_relative_uncertainty * np.array(activity_MBq)
            act_fit = fit_curve(times, activity_MBq, lam_phys, options.fit, sigma=act_sigma,
                                population_half_life_h=options.population_half_life_h)
            params = params_by_label.get(st.label) or parameters_for(st.name, options.radiobiology)
            mean_Gy = rate_fit.integral / 1000.0
            snotes: List[str] = []
            budget = UncertaintyBudget()
            if options.calibration_relative_uncertainty is None:
                budget.add("calibration", float("nan"), "not given (--calibration-uncertainty)")
            else:
                budget.add("calibration", options.calibration_relative_uncertainty, "user value, fully correlated "
                           "across time points")
            budget.add("fit", rate_fit.u_integral / rate_fit.integral if rate_fit.integral > 0 else float("nan"),
                       rate_fit.notes[-1])
            boundary = options.segmentation_boundary_mm
            if boundary is None:
                boundary = 0.5 * float(np.mean(labels.GetSpacing()))
            u_v, why = segmentation_relative_uncertainty(absorbed, label_grid == st.label, grid.GetSpacing(),
                                                         st.mean, boundary)
            budget.add("volume", u_v, why)
            if options.method_relative_uncertainty is not None:
                budget.add("dose method", options.method_relative_uncertainty, "user value")
            elif options.method == "mc" and registered[0].relative_uncertainty is not None:
                per_tp = []
                for r in registered:
                    d, w = mask.values_and_weights(sitk.GetArrayViewFromImage(r.dose_rate_mGy_per_h))
                    u, _ = mask.values_and_weights(sitk.GetArrayViewFromImage(r.relative_uncertainty))
                    per_tp.append(mc_structure_relative_uncertainty(d, np.nan_to_num(u), w))
                budget.add("dose method", float(np.nanmax(per_tp)), "Monte Carlo statistics (largest of the time "
                           "points, independent voxels)")
            else:
                value, why = METHOD_RELATIVE_UNCERTAINTY.get(options.method, (float("nan"), "unknown"))
                budget.add("dose method", value, why)
            rc = float("nan")
            if options.recovery is not None and st.name in set(options.recovery_structures):
                rc, u_rc = options.recovery(st.structure_volume_mL)
                mean_Gy /= rc
                budget.add("recovery", u_rc / rc, options.recovery.describe())
                snotes.append(f"{st.name}: mean absorbed dose divided by the recovery coefficient RC("
                              f"{st.structure_volume_mL:.3g} mL) = {rc:.3f} ± {u_rc:.3f}")
            u_mean = mean_Gy * budget.combined
            if rate_fit.model == "trapezoid":
                G = float(g_factor_piecewise(times, rates, lam_phys, params.mu_per_h)[0])
            else:
                G = float(g_factor_exponential(rate_fit.amplitudes[None], rate_fit.rates_per_h[None],
                                               params.mu_per_h)[0])
            bed = float(bed_Gy(mean_Gy, G, params.alpha_beta_Gy))
            u_bed = (1.0 + 2.0 * G * mean_Gy / params.alpha_beta_Gy) * u_mean
            bed_values, weights = mask.values_and_weights(bed_map)
            dose_values, _ = mask.values_and_weights(absorbed)
            structures.append(StructureResult(
                st.name, st.label, st.volume_mL, st.mass_g, mean_Gy, u_mean, bed, u_bed,
                float(eqd2_Gy(bed, params.alpha_beta_Gy)), float(eqd2_Gy(u_bed, params.alpha_beta_Gy)), G,
                st.mean, st.D2, st.D50, st.D98, float(np.dot(bed_values, weights) / weights.sum()),
                geud_Gy(dose_values, weights, params.geud_a), eubed_Gy(bed_values, weights, params.alpha_per_Gy),
                act_fit.integral, rate_fit, act_fit, params, budget, rc, snotes))
            notes += snotes
        seconds["structures"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - start_all
    report_progress(progress, 1.0, "therapy study done")
    return TherapyResult(dose_image, bed_image, eqd2_image, registered, structures, options.reference_index, options,
                         reference.ct_HU, labels, names, fit_map, kin.models, t_eff_image, seconds, notes)
