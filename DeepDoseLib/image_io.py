"""Image I/O with explicit units: CT in HU, PET/SPECT in Bq/mL.

Files: NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr), MetaImage (.mha, .mhd); a directory is read as a
DICOM series. SimpleITK images are in LPS physical space (origin and spacing in mm); numpy arrays
taken from them are ordered (z, y, x).

Non-DICOM PET files carry no unit, so the unit is an explicit argument (``pet_unit``, default
``"Bq/mL"``) and stated in :attr:`LoadedImage.notes`; DICOM PET is converted from its tags
(:mod:`DeepDoseLib.dicom_pet`). Files are only ever opened for reading.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np
import SimpleITK as sitk

from .dicom_folder import dicom_series_files
from .errors import DeepDoseError, DeepDoseInputError
from .output_paths import atomic_write
from .image_file_checks import check_image_file, check_volume_size

PathLike = Union[str, "os.PathLike[str]"]
IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
#: Factors from accepted activity-concentration units to Bq/mL.
PET_UNIT_TO_BQ_PER_ML: Dict[str, float] = {"Bq/mL": 1.0, "kBq/mL": 1.0e3, "MBq/mL": 1.0e6}
#: Total activity in a PET/SPECT image [MBq] below which its unit is suspect. Administered activities range from
#: ~40 MBq (paediatric PET) to ~11 GBq (I-131 therapy); a late SPECT of a partial field of view may hold a few
#: MBq. An image in kBq/mL read as Bq/mL holds 1000× less: e.g. 0.2 MBq instead of 200 MBq.
PLAUSIBLE_TOTAL_ACTIVITY_MIN_MBq = 1.0
#: ... and above which it is suspect (an image in Bq/mL read as kBq/mL: 1000× too much).
PLAUSIBLE_TOTAL_ACTIVITY_MAX_MBq = 30_000.0


@dataclass
class LoadedImage:
    """An image read from disk together with what was assumed or converted on the way."""

    image: sitk.Image
    path: str
    notes: List[str] = field(default_factory=list)


def _check_exists(path: PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise DeepDoseInputError(f"Input not found: {p}")
    return p


def _read_dicom_series(directory: Path, what: str) -> sitk.Image:
    series = dicom_series_files(directory)  # every other file of the folder checked: no slice left out silently
    if len(series) > 1:
        raise DeepDoseInputError(
            f"{directory} holds {len(series)} DICOM series ({', '.join(series)}); put the {what} series in its own "
            "folder."
        )
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(next(iter(series.values())))
    reader.SetOutputPixelType(sitk.sitkFloat32)
    return reader.Execute()


def read_image(path: PathLike) -> sitk.Image:
    """Read an image file or a DICOM series directory as float32 (no unit interpretation)."""
    p = _check_exists(path)
    if p.is_dir():
        try:
            image = _read_dicom_series(p, "image")
        except RuntimeError as exc:
            raise DeepDoseInputError(f"Cannot read the DICOM series in {p}: {_last_line(exc)}") from exc
    else:
        check_image_file(p)  # truncation, NaN/Inf in NIfTI, zero spacing, 2D/4D: refused before reading
        try:
            image = sitk.ReadImage(str(p), sitk.sitkFloat32)
        except RuntimeError as exc:
            raise DeepDoseInputError(f"Cannot read image {p}: {_last_line(exc)}") from exc
    check_volume_size(image.GetSize(), p)
    if image.GetDimension() != 3:  # a 4D image with one frame: keep the 3D volume
        image = image[:, :, :, 0]
    spacing = np.asarray(image.GetSpacing(), dtype=np.float64)
    if not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        raise DeepDoseInputError(f"{p}: voxel spacing {spacing.tolist()} mm; every spacing must be finite and > 0.")
    array = sitk.GetArrayViewFromImage(image)
    finite = np.isfinite(array)
    if not finite.all():
        raise DeepDoseInputError(f"{p} contains {int(finite.size - np.count_nonzero(finite))} NaN or infinite "
                                 "voxel(s); fix or mask them first.")
    return image


def _last_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[-1] if lines else type(exc).__name__


def _refuse_non_hu(image: sitk.Image, path: Path) -> None:
    """Refuse images that are evidently not CT numbers: label maps and density maps."""
    array = sitk.GetArrayViewFromImage(image)
    low, high = float(array.min()), float(array.max())
    if low < 0:
        return  # CT numbers below 0 (air, lung, fat): nothing else we read looks like that
    sample = array.ravel()[:: max(1, array.size // 200000)]
    integer_valued = bool(np.all(sample == np.round(sample)))
    if not integer_valued and high <= 3.0:
        raise DeepDoseInputError(f"CT {path} has values in [{low:.3g}, {high:.3g}]: this looks like a density map "
                                 "(g/cm³), not a CT in HU.")
    if integer_valued and 1 <= high < 1000 and 2 <= np.unique(sample).size <= 64:
        raise DeepDoseInputError(f"CT {path} holds only {np.unique(sample).size} small non-negative integers: this "
                                 "looks like a label map, not a CT in HU.")


def read_ct(path: PathLike) -> LoadedImage:
    """Read a CT in Hounsfield units (file or DICOM series; DICOM rescale slope/intercept applied)."""
    p = _check_exists(path)
    image = read_image(p)
    _refuse_non_hu(image, p)
    notes = [f"CT read from {p} as HU"]
    return LoadedImage(image, str(p), notes)


def read_pet(path: PathLike, pet_unit: str = "Bq/mL") -> LoadedImage:
    """Read a PET/SPECT activity-concentration image and return it in Bq/mL (float32).

    Args:
        path: image file or DICOM series directory.
        pet_unit: unit of the stored values for non-DICOM files: ``"Bq/mL"``, ``"kBq/mL"`` or
            ``"MBq/mL"``. DICOM series are converted from their own tags (BQML, SUV or counts).
    """
    p = _check_exists(path)
    if p.is_dir():
        from .dicom_pet import read_pet_dicom_series

        try:
            image = read_pet_dicom_series(p)
        except DeepDoseError:
            raise
        except Exception as exc:  # a damaged file: pydicom and GDCM raise many kinds of errors
            raise DeepDoseInputError(f"Cannot read the PET DICOM series in {p}: a file is damaged "
                                     f"({type(exc).__name__}: {_last_line(exc)}).") from exc
        notes = [f"PET DICOM {p}: {image.GetMetaData('DeepDose.conversion')}"
                 if image.HasMetaDataKey("DeepDose.conversion") else f"PET DICOM {p} converted to Bq/mL"]
    else:
        if pet_unit not in PET_UNIT_TO_BQ_PER_ML:
            raise DeepDoseInputError(
                f"Unknown PET unit {pet_unit!r}; use one of {', '.join(PET_UNIT_TO_BQ_PER_ML)}. SUV files need the "
                "DICOM series (injected activity, time and weight) to be converted."
            )
        image = read_image(p) * PET_UNIT_TO_BQ_PER_ML[pet_unit]
        notes = [f"PET {p} read as {pet_unit} (image files carry no unit; set pet_unit/--pet-unit if this is wrong)"]
    notes += activity_plausibility_notes(image)
    image.SetMetaData("DeepDose.units", "Bq/mL")
    return LoadedImage(image, str(p), notes)


def total_activity_MBq(image: sitk.Image) -> float:
    """Total activity [MBq] of an activity-concentration image [Bq/mL]: sum of voxels × voxel volume [mL]."""
    voxel_mL = float(np.prod(image.GetSpacing())) * 1e-3
    return float(np.sum(sitk.GetArrayViewFromImage(image), dtype=np.float64)) * voxel_mL * 1e-6


def activity_plausibility_notes(image: sitk.Image) -> List[str]:
    """A WARNING note when the total activity [MBq] of a PET in Bq/mL lies outside the administered activities
    of nuclear medicine (:data:`PLAUSIBLE_TOTAL_ACTIVITY_MIN_MBq` .. :data:`PLAUSIBLE_TOTAL_ACTIVITY_MAX_MBq`):
    a unit error (kBq/mL or SUV read as Bq/mL) changes the total by 1000× or more, its maximum far less
    reliably."""
    total = total_activity_MBq(image)
    if 0 < total < PLAUSIBLE_TOTAL_ACTIVITY_MIN_MBq:
        return [f"WARNING: the PET holds only {total:.3g} MBq in total; administered activities are 40-11000 MBq. "
                "Is this image in kBq/mL or SUV rather than Bq/mL? (a kBq/mL image read as Bq/mL gives a dose "
                "1000× too low; set --pet-unit)"]
    if total > PLAUSIBLE_TOTAL_ACTIVITY_MAX_MBq:
        return [f"WARNING: the PET holds {total:.3g} MBq in total, more than any administered activity "
                f"(≤ {PLAUSIBLE_TOTAL_ACTIVITY_MAX_MBq:.0f} MBq). Is the unit right (--pet-unit)?"]
    return []


def write_image(image: sitk.Image, path: PathLike, *, overwrite: bool = False,
                protected: Optional[List[PathLike]] = None) -> Path:
    """Write an image (format from the suffix), refusing to replace inputs or existing files; written to a
    temporary file in the target folder and renamed into place (:func:`~DeepDoseLib.output_paths.atomic_write`).

    Args:
        protected: paths (e.g. the input files) that must never be written to, even with ``overwrite``; compared
            by file identity (a hard or symbolic link to an input is an input).
    """
    p = Path(path)
    if not str(p).lower().endswith(IMAGE_SUFFIXES):
        raise DeepDoseInputError(f"Output {p}: use one of {', '.join(IMAGE_SUFFIXES)}.")
    if p.is_dir():
        raise DeepDoseInputError(f"Output {p} is a folder; give a file name.")
    if p.exists() and not overwrite:
        raise DeepDoseInputError(f"{p} exists; choose another name or pass overwrite=True (--overwrite).")
    # temporary file in the target folder, renamed into place: never half a file, never an input's inode
    return atomic_write(p, lambda tmp: sitk.WriteImage(image, str(tmp), useCompression=True), protected=protected)
