"""The embedded default case: a small synthetic torso PET/CT made deterministically by this code.

An analytic torso (body with a fat layer, lungs, heart, liver, spleen, kidneys, bladder, spine and
three tumours) in LPS space, 4 mm voxels by default. CT in HU with noise; the true activity follows
Ga-68 PSMA-11-like uptake (SUV per organ) for 150 MBq injected into 70 kg, imaged 60 min after
injection (decay-corrected to the scan start); the PET is that activity blurred to 6 mm FWHM with
signal-proportional noise, as a scanner would show it. It is a smoke-test case, not a clinical
phantom (that is the phantom generator's job).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Tuple, Union

import numpy as np
import SimpleITK as sitk

#: (name, centre LPS mm, semi-axes mm, HU, SUV) — drawn in this order, later ones overwrite.
_ORGANS = [
    ("body", (0, 0, 0), (170, 110, 150), 40.0, 0.6),
    ("lung_right", (-75, 0, 70), (55, 70, 85), -820.0, 0.4),
    ("lung_left", (75, 0, 70), (50, 70, 85), -820.0, 0.4),
    ("heart", (20, -30, 45), (45, 40, 45), 40.0, 2.0),
    ("liver", (-60, -10, -15), (85, 70, 55), 55.0, 5.0),
    ("spleen", (90, 35, -10), (35, 30, 45), 45.0, 6.0),
    ("kidney_right", (-62, 60, -50), (25, 25, 45), 30.0, 20.0),
    ("kidney_left", (62, 60, -50), (25, 25, 45), 30.0, 20.0),
    ("bladder", (0, -40, -120), (40, 35, 25), 8.0, 30.0),
    ("spine", (0, 75, 0), (18, 18, 150), 650.0, 1.2),
    ("tumour_liver", (-70, -30, -20), (15, 15, 15), 50.0, 15.0),
    ("tumour_lung", (80, -20, 90), (10, 10, 10), 40.0, 12.0),
    ("tumour_bone", (0, 75, -30), (12, 12, 12), 400.0, 18.0),
]
FAT_LAYER_MM = 15.0
FAT_HU, FAT_SUV = -100.0, 0.3
INJECTED_MBq, WEIGHT_kg, UPTAKE_TIME_s, NUCLIDE = 150.0, 70.0, 3600.0, "Ga68"
PET_FWHM_mm = 6.0


@dataclass
class DemoCase:
    """The demo PET/CT: images in LPS, CT [HU], PET and true activity [Bq/mL], labels (uint8)."""

    ct: sitk.Image
    pet: sitk.Image
    true_activity: sitk.Image
    labels: sitk.Image
    label_names: Dict[int, str]
    nuclide: str = NUCLIDE


def _grid(spacing_mm: float) -> Tuple[sitk.Image, np.ndarray, np.ndarray, np.ndarray]:
    extent = np.array([360.0, 240.0, 320.0])  # x (R→L), y (A→P), z (I→S) in mm
    size = [int(round(e / spacing_mm)) for e in extent]
    ref = sitk.Image(size, sitk.sitkFloat32)
    ref.SetSpacing([spacing_mm] * 3)
    ref.SetOrigin([-(s - 1) * spacing_mm / 2 for s in size])
    z, y, x = np.meshgrid(*[ref.GetOrigin()[i] + spacing_mm * np.arange(size[i]) for i in (2, 1, 0)],
                          indexing="ij")
    return ref, x, y, z


def make_demo_case(seed: int = 20190403, spacing_mm: float = 4.0) -> DemoCase:
    """Build the demo case deterministically (same seed and spacing → identical arrays)."""
    from .nuclides import get_nuclide

    rng = np.random.default_rng(seed)
    ref, x, y, z = _grid(spacing_mm)
    hu = np.full(x.shape, -1000.0, dtype=np.float32)
    suv = np.zeros(x.shape, dtype=np.float32)
    labels = np.zeros(x.shape, dtype=np.uint8)
    names = {0: "background"}
    for index, (name, c, r, organ_hu, organ_suv) in enumerate(_ORGANS, start=1):
        if name == "body":  # elliptic cylinder along z
            inside = ((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 <= 1.0
            inside &= np.abs(z - c[2]) <= r[2]
            shrunk = ((x / (r[0] - FAT_LAYER_MM)) ** 2 + (y / (r[1] - FAT_LAYER_MM)) ** 2 <= 1.0)
            hu[inside], suv[inside], labels[inside] = FAT_HU, FAT_SUV, index
            inside &= shrunk
        else:
            inside = sum(((v - cc) / rr) ** 2 for v, cc, rr in zip((x, y, z), c, r)) <= 1.0
        hu[inside], suv[inside], labels[inside] = organ_hu, organ_suv, index
        names[index] = name
    # mild intra-organ heterogeneity (±10 %, smooth) and CT noise (σ 12 HU)
    texture = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(
        sitk.GetImageFromArray(rng.normal(0, 1, x.shape).astype(np.float32)), 2.0))
    suv *= np.clip(1.0 + 0.1 * texture / max(texture.std(), 1e-6), 0.5, 1.5).astype(np.float32)
    hu_noisy = np.where(labels > 0, hu + rng.normal(0, 12.0, x.shape), hu).astype(np.float32)

    nuclide = get_nuclide(NUCLIDE)
    activity_at_scan_Bq = INJECTED_MBq * 1e6 * 2.0 ** (-UPTAKE_TIME_s / nuclide.half_life_s)
    true_Bq_per_mL = (suv * activity_at_scan_Bq / (WEIGHT_kg * 1000.0)).astype(np.float32)

    def as_image(a: np.ndarray) -> sitk.Image:
        im = sitk.GetImageFromArray(a)
        im.CopyInformation(ref)
        return im

    true_img = as_image(true_Bq_per_mL)
    sigma_mm = PET_FWHM_mm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    blurred = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(true_img, sigma_mm))
    noisy = blurred * (1.0 + 0.08 * rng.normal(0, 1, x.shape))
    pet = np.clip(noisy, 0, None).astype(np.float32)
    return DemoCase(as_image(hu_noisy), as_image(pet), true_img, as_image(labels), names)


def write_demo_case(case: DemoCase, directory: Union[str, Path]) -> Dict[str, Path]:
    """Write the case as NIfTI files (+ labels.json); returns name → path."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"ct": out / "ct.nii.gz", "pet": out / "pet.nii.gz",
             "true_activity": out / "true_activity.nii.gz", "labels": out / "labels.nii.gz"}
    for key, path in paths.items():
        sitk.WriteImage(getattr(case, key), str(path), useCompression=True)
    paths["label_names"] = out / "labels.json"
    paths["label_names"].write_text(json.dumps({str(k): v for k, v in case.label_names.items()}, indent=1))
    return paths
