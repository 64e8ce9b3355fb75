"""Synthetic therapy studies (phantoms with known kinetics) for tests, benchmarks and demonstrations.

* :func:`sphere_study`: a uniform hot sphere in a water cylinder with asymmetric bone inserts (so that a rigid
  registration is well posed), activity A₀ e^(−λ_eff t) at each time point; a time point can be moved by a
  known rigid transform.
* :func:`dotatate_study`: a Lu-177 DOTATATE-like torso: kidneys, liver, spleen, a liver lesion, spine (red
  marrow) in soft tissue; organ concentrations from the Ga-68 DOTATATE SUV table at the reference time and
  clearance with the Lu-177 DOTATATE effective half-lives (:mod:`DeepDoseLib.phantoms.tracers`, midpoints of
  the cited ranges), 4 time points with small rigid patient shifts between scans.

Images are LPS SimpleITK images; activity in Bq/mL at the scan time (not decay-corrected), CT in HU.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from .study import TimePoint


@dataclass
class SyntheticStudy:
    time_points: List[TimePoint]
    labels: sitk.Image
    label_names: Dict[int, str]
    #: label → true concentration curve parameters: (C0 [Bq/mL] at t = 0, effective decay constant [1/h])
    kinetics: Dict[int, Tuple[float, float]] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)


def _grid(size_xyz: Sequence[int], spacing_mm: float) -> sitk.Image:
    image = sitk.Image([int(s) for s in size_xyz], sitk.sitkFloat32)
    image.SetSpacing([float(spacing_mm)] * 3)
    image.SetOrigin([-(s - 1) * spacing_mm / 2.0 for s in size_xyz])
    return image


def _coordinates(grid: sitk.Image) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(z, y, x) arrays of LPS coordinates [mm] of the voxel centres (identity direction)."""
    size = grid.GetSize()
    sp = grid.GetSpacing()
    o = grid.GetOrigin()
    z, y, x = np.meshgrid(*(o[i] + sp[i] * np.arange(size[i]) for i in (2, 1, 0)), indexing="ij")
    return z, y, x


def _moved_coordinates(coords, motion: Optional[sitk.Transform]):
    """Voxel-centre coordinates mapped through motion⁻¹: sampling the phantom there images the moved patient
    directly (no interpolation of a reference image)."""
    if motion is None:
        return coords
    inverse = motion.GetInverse()
    z, y, x = coords
    points = np.stack([x.ravel(), y.ravel(), z.ravel()], 1)
    euler = sitk.Euler3DTransform(inverse)
    R = np.array(euler.GetMatrix()).reshape(3, 3)
    c = np.array(euler.GetCenter())
    t = np.array(euler.GetTranslation())
    mapped = (points - c) @ R.T + c + t
    return tuple(mapped[:, i].reshape(x.shape) for i in (2, 1, 0))


def _ellipsoid(coords, centre_xyz, radii_xyz) -> np.ndarray:
    z, y, x = coords
    return (((x - centre_xyz[0]) / radii_xyz[0]) ** 2 + ((y - centre_xyz[1]) / radii_xyz[1]) ** 2
            + ((z - centre_xyz[2]) / radii_xyz[2]) ** 2) <= 1.0


def _image(array: np.ndarray, grid: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.CopyInformation(grid)
    return image


def rigid_motion(translation_mm: Sequence[float], rotation_deg_z: float, centre_mm=(0.0, 0.0, 0.0)
                 ) -> sitk.Euler3DTransform:
    """The transform reference → moved-scan points of a patient moved by ``translation_mm`` and rotated by
    ``rotation_deg_z`` about the z axis through ``centre_mm``."""
    t = sitk.Euler3DTransform()
    t.SetCenter([float(c) for c in centre_mm])
    t.SetRotation(0.0, 0.0, math.radians(rotation_deg_z))
    t.SetTranslation([float(v) for v in translation_mm])
    return t


def move(image: sitk.Image, motion: sitk.Transform, default_value: float) -> sitk.Image:
    """The scan of a patient moved by ``motion`` (reference → moved points): I_moved(p) = I(motion⁻¹(p))."""
    return sitk.Resample(image, image, motion.GetInverse(), sitk.sitkLinear, float(default_value), image.GetPixelID())


def _phantom_ct(coords, body_radii_mm=(90.0, 70.0, 200.0)) -> np.ndarray:
    body = _ellipsoid(coords, (0, 0, 0), body_radii_mm)
    ct = np.where(body, 20.0, -1000.0).astype(np.float32)
    # asymmetric bone: a spine-like rod posterior, a rib-like bar on the left, a ball anterior-right
    z, y, x = coords
    ct[(np.hypot(x - 0.0, y - 45.0) < 12.0) & body] = 700.0
    ct[(np.abs(x + 60.0) < 6.0) & (np.abs(y - 10.0) < 20.0) & (np.abs(z) < 40.0) & body] = 900.0
    ct[_ellipsoid(coords, (45.0, -35.0, 25.0), (10.0, 10.0, 10.0))] = 800.0
    return ct


def sphere_study(times_h: Sequence[float] = (24.0, 72.0, 168.0), *, concentration0_Bq_per_mL: float = 1e6,
                 effective_half_life_h: float = 50.0, radius_mm: float = 24.0, spacing_mm: float = 4.0,
                 size_xyz: Sequence[int] = (56, 48, 40), core_margin_mm: float = 4.0, moved: Optional[Dict[int, sitk.Transform]] = None
                 ) -> SyntheticStudy:
    """Uniform sphere (its core is label 1 ``sphere_core``) with C(t) = C₀ e^(−λ_eff t) [Bq/mL] in a water cylinder with bones.

    ``moved``: time-point index → rigid motion (:func:`rigid_motion`) applied to that scan's CT and activity.
    """
    grid = _grid(size_xyz, spacing_mm)
    lam = math.log(2.0) / effective_half_life_h
    centre = (0.0, -10.0, 0.0)
    # the structure is the sphere's core (radius − core_margin_mm): its voxels lie wholly inside the sphere, so
    # its mean is free of partial-volume loss and the analytic dose applies to every voxel of it
    labels = _image(_ellipsoid(_coordinates(grid), centre, (radius_mm - core_margin_mm,) * 3).astype(np.uint8),
                    grid)
    points = []
    for i, t in enumerate(times_h):
        # this scan's own segmentation of the core (voxel centres), for the organ-mask Dice of the registration
        own = _ellipsoid(_moved_coordinates(_coordinates(grid), (moved or {}).get(i)), centre,
                         (radius_mm - core_margin_mm,) * 3)
        # each voxel is the mean of 2×2×2 sub-samples (partial volume, as a scanner images edges)
        sphere = np.zeros(labels.GetSize()[::-1])
        ct = np.zeros_like(sphere)
        for offset in itertools.product((-0.25 * spacing_mm, 0.25 * spacing_mm), repeat=3):
            coords = tuple(c + o for c, o in zip(_coordinates(grid), offset))
            coords = _moved_coordinates(coords, (moved or {}).get(i))
            sphere += _ellipsoid(coords, centre, (radius_mm,) * 3) / 8.0
            ct += _phantom_ct(coords, (90.0, 70.0, 200.0)) / 8.0
        ct = ct.astype(np.float32)
        activity = (sphere * concentration0_Bq_per_mL * math.exp(-lam * t)).astype(np.float32)
        points.append(TimePoint(_image(ct, grid), _image(activity, grid), float(t), f"scan {i + 1} ({t:g} h)",
                                labels=_image(own.astype(np.uint8), grid)))
    return SyntheticStudy(points, labels, {1: "sphere_core"}, {1: (concentration0_Bq_per_mL, lam)},
                          [f"uniform sphere r = {radius_mm:g} mm, T_eff = {effective_half_life_h:g} h"])


def dotatate_study(times_h: Sequence[float] = (4.0, 24.0, 96.0, 168.0), *, spacing_mm: float = 4.8,
                   size_xyz: Sequence[int] = (64, 48, 44), injected_MBq: float = 7400.0, body_mass_kg: float = 70.0,
                   shifts_mm: Optional[Sequence[Sequence[float]]] = None) -> SyntheticStudy:
    """A Lu-177 DOTATATE-like study of 4 SPECT/CT time points (see the module docstring).

    Organ concentration C(t) = SUV · A_inj / W · e^(−ln 2 (t − t_ref) / T_eff) with SUV and T_eff the midpoints
    of the tracer tables (``Lu177-DOTATATE``: pattern of the Ga-68 DOTATATE analogue at t_ref = 1 h).
    ``shifts_mm``: per time point patient shift [mm] (default: 0, (4, −3, 2), (−5, 2, −3), (3, 4, 0)).
    """
    from ..phantoms.tracers import effective_half_life_range, get_tracer

    tracer = get_tracer("Lu177-DOTATATE")
    grid = _grid(size_xyz, spacing_mm)
    organs = {  # label: (name, tracer compartment, centre xyz mm, radii mm, HU)
        1: ("liver", "liver", (-55.0, -5.0, 20.0), (55.0, 45.0, 45.0), 55.0),
        2: ("spleen", "spleen", (70.0, 20.0, 30.0), (25.0, 22.0, 35.0), 45.0),
        3: ("kidney_left", "kidney", (55.0, 40.0, -30.0), (18.0, 16.0, 35.0), 30.0),
        4: ("kidney_right", "kidney", (-50.0, 40.0, -35.0), (18.0, 16.0, 35.0), 30.0),
        5: ("lesion_liver", "tumour", (-60.0, -20.0, 25.0), (14.0, 14.0, 14.0), 60.0),
        6: ("red_marrow_spine", "bone", (0.0, 45.0, 0.0), (11.0, 11.0, 150.0), 250.0),
    }

    def anatomy(coords):
        ct = _phantom_ct(coords, (140.0, 100.0, 200.0))
        label_array = np.zeros(ct.shape, np.uint8)
        for label, (_, _, centre, radii, hu) in organs.items():
            inside = _ellipsoid(coords, centre, radii)
            label_array[inside] = label
            ct[inside] = hu
        label_array[ct <= -500] = 255  # outside the body: no activity
        return ct, label_array

    conc_per_suv = injected_MBq * 1e6 / (body_mass_kg * 1e3)  # Bq/mL per SUV unit (1 g/mL)
    kinetics: Dict[int, Tuple[float, float]] = {}
    lo, hi = effective_half_life_range(tracer, "soft_tissue")
    compartments = {0: (float(np.mean(tracer.suv["soft_tissue"])), 0.5 * (lo + hi))}
    for label, (_, comp, _, _, _) in organs.items():
        suv = np.mean(tracer.tumour_suv["liver"]) if comp == "tumour" else np.mean(tracer.suv[comp])
        lo, hi = effective_half_life_range(tracer, "tumour" if comp == "tumour" else comp)
        compartments[label] = (float(suv), 0.5 * (lo + hi))
    for label, (suv, t_eff) in compartments.items():
        lam = math.log(2.0) / t_eff
        kinetics[label] = (suv * conc_per_suv * math.exp(lam * tracer.reference_time_h), lam)
    shifts = shifts_mm or [(0, 0, 0), (4.0, -3.0, 2.0), (-5.0, 2.0, -3.0), (3.0, 4.0, 0.0)]
    points = []
    labels = anatomy(_coordinates(grid))[1]
    labels[labels == 255] = 0
    for i, t in enumerate(times_h):
        shift = shifts[i % len(shifts)]
        motion = rigid_motion(shift, 0.0) if any(shift) else None
        own_labels = anatomy(_moved_coordinates(_coordinates(grid), motion))[1]  # this scan's segmentation
        own_labels[own_labels == 255] = 0
        ct = np.zeros(labels.shape)
        activity = np.zeros(labels.shape)
        # each voxel is the mean of 2×2×2 sub-samples of the moved patient (partial volume, no interpolation)
        for offset in itertools.product((-0.25 * spacing_mm, 0.25 * spacing_mm), repeat=3):
            coords = _moved_coordinates(tuple(c + o for c, o in zip(_coordinates(grid), offset)), motion)
            ct_sub, lab_sub = anatomy(coords)
            ct += ct_sub / 8.0
            for label, (c0, lam) in kinetics.items():
                activity += np.where(lab_sub == label, c0 * math.exp(-lam * t) / 8.0, 0.0)
        points.append(TimePoint(_image(ct.astype(np.float32), grid), _image(activity.astype(np.float32), grid),
                                float(t), f"SPECT/CT {i + 1} ({t:g} h)", labels=_image(own_labels, grid)))
    names = {label: spec[0] for label, spec in organs.items()}
    return SyntheticStudy(points, _image(labels, grid), names, kinetics,
                          [f"Lu-177 DOTATATE-like phantom, {injected_MBq:g} MBq, {body_mass_kg:g} kg; SUV and T_eff "
                           f"midpoints of {tracer.name} ({', '.join(tracer.sources.values())})"])
