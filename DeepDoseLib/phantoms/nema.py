"""NEMA NU 2 / IEC 61675-1 body phantom ("NEMA IEC body phantom") as a standard test object.

Geometry (nominal, interior): cross-section of a half-circle of radius 147 mm (posterior half,
y ≥ 0) joined to a rounded rectangle: for |x| ≤ 70 mm up to y = −77 mm, beyond that quarter circles of
radius 77 mm centred at x = ±70 mm — 294 mm wide, 224 mm high, 180 mm long (≈ 9.7 L); 3 mm PMMA
wall. Six spheres of inner diameter 10, 13, 17, 22, 28 and 37 mm, centres on a circle of radius
57.2 mm in the transverse plane 70 mm from the lid (z = +20 mm here; the lid is at z = +90 mm), at
30° + 60° · i from the +x axis (i = 0 … 5 in increasing size); glass walls (≈ 1 mm) are not
modelled. Lung insert: a cylinder of 50 mm outer diameter along the axis, low-density polystyrene
(0.3 g/cm³, no activity). Activity: uniform background, spheres at ``sphere_to_background`` × the
background (4:1 by default; NU 2 also uses 8:1); the sphere activity is partial-volume exact
(4³ sub-samples per voxel). Coordinates: LPS mm, phantom centre at the origin, axis along z.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np
import SimpleITK as sitk

from ..errors import DeepDoseInputError
from .pet_simulation import ScannerModel, simulate_emission_image
from .smooth import gaussian_blur

SPHERE_DIAMETERS_mm = (10.0, 13.0, 17.0, 22.0, 28.0, 37.0)
SPHERE_RING_RADIUS_mm = 57.2
SPHERE_PLANE_Z_mm = 20.0
HALF_LENGTH_mm = 90.0
BACK_RADIUS_mm, CORNER_RADIUS_mm, CORNER_OFFSET_mm = 147.0, 77.0, 70.0
WALL_mm = 3.0
LUNG_INSERT_DIAMETER_mm = 50.0
#: CT numbers [HU] of the phantom materials: water, PMMA (1.19 g/cm³), polystyrene foam (0.3 g/cm³).
HU = {"background": 0.0, "phantom_wall": 120.0, "lung_insert": -700.0}
LABELS = {0: "air", 1: "background", 2: "phantom_wall", 3: "lung_insert"}
LABELS.update({10 + i: f"sphere_{int(d)}mm" for i, d in enumerate(SPHERE_DIAMETERS_mm)})


@dataclass
class NemaPhantom:
    """Images (LPS, (z, y, x) arrays behind SimpleITK images) and the sphere table.

    ``spheres``: label → {"diameter_mm", "centre_mm", "volume_mL"}; ``pet`` is present when a scanner
    model was given.
    """

    ct: sitk.Image
    true_activity: sitk.Image
    labels: sitk.Image
    label_names: Dict[int, str]
    spheres: Dict[int, dict]
    background_Bq_per_mL: float
    sphere_to_background: float
    pet: Optional[sitk.Image] = None
    metadata: dict = field(default_factory=dict)


def sphere_centres_mm() -> Dict[float, Tuple[float, float, float]]:
    """Sphere diameter [mm] → LPS centre [mm]."""
    out = {}
    for i, d in enumerate(SPHERE_DIAMETERS_mm):
        angle = np.radians(30.0 + 60.0 * i)
        out[d] = (SPHERE_RING_RADIUS_mm * float(np.cos(angle)), SPHERE_RING_RADIUS_mm * float(np.sin(angle)),
                  SPHERE_PLANE_Z_mm)
    return out


def inside_body(x: np.ndarray, y: np.ndarray, grow_mm: float = 0.0) -> np.ndarray:
    """Inside the phantom's interior cross-section (grown by ``grow_mm`` for the outer wall surface)."""
    back = (y >= 0) & (x ** 2 + y ** 2 <= (BACK_RADIUS_mm + grow_mm) ** 2)
    front_mid = (y < 0) & (np.abs(x) <= CORNER_OFFSET_mm) & (y >= -(CORNER_RADIUS_mm + grow_mm))
    front_side = (y < 0) & (np.abs(x) > CORNER_OFFSET_mm) & \
        ((np.abs(x) - CORNER_OFFSET_mm) ** 2 + y ** 2 <= (CORNER_RADIUS_mm + grow_mm) ** 2)
    return back | front_mid | front_side


def interior_volume_mL() -> float:
    """Analytic interior volume [mL] (lung insert included)."""
    area = np.pi * BACK_RADIUS_mm ** 2 / 2 + 2 * CORNER_OFFSET_mm * CORNER_RADIUS_mm + np.pi * CORNER_RADIUS_mm ** 2 / 2
    return float(area * 2 * HALF_LENGTH_mm * 1e-3)


def make_nema_phantom(spacing_mm: float = 2.0, sphere_to_background: float = 4.0,
                      background_Bq_per_mL: float = 5300.0, scanner: Optional[ScannerModel] = None,
                      rng: Optional[np.random.Generator] = None) -> NemaPhantom:
    """Build the phantom on an isotropic grid; optionally the scanner image (``scanner``, ``rng``).

    Args:
        spacing_mm: voxel size [mm] (0.5–8).
        sphere_to_background: activity concentration ratio of the spheres to the background (> 0).
        background_Bq_per_mL: background concentration (NU 2: 5.3 kBq/mL at the start of imaging).
    """
    if not 0.5 <= spacing_mm <= 8.0:
        raise DeepDoseInputError(f"NEMA phantom voxel size must be 0.5–8 mm (got {spacing_mm}).")
    if sphere_to_background <= 0 or background_Bq_per_mL < 0:
        raise DeepDoseInputError("Sphere:background ratio must be > 0 and the background activity ≥ 0 Bq/mL.")
    h = float(spacing_mm)
    half = np.array([BACK_RADIUS_mm + 15, BACK_RADIUS_mm + 15, HALF_LENGTH_mm + 15])
    n = np.ceil(2 * half / h).astype(int)
    origin = -(n - 1) * h / 2.0
    x, y, z = (origin[i] + h * np.arange(n[i]) for i in range(3))
    X, Y = np.meshgrid(x, y, indexing="xy")  # (ny, nx)
    body = inside_body(X, Y)
    wall = inside_body(X, Y, WALL_mm) & ~body
    lung = X ** 2 + Y ** 2 <= (LUNG_INSERT_DIAMETER_mm / 2) ** 2
    in_z = np.abs(z) <= HALF_LENGTH_mm
    in_wall_z = np.abs(z) <= HALF_LENGTH_mm + WALL_mm
    plane = np.zeros(body.shape, dtype=np.uint8)
    plane[wall], plane[body], plane[body & lung] = 2, 1, 3
    labels = np.zeros((n[2], n[1], n[0]), dtype=np.uint8)
    labels[in_wall_z & ~in_z] = np.where(body | wall, 2, 0).astype(np.uint8)  # end walls (lid and bottom)
    labels[in_z] = plane

    activity = np.where(labels == 1, background_Bq_per_mL, 0.0).astype(np.float32)
    spheres: Dict[int, dict] = {}
    sub = (np.arange(4) + 0.5) / 4 - 0.5  # sub-sample offsets in voxel units
    for i, (d, c) in enumerate(sphere_centres_mm().items()):
        r = d / 2
        lo = [int(np.floor((c[k] - r - origin[k]) / h)) - 1 for k in range(3)]
        hi = [int(np.ceil((c[k] + r - origin[k]) / h)) + 2 for k in range(3)]
        ax = [origin[k] + h * (np.arange(lo[k], hi[k])[:, None] + sub[None, :]).ravel() for k in range(3)]
        sz, sy, sx = np.meshgrid(ax[2] - c[2], ax[1] - c[1], ax[0] - c[0], indexing="ij", sparse=True)
        fine = (sx ** 2 + sy ** 2 + sz ** 2 <= r * r).astype(np.float32)
        shape = tuple(hi[k] - lo[k] for k in (2, 1, 0))
        frac = fine.reshape(shape[0], 4, shape[1], 4, shape[2], 4).mean(axis=(1, 3, 5))
        sl = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
        activity[sl] = activity[sl] * (1 - frac) + frac * background_Bq_per_mL * sphere_to_background
        labels[sl][frac >= 0.5] = 10 + i
        spheres[10 + i] = {"diameter_mm": d, "centre_mm": [round(v, 3) for v in c],
                           "volume_mL": round(float(np.pi * d ** 3 / 6 * 1e-3), 4)}

    hu_lut = np.full(256, -1000.0, dtype=np.float32)
    hu_lut[1], hu_lut[2], hu_lut[3] = HU["background"], HU["phantom_wall"], HU["lung_insert"]
    hu_lut[10:16] = HU["background"]
    hu = gaussian_blur(hu_lut[labels], 0.4)  # partial volume / CT blur at the material edges

    def image(a: np.ndarray) -> sitk.Image:
        im = sitk.GetImageFromArray(np.ascontiguousarray(a))
        im.SetSpacing([h] * 3)
        im.SetOrigin([float(o) for o in origin])
        return im

    pet = None
    if scanner is not None:
        from ..tissue import hu_to_density

        pet_array = simulate_emission_image(activity, (h, h, h), scanner, rng or np.random.default_rng(0),
                                            hu_to_density(hu))
        pet = image(pet_array)
    meta = {"phantom": "NEMA NU 2 / IEC 61675-1 body phantom", "spacing_mm": h,
            "sphere_to_background": sphere_to_background, "background_Bq_per_mL": background_Bq_per_mL,
            "interior_volume_mL": round(interior_volume_mL(), 2), "scanner": scanner.as_dict() if scanner else None}
    return NemaPhantom(image(hu), image(activity), image(labels), dict(LABELS), spheres, background_Bq_per_mL,
                       sphere_to_background, pet, meta)
