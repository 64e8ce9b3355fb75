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

from .errors import DeepDoseInputError

PathLike = Union[str, "os.PathLike[str]"]
IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
#: Factors from accepted activity-concentration units to Bq/mL.
PET_UNIT_TO_BQ_PER_ML: Dict[str, float] = {"Bq/mL": 1.0, "kBq/mL": 1.0e3, "MBq/mL": 1.0e6}
#: A PET whose maximum is below this many Bq/mL is suspicious (looks like SUV or normalised counts).
SUSPICIOUS_MAX_BQ_PER_ML = 100.0


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
    ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(directory))
    if not ids:
        raise DeepDoseInputError(f"No DICOM series found in {directory} ({what}).")
    if len(ids) > 1:
        raise DeepDoseInputError(
            f"{directory} holds {len(ids)} DICOM series ({', '.join(ids)}); put the {what} series in its own folder."
        )
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(directory), ids[0]))
    reader.SetOutputPixelType(sitk.sitkFloat32)
    return reader.Execute()


def read_image(path: PathLike) -> sitk.Image:
    """Read an image file or a DICOM series directory as float32 (no unit interpretation)."""
    p = _check_exists(path)
    if p.is_dir():
        return _read_dicom_series(p, "image")
    try:
        return sitk.ReadImage(str(p), sitk.sitkFloat32)
    except RuntimeError as exc:
        raise DeepDoseInputError(f"Cannot read image {p}: {str(exc).strip().splitlines()[-1]}") from exc


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

        image = read_pet_dicom_series(p)
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
    array = sitk.GetArrayViewFromImage(image)
    finite_max = float(np.nanmax(array)) if array.size else 0.0
    if 0 < finite_max < SUSPICIOUS_MAX_BQ_PER_ML:
        notes.append(
            f"WARNING: PET maximum is only {finite_max:.3g} Bq/mL; clinical PET is usually 1e3-1e6 Bq/mL. "
            "Is this image in SUV or kBq/mL?"
        )
    image.SetMetaData("DeepDose.units", "Bq/mL")
    return LoadedImage(image, str(p), notes)


def write_image(image: sitk.Image, path: PathLike, *, overwrite: bool = False,
                protected: Optional[List[PathLike]] = None) -> Path:
    """Write an image (format from the suffix), refusing to replace inputs or existing files.

    Args:
        protected: paths (e.g. the input files) that must never be written to, even with ``overwrite``.
    """
    p = Path(path)
    if not str(p).lower().endswith(IMAGE_SUFFIXES):
        raise DeepDoseInputError(f"Output {p}: use one of {', '.join(IMAGE_SUFFIXES)}.")
    for other in protected or []:
        if Path(other).exists() and p.exists() and p.resolve() == Path(other).resolve():
            raise DeepDoseInputError(f"Refusing to overwrite the input {other} with an output.")
        if Path(other).is_dir() and Path(other).resolve() in p.resolve().parents:
            raise DeepDoseInputError(f"Refusing to write {p} into the input DICOM folder {other}.")
    if p.exists() and not overwrite:
        raise DeepDoseInputError(f"{p} exists; choose another name or pass overwrite=True (--overwrite).")
    p.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(p), useCompression=True)
    return p
