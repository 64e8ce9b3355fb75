"""Registration of each time point's CT to the reference CT (SimpleITK's registration framework), and the maps
carried into the reference frame with the same transform.

Rigid: ``Euler3DTransform`` initialised on the geometric centres, Mattes mutual information (50 bins, random
sampling of a fixed fraction of voxels, seeded), regular-step gradient descent with physical-shift scaling,
three resolution levels (shrink 4, 2, 1; smoothing 2, 1, 0 voxels). Optional deformable refinement: a cubic
B-spline (``BSplineTransformInitializer``, mesh of one node per ``bspline_spacing_mm``) on the same metric,
L-BFGS-B, composed after the rigid transform.

Why SimpleITK and not itk-elastix: SimpleITK is already a dependency of DeepDose and ships with 3D Slicer
(Slicer's own Python and the General Registration (BRAINS) module rest on the same ITK framework), so the
therapy workflow adds no package; itk-elastix would add the full ITK Python wheels (hundreds of MB) to every
install and to Slicer's Python, for the same transform families (Euler, B-spline) and metric (Mattes MI).
For SPECT/CT follow-up scans of one patient on one couch, rigid + a coarse B-spline is what the EANM/OpenDose
workflows use; the quality figures below tell when it is not enough.

Quality per time point (:class:`RegistrationQuality`): Dice of the body (HU > −300) and bone (HU > 200)
masks of the reference CT and the registered CT, before and after, and — when label maps of both time
points are given — the Dice of every label. SimpleITK's transform maps *reference* (fixed) points to *moving*
points, so ``Resample(moving, reference_grid, transform)`` brings a moving image into the reference frame.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np
import SimpleITK as sitk

from ..errors import DeepDoseInputError
from ..geometry import physical_extent_mm

BODY_HU = -300.0
BONE_HU = 200.0


@dataclass
class RegistrationSettings:
    """Settings of the CT-to-CT registration (defaults suit SPECT/CT and PET/CT at 2–5 mm voxels).

    Attributes:
        deformable: add a B-spline stage after the rigid one.
        sampling_fraction: fraction of the reference voxels sampled by the metric at each level.
        seed: seed of that sampling (results are reproducible).
        bspline_spacing_mm: B-spline control-point spacing [mm].
        iterations: maximum iterations per level (rigid) / in total (B-spline).
    """

    deformable: bool = False
    sampling_fraction: float = 0.1
    seed: int = 0
    bspline_spacing_mm: float = 60.0
    iterations: int = 200
    bspline_iterations: int = 30
    histogram_bins: int = 50


@dataclass
class RegistrationQuality:
    """How well one time point's CT matches the reference CT (Dice in [0, 1])."""

    time_point: str
    body_dice_before: float
    body_dice_after: float
    bone_dice_before: float
    bone_dice_after: float
    metric_value: float
    translation_mm: tuple
    rotation_deg: tuple
    label_dice_after: Dict[str, float] = field(default_factory=dict)
    label_dice_before: Dict[str, float] = field(default_factory=dict)
    deformable: bool = False
    seconds: float = 0.0


@dataclass
class Registration:
    """A transform from the reference frame to one time point (SimpleITK convention) and its quality."""

    transform: sitk.Transform
    quality: RegistrationQuality
    notes: List[str] = field(default_factory=list)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient 2|A∩B|/(|A|+|B|) of two boolean arrays (NaN when both are empty)."""
    total = int(a.sum()) + int(b.sum())
    return float("nan") if total == 0 else 2.0 * float(np.logical_and(a, b).sum()) / total


def _ct_dice(reference: np.ndarray, moved: np.ndarray, threshold: float) -> float:
    return dice(reference > threshold, moved > threshold)


def resample_into_reference(image: sitk.Image, reference_grid: sitk.Image, transform: sitk.Transform, *,
                            default_value: float = 0.0, interpolator: int = sitk.sitkLinear) -> sitk.Image:
    """``image`` (a moving time point's map) on ``reference_grid`` through ``transform`` (reference → moving)."""
    return sitk.Resample(image, reference_grid, transform, interpolator, float(default_value), image.GetPixelID())


def _check_overlap(fixed: sitk.Image, moving: sitk.Image, name: str) -> None:
    lo_f, hi_f = physical_extent_mm(fixed)
    lo_m, hi_m = physical_extent_mm(moving)
    if np.any(hi_f < lo_m) or np.any(hi_m < lo_f):
        raise DeepDoseInputError(f"The CT of {name} does not overlap the reference CT (extents {lo_m.round(1)}.."
                                 f"{hi_m.round(1)} vs {lo_f.round(1)}..{hi_f.round(1)} mm, LPS): are they of one "
                                 "patient and one frame of reference?")


def _rigid(fixed: sitk.Image, moving: sitk.Image, settings: RegistrationSettings) -> sitk.Transform:
    initial = sitk.CenteredTransformInitializer(fixed, moving, sitk.Euler3DTransform(),
                                                sitk.CenteredTransformInitializerFilter.GEOMETRY)
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=settings.histogram_bins)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(settings.sampling_fraction, settings.seed)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(learningRate=2.0, minStep=1e-4,
                                                 numberOfIterations=settings.iterations,
                                                 relaxationFactor=0.5, gradientMagnitudeTolerance=1e-8)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([4, 2, 1])
    reg.SetSmoothingSigmasPerLevel([2, 1, 0])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    reg.SetInitialTransform(initial, inPlace=False)
    transform = reg.Execute(fixed, moving)
    return transform, reg.GetMetricValue()


def _bspline(fixed: sitk.Image, moving: sitk.Image, rigid: sitk.Transform, settings: RegistrationSettings):
    extent = np.array(fixed.GetSize()) * np.array(fixed.GetSpacing())
    mesh = [max(1, int(round(e / settings.bspline_spacing_mm))) for e in extent]
    bspline = sitk.BSplineTransformInitializer(fixed, mesh, order=3)
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=settings.histogram_bins)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(settings.sampling_fraction, settings.seed)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=settings.bspline_iterations)
    reg.SetShrinkFactorsPerLevel([4, 2])  # local refinement on coarse levels: the rigid stage did the rest
    reg.SetSmoothingSigmasPerLevel([2, 1])
    reg.SetMovingInitialTransform(rigid)
    reg.SetInitialTransform(bspline, inPlace=True)
    reg.Execute(fixed, moving)
    composite = sitk.CompositeTransform(3)
    composite.AddTransform(rigid)
    composite.AddTransform(bspline)
    return composite, reg.GetMetricValue()


def _euler_parameters(transform: sitk.Transform):
    """(translation mm, rotation deg) of the rigid part (first Euler3D found)."""
    t = transform
    while t.GetName() == "CompositeTransform":  # the rigid stage is the first transform of (nested) composites
        t = sitk.CompositeTransform(t).GetNthTransform(0)
    try:
        euler = sitk.Euler3DTransform(t)
    except RuntimeError:
        return (float("nan"),) * 3, (float("nan"),) * 3
    return (tuple(round(v, 2) for v in euler.GetTranslation()),
            tuple(round(math.degrees(v), 2) for v in (euler.GetAngleX(), euler.GetAngleY(), euler.GetAngleZ())))


def register_ct(reference_ct: sitk.Image, moving_ct: sitk.Image, name: str = "time point",
                settings: Optional[RegistrationSettings] = None, *,
                reference_labels: Optional[sitk.Image] = None, moving_labels: Optional[sitk.Image] = None,
                label_names: Optional[Dict[int, str]] = None,
                progress: Optional[Callable[[float, str], None]] = None) -> Registration:
    """Register ``moving_ct`` [HU] to ``reference_ct`` [HU]: rigid, then (settings.deformable) B-spline.

    Returns the reference → moving transform and the quality figures (Dice before and after).
    """
    import time

    settings = settings or RegistrationSettings()
    _check_overlap(reference_ct, moving_ct, name)
    start = time.perf_counter()
    fixed = sitk.Cast(reference_ct, sitk.sitkFloat32)
    moving = sitk.Cast(moving_ct, sitk.sitkFloat32)
    if progress is not None:
        progress(0.0, f"rigid registration of {name}")
    transform, metric = _rigid(fixed, moving, settings)
    notes = [f"{name}: rigid registration (Euler3D, Mattes MI, 3 levels) to the reference CT"]
    if settings.deformable:
        if progress is not None:
            progress(0.5, f"B-spline registration of {name}")
        transform, metric = _bspline(fixed, moving, transform, settings)
        notes.append(f"{name}: B-spline refinement (control points every {settings.bspline_spacing_mm:g} mm)")
    ref = sitk.GetArrayFromImage(fixed)  # copies: a view of a temporary image would dangle
    before = sitk.GetArrayFromImage(resample_into_reference(moving, fixed, sitk.Transform(), default_value=-1000.0))
    after = sitk.GetArrayFromImage(resample_into_reference(moving, fixed, transform, default_value=-1000.0))
    label_dice: Dict[str, float] = {}
    label_before: Dict[str, float] = {}
    if reference_labels is not None and moving_labels is not None:
        ref_l = sitk.GetArrayFromImage(sitk.Resample(reference_labels, fixed, sitk.Transform(),
                                                         sitk.sitkNearestNeighbor, 0))
        mov_l = sitk.GetArrayFromImage(resample_into_reference(moving_labels, fixed, transform,
                                                                   interpolator=sitk.sitkNearestNeighbor))
        mov_0 = sitk.GetArrayFromImage(resample_into_reference(moving_labels, fixed, sitk.Transform(),
                                                                   interpolator=sitk.sitkNearestNeighbor))
        for value in sorted(int(v) for v in np.unique(ref_l) if v != 0):
            key = (label_names or {}).get(value, f"label {value}")
            label_dice[key] = dice(ref_l == value, mov_l == value)
            label_before[key] = dice(ref_l == value, mov_0 == value)
    translation, rotation = _euler_parameters(transform)
    quality = RegistrationQuality(name, _ct_dice(ref, before, BODY_HU), _ct_dice(ref, after, BODY_HU),
                                  _ct_dice(ref, before, BONE_HU), _ct_dice(ref, after, BONE_HU), float(metric),
                                  translation, rotation, label_dice, label_before, settings.deformable,
                                  time.perf_counter() - start)
    if quality.body_dice_after < 0.9:
        notes.append(f"WARNING: {name}: body-mask Dice after registration only {quality.body_dice_after:.3f}; "
                     "check the registration before trusting the absorbed dose")
    return Registration(transform, quality, notes)
