"""Real anatomies from the reference data beside the checkout (``../shared/data``), never copied here.

* **ICRP-110 adult female** (``icrp110_af/``): organ IDs → DeepDose labels; CT numbers from the ICRP
  media densities through the inverse of the project's HU → density calibration (bone media on the
  bone segment, everything else on the soft-tissue segment), area-weighted to the target grid
  (partial volume) plus scanner noise; cropped to the torso (bladder − 60 mm to the salivary glands
  + 20 mm). Body weight 60 kg (ICRP 89 reference female).
* **TotalSegmentator example** (``totalsegmentator_example/``): a real abdominal CT (HU) with
  TotalSegmentator v2 labels; unlabelled body voxels are classified by HU (gas, fat, soft tissue,
  bone). Kidneys come without a cortex/medulla split (the whole kidney gets the ``cortex`` label).

Both are for training/evaluation only; loaders raise :class:`DeepDoseInputError` when the files are
absent (tests skip through the ``shared_data`` fixture).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import numpy as np
import SimpleITK as sitk

from ..errors import DeepDoseInputError
from ..tissue import default_density_calibration
from .anatomy import Anatomy, label_info_for
from .ct_synthesis import NOISE_REF_VOXEL_mm3
from .labels import LABEL_VALUES as L
from .smooth import gaussian_blur, smooth_noise

PathLike = Union[str, Path]
DEFAULT_SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
ICRP_AF_WEIGHT_kg = 60.0

_ICRP_RANGES = [  # (first id, last id, DeepDose label)
    (1, 8, "soft_tissue"), (9, 12, "great_vessels"), (13, 23, "limb_bones"), (24, 25, "shoulder_girdle"),
    (26, 27, "skull"), (28, 38, "limb_bones"), (39, 40, "mandible"), (41, 42, "pelvis"), (43, 44, "ribs_and_sternum"),
    (45, 46, "shoulder_girdle"), (47, 52, "spine"), (53, 54, "pelvis"), (55, 56, "ribs_and_sternum"),
    (57, 60, "soft_tissue"), (61, 61, "brain"), (62, 62, "fat"), (63, 63, "soft_tissue"), (64, 64, "fat"),
    (65, 71, "soft_tissue"), (72, 73, "stomach"), (74, 86, "bowel"), (87, 88, "heart"),
    (89, 89, "kidney_left_cortex"), (90, 91, "kidney_left_medulla"), (92, 92, "kidney_right_cortex"),
    (93, 94, "kidney_right_medulla"), (95, 95, "liver"), (96, 97, "lung_left"), (98, 99, "lung_right"),
    (100, 105, "soft_tissue"), (106, 109, "muscle"), (110, 112, "soft_tissue"), (113, 113, "pancreas"),
    (114, 115, "soft_tissue"), (116, 119, "fat"), (120, 120, "parotid_left"), (121, 121, "parotid_right"),
    (122, 125, "soft_tissue"), (126, 126, "spinal_cord"), (127, 127, "spleen"), (128, 128, "mandible"),
    (129, 131, "soft_tissue"), (132, 132, "thyroid"), (133, 133, "muscle"), (134, 136, "soft_tissue"),
    (137, 138, "urinary_bladder"), (139, 139, "soft_tissue"), (140, 140, "airways"), (141, 141, "soft_tissue")]

_TOTALSEG_NAMES = {
    "spleen": "spleen", "kidney_right": "kidney_right_cortex", "kidney_left": "kidney_left_cortex",
    "kidney_cyst_left": "kidney_left_cortex", "kidney_cyst_right": "kidney_right_cortex", "liver": "liver",
    "stomach": "stomach", "pancreas": "pancreas", "esophagus": "soft_tissue", "trachea": "airways",
    "thyroid_gland": "thyroid", "small_bowel": "bowel", "duodenum": "bowel", "colon": "bowel",
    "urinary_bladder": "urinary_bladder", "sacrum": "pelvis", "heart": "heart", "spinal_cord": "spinal_cord",
    "brain": "brain", "skull": "skull", "sternum": "ribs_and_sternum", "costal_cartilages": "ribs_and_sternum"}
_TOTALSEG_PREFIXES = [("lung_", None), ("vertebrae_", "spine"), ("rib_", "ribs_and_sternum"),
                      ("humerus", "limb_bones"), ("femur", "limb_bones"), ("scapula", "shoulder_girdle"),
                      ("clavicula", "shoulder_girdle"), ("hip_", "pelvis"), ("gluteus", "muscle"),
                      ("autochthon", "muscle"), ("iliopsoas", "muscle"), ("adrenal", "soft_tissue"),
                      ("gallbladder", "soft_tissue"), ("prostate", "soft_tissue")]


def _shared(shared_dir: Optional[PathLike], sub: str) -> Path:
    """``shared_dir`` / ``$DEEPDOSE_SHARED_DATA`` / ``../shared/data`` beside the checkout, in that order."""
    folder = Path(shared_dir or os.environ.get("DEEPDOSE_SHARED_DATA") or DEFAULT_SHARED_DATA)
    path = folder / sub
    if not path.is_dir():
        raise DeepDoseInputError(f"Reference data {path} is absent (it lies in ../shared/data on dev machines and CI).")
    return path


def density_to_hu(density_g_per_cm3: np.ndarray, bone: np.ndarray) -> np.ndarray:
    """Inverse of the shipped HU → density calibration: soft-tissue segment (−1000 … 100 HU) or, where
    ``bone``, the bone segment (≥ 101 HU)."""
    cal = default_density_calibration()
    soft = cal.hu <= 100
    hu_soft = np.interp(density_g_per_cm3, cal.density_g_per_cm3[soft], cal.hu[soft])
    hu_bone = np.interp(density_g_per_cm3, cal.density_g_per_cm3[~soft], cal.hu[~soft])
    return np.where(bone, hu_bone, hu_soft).astype(np.float32)


def _resample(image: sitk.Image, spacing_mm: float, interpolator, area_weighted: bool,
              reference: Optional[sitk.Image] = None) -> sitk.Image:
    """Resample onto an isotropic grid over the same extent (same corner, same direction)."""
    if reference is None:
        old = np.array(image.GetSpacing())
        size = [max(1, int(round(n * s / spacing_mm))) for n, s in zip(image.GetSize(), old)]
        reference = sitk.Image(size, sitk.sitkFloat32)
        reference.SetSpacing([spacing_mm] * 3)
        reference.SetDirection(image.GetDirection())
        corner = np.array(image.TransformContinuousIndexToPhysicalPoint([-0.5, -0.5, -0.5]))
        direction = np.array(image.GetDirection()).reshape(3, 3)
        reference.SetOrigin([float(v) for v in corner + direction @ np.full(3, spacing_mm / 2)])
    if area_weighted:
        old = np.array(image.GetSpacing())
        sigma = np.sqrt(np.clip(spacing_mm ** 2 - old ** 2, 0, None) / 12.0) / old
        blurred = sitk.GetImageFromArray(gaussian_blur(sitk.GetArrayFromImage(image), sigma))
        blurred.CopyInformation(image)
        image = blurred
    return sitk.Resample(image, reference, sitk.Transform(), interpolator, -1000.0 if area_weighted else 0.0)


def _add_noise(hu: np.ndarray, spacing_mm: float, rng: np.random.Generator, sd_ref_HU: float = 25.0) -> np.ndarray:
    sd = sd_ref_HU * np.sqrt(NOISE_REF_VOXEL_mm3 / spacing_mm ** 3)
    return np.clip(np.rint(hu + sd * smooth_noise(hu.shape, 0.5, rng)), -1024, 3071).astype(np.float32)


def _read_gate_media(folder: Path) -> Tuple[Dict[str, float], list]:
    densities = {}
    for line in (folder / "AF_GateMaterials.db").read_text().splitlines():
        if "d=" in line and ":" in line and not line.startswith("+"):
            name, rest = line.split(":", 1)
            value, unit = rest.split("d=")[1].split(";")[0].strip().split()
            densities[name.strip()] = float(value) * (1e-3 if unit.startswith("mg") else 1.0)
    ranges = []
    for line in (folder / "AF_LabelsToMaterials.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].isdigit():
            ranges.append((int(parts[0]), int(parts[1]), parts[2]))
    return densities, ranges


def load_icrp110_af(shared_dir: Optional[PathLike] = None, spacing_mm: float = 4.0, seed: int = 0) -> Anatomy:
    """The ICRP-110 adult female torso on an isotropic ``spacing_mm`` grid (see the module docstring)."""
    folder = _shared(shared_dir, "icrp110_af")
    ids_image = sitk.ReadImage(str(folder / "AF_labels.mha"))
    ids = sitk.GetArrayFromImage(ids_image).astype(np.int32)
    spacing = np.array(ids_image.GetSpacing())
    densities, ranges = _read_gate_media(folder)
    id_lut = np.zeros(max(256, int(ids.max()) + 1), dtype=np.uint8)
    for lo, hi, name in _ICRP_RANGES:
        id_lut[lo:hi + 1] = L[name]
    rho_lut = np.full(id_lut.size, densities.get("Air_outside_body", 0.0012), dtype=np.float32)
    bone_lut = np.zeros(id_lut.size, dtype=bool)
    for lo, hi, medium in ranges:  # "lo hi medium" covers IDs lo … hi−1
        rho_lut[lo:hi] = densities[medium]
        bone_lut[lo:hi] = any(k in medium for k in ("spongiosa", "Mineral_bone", "Teeth"))
    # torso crop: bladder − 60 mm … salivary glands + 20 mm, body bounding box in x and y
    z_bladder = np.flatnonzero(np.isin(ids, [137, 138]).any(axis=(1, 2)))
    z_saliva = np.flatnonzero(np.isin(ids, [120, 121]).any(axis=(1, 2)))
    if z_bladder.size == 0 or z_saliva.size == 0:
        raise DeepDoseInputError(f"{folder}: bladder or salivary glands missing in AF_labels.mha.")
    k0 = max(0, int(z_bladder[0] - 60 / spacing[2]))
    k1 = min(ids.shape[0], int(z_saliva[-1] + 20 / spacing[2]) + 1)
    body = ids[k0:k1] > 0
    js, is_ = np.flatnonzero(body.any(axis=(0, 2))), np.flatnonzero(body.any(axis=(0, 1)))
    j0, j1 = max(0, js[0] - 4), min(ids.shape[1], js[-1] + 5)
    i0, i1 = max(0, is_[0] - 4), min(ids.shape[2], is_[-1] + 5)
    crop = ids[k0:k1, j0:j1, i0:i1]
    origin = np.array(ids_image.TransformIndexToPhysicalPoint([int(i0), int(j0), int(k0)]))

    def as_image(a: np.ndarray) -> sitk.Image:
        im = sitk.GetImageFromArray(a)
        im.SetSpacing(spacing.tolist())
        im.SetOrigin(origin.tolist())
        return im

    hu_native = density_to_hu(rho_lut[crop], bone_lut[crop])
    hu_img = _resample(as_image(hu_native), float(spacing_mm), sitk.sitkLinear, True)
    lab_img = _resample(as_image(id_lut[crop]), float(spacing_mm), sitk.sitkNearestNeighbor, False, hu_img)
    labels = sitk.GetArrayFromImage(lab_img).astype(np.uint8)
    hu = _add_noise(sitk.GetArrayFromImage(hu_img), float(spacing_mm), np.random.default_rng([int(seed), 7]))
    return _anatomy(labels, hu, lab_img, "icrp110_af", {"weight_kg": ICRP_AF_WEIGHT_kg, "crop_slices": [k0, k1]})


def _anatomy(labels: np.ndarray, hu: np.ndarray, grid: sitk.Image, source: str, parameters: dict) -> Anatomy:
    info = label_info_for(np.unique(labels), [])
    return Anatomy(labels, tuple(grid.GetSpacing()), tuple(grid.GetOrigin()), {v: i.name for v, i in info.items()},
                   info, [], source=source, family=source, direction=tuple(grid.GetDirection()), hu=hu,
                   parameters=parameters)


def _totalseg_label(name: str) -> Optional[int]:
    if name in _TOTALSEG_NAMES:
        return L[_TOTALSEG_NAMES[name]]
    for prefix, target in _TOTALSEG_PREFIXES:
        if name.startswith(prefix):
            if prefix == "lung_":
                return L["lung_left"] if "left" in name else L["lung_right"]
            return L[target]
    if any(k in name for k in ("aorta", "vein", "vena", "artery", "trunk", "atrial")):
        return L["great_vessels"]
    return None


def load_totalsegmentator_example(shared_dir: Optional[PathLike] = None, spacing_mm: float = 4.0) -> Anatomy:
    """The TotalSegmentator example CT slab with organ labels on an isotropic ``spacing_mm`` grid."""
    folder = _shared(shared_dir, "totalsegmentator_example")
    ct = sitk.ReadImage(str(folder / "example_ct_sm.nii.gz"), sitk.sitkFloat32)
    seg = sitk.ReadImage(str(folder / "example_seg.nii.gz"))
    names = {int(k): v for k, v in json.loads((folder / "total_v2_label_names.json").read_text()).items()}
    lut = np.zeros(256, dtype=np.uint8)
    for value, name in names.items():
        target = _totalseg_label(name)
        lut[value] = target if target is not None else 0
    hu_img = _resample(ct, float(spacing_mm), sitk.sitkLinear, True)
    seg_img = _resample(seg, float(spacing_mm), sitk.sitkNearestNeighbor, False, hu_img)
    hu = sitk.GetArrayFromImage(hu_img).astype(np.float32)
    labels = lut[sitk.GetArrayFromImage(seg_img)]
    body = sitk.GetArrayFromImage(sitk.BinaryFillhole(sitk.GetImageFromArray((hu > -400).astype(np.uint8)))) > 0
    body |= labels > 0
    free = body & (labels == 0)
    labels[free & (hu < -400)] = L["gastrointestinal_gas"]
    labels[free & (hu >= -400) & (hu < -30)] = L["fat"]
    labels[free & (hu >= -30) & (hu < 150)] = L["soft_tissue"]
    labels[free & (hu >= 150)] = L["other_bone"]
    return _anatomy(labels, np.rint(hu).astype(np.float32), hu_img, "totalsegmentator", {"weight_kg": 75.0})
