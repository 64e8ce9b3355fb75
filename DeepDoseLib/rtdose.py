"""DICOM RT Dose export and import (multi-frame, SOP Class 1.2.840.10008.5.1.4.1.1.481.2) with pydicom.

Written files hold uint32 pixels × DoseGridScaling, frames along the slice normal (row × column
direction cosines) with a relative GridFrameOffsetVector starting at 0, ImagePositionPatient and
ImageOrientationPatient from the image geometry (LPS), so any orthogonal grid, oblique included,
is exact. With a reference DICOM series (the CT, or the PET the dose lies on) the file joins that
patient, study and **frame of reference**; without one it gets new UIDs and a placeholder patient
(``DEEPDOSE^NO REFERENCE``), so it can never be mistaken for a real patient's dose.

**Dose rates.** DICOM DoseUnits allows only ``GY`` (absorbed dose) or ``RELATIVE``. A dose-rate map
(mGy/h) written as ``GY`` would be read by planning and dosimetry systems as absorbed dose, wrong by
the (unknown) integration time, so this is refused. Absorbed-dose maps (Gy, mGy, cGy; e.g. from
time integration) are written as ``GY`` in Gy. A dose-rate map can only be written with
``units="RELATIVE"``: the values stay in their own unit (e.g. mGy/h), and SeriesDescription and
DoseComment say ``DOSE RATE mGy/h``, so viewers (SlicerRT, dicompyler) show it and no system takes it
for gray.

SimpleITK/GDCM (2.5) reads such a file with the right grid but returns the raw uint32 values: it does
**not** apply DoseGridScaling; :func:`read_rtdose` does.
"""
from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import List, Sequence, Union

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from ._version import __version__
from .errors import DeepDoseInputError
from .geometry import physical_extent_mm

RT_DOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"
DOSE_TYPES = ("PHYSICAL", "EFFECTIVE", "ERROR")
SUMMATION_TYPES = ("PLAN", "MULTI_PLAN", "PLAN_OVERVIEW", "FRACTION", "BEAM", "BRACHY", "FRACTION_SESSION",
                   "BEAM_SESSION", "BRACHY_SESSION", "CONTROL_POINT", "RECORD")
#: Absorbed-dose units accepted for DoseUnits GY, with their factor to Gy.
TO_GY = {"Gy": 1.0, "cGy": 1e-2, "mGy": 1e-3}
RATE_UNITS = ("mGy/h", "Gy/h", "uGy/h")
PLACEHOLDER_PATIENT_NAME = "DEEPDOSE^NO REFERENCE"
PLACEHOLDER_PATIENT_ID = "DEEPDOSE-NO-REFERENCE"
_UINT32_MAX = 4294967295
_PATIENT_STUDY_KEYWORDS = ("SpecificCharacterSet", "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate",
                           "PatientSex", "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID", "AccessionNumber",
                           "ReferringPhysicianName", "StudyDescription", "FrameOfReferenceUID",
                           "PositionReferenceIndicator")
PathLike = Union[str, "os.PathLike[str]"]


def _ds(value: float) -> str:
    """A DICOM decimal string (at most 16 characters)."""
    value = 0.0 if abs(value) < 1e-12 else float(value)
    for digits in (10, 9, 8, 7):
        text = f"{value:.{digits}g}"
        if len(text) <= 16:
            return text
    return f"{value:.6e}"


def _reference_headers(reference: Union[PathLike, Dataset, Sequence[Dataset]]) -> List[Dataset]:
    if isinstance(reference, Dataset):
        return [reference]
    if isinstance(reference, (list, tuple)):
        return list(reference)
    path = Path(reference)
    if not path.exists():
        raise DeepDoseInputError(f"Reference DICOM {path} not found.")
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    headers = []
    for f in files:
        try:
            ds = pydicom.dcmread(str(f), stop_before_pixels=True)
        except (pydicom.errors.InvalidDicomError, OSError):
            continue
        if "FrameOfReferenceUID" in ds:
            headers.append(ds)
    if not headers:
        raise DeepDoseInputError(f"No DICOM image with a FrameOfReferenceUID in {path}.")
    return headers


def _check_reference(headers: List[Dataset], dose_image: sitk.Image) -> Dataset:
    """The header to copy patient/study/frame of reference from, after consistency checks."""
    for keyword in ("FrameOfReferenceUID", "StudyInstanceUID", "PatientID"):
        found = {str(h.get(keyword, "")) for h in headers}
        if len(found) > 1:
            raise DeepDoseInputError(f"The reference DICOM mixes {len(found)} different {keyword} values; give one series.")
    if "FrameOfReferenceUID" not in headers[0]:
        raise DeepDoseInputError("The reference DICOM has no FrameOfReferenceUID.")
    lo, hi = physical_extent_mm(dose_image)
    points = []
    for h in headers:
        if all(k in h for k in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns")):
            o, d = np.array(h.ImagePositionPatient, float), np.array(h.ImageOrientationPatient, float)
            extent_row = d[:3] * float(h.PixelSpacing[1]) * (int(h.Columns) - 1)
            extent_col = d[3:] * float(h.PixelSpacing[0]) * (int(h.Rows) - 1)
            points += [o, o + extent_row, o + extent_col, o + extent_row + extent_col]
    if points:
        ref_lo, ref_hi = np.min(points, axis=0), np.max(points, axis=0)
        if np.any(ref_hi < lo - 1.0) or np.any(ref_lo > hi + 1.0):
            raise DeepDoseInputError("The dose grid does not overlap the reference DICOM series: is it the same patient "
                                     "and frame of reference?")
    return headers[0]


def _dose_values(dose_image: sitk.Image, unit: str, units: str) -> tuple:
    """(values in the stored unit, DoseComment) for the requested DoseUnits."""
    values = sitk.GetArrayFromImage(dose_image).astype(np.float64)
    if units == "GY":
        if unit in RATE_UNITS:
            raise DeepDoseInputError(
                f"A dose-rate map ({unit}) cannot be written with DoseUnits GY: clinical systems would read it as "
                "absorbed dose in Gy. Integrate it over time to absorbed dose first, or export it with "
                "units='RELATIVE' (values stay in " + unit + ", stated in the DoseComment).")
        if unit not in TO_GY:
            raise DeepDoseInputError(f"DoseUnits GY needs an absorbed dose in {', '.join(TO_GY)}, got {unit!r}.")
        return values * TO_GY[unit], "ABSORBED DOSE Gy"
    if units == "RELATIVE":
        if unit not in tuple(TO_GY) + RATE_UNITS + ("%",):
            raise DeepDoseInputError(f"Unknown dose unit {unit!r}; use one of {', '.join(tuple(TO_GY) + RATE_UNITS)} or %.")
        return values, (f"DOSE RATE {unit}" if unit in RATE_UNITS else f"VALUES IN {unit}")
    raise DeepDoseInputError(f"DICOM DoseUnits must be 'GY' or 'RELATIVE', got {units!r}.")


def write_rtdose(dose_image: sitk.Image, path_or_dir: PathLike, *, unit: str = "Gy", units: str = "GY",
                 dose_type: str = "PHYSICAL", summation: str = "PLAN",
                 reference_ct_dicom_dir: Union[PathLike, Dataset, Sequence[Dataset], None] = None,
                 description: str = "", overwrite: bool = False) -> Path:
    """Write a 3D dose image as one multi-frame DICOM RT Dose file; return its path.

    Args:
        dose_image: dose map on any orthogonal grid (SimpleITK, LPS), values in ``unit``, ≥ 0.
        path_or_dir: output file (``.dcm``), or a folder that receives ``RTDOSE_<SOPInstanceUID>.dcm``.
        unit: unit of the image values: absorbed dose ``Gy``/``mGy``/``cGy`` or rate ``mGy/h``/``Gy/h``/``uGy/h``.
        units: DICOM DoseUnits: ``GY`` (absorbed dose only, stored in Gy) or ``RELATIVE`` (values kept
            in ``unit``, the unit written in DoseComment); see the module docstring about dose rates.
        dose_type: DoseType (``PHYSICAL``, ``EFFECTIVE``, ``ERROR``).
        summation: DoseSummationType. Radionuclide therapy has no RT Plan; ``PLAN`` (the default) is
            what DICOM RT viewers expect; no Referenced RT Plan Sequence is written.
        reference_ct_dicom_dir: DICOM folder, file or pydicom datasets of the series the dose belongs
            to (CT or PET): patient, study and FrameOfReferenceUID are copied from it. The output must
            not go into that folder.
        description: SeriesDescription (default says DeepDose and what the values are).
    """
    units, dose_type, summation = units.upper(), dose_type.upper(), summation.upper()
    if dose_type not in DOSE_TYPES:
        raise DeepDoseInputError(f"DoseType must be one of {', '.join(DOSE_TYPES)}, got {dose_type!r}.")
    if summation not in SUMMATION_TYPES:
        raise DeepDoseInputError(f"DoseSummationType must be one of {', '.join(SUMMATION_TYPES)}, got {summation!r}.")
    if dose_image.GetDimension() != 3 or dose_image.GetNumberOfComponentsPerPixel() != 1:
        raise DeepDoseInputError("RT Dose export needs a 3D scalar image.")
    values, comment = _dose_values(dose_image, unit, units)
    if not np.all(np.isfinite(values)) or values.min() < 0:
        raise DeepDoseInputError("RT Dose pixels are unsigned: the dose map must be finite and non-negative.")

    direction = np.asarray(dose_image.GetDirection(), float).reshape(3, 3)
    row_dir, col_dir = direction[:, 0], direction[:, 1]
    normal = np.cross(row_dir, col_dir)
    along = float(np.dot(direction[:, 2], normal))
    if abs(abs(along) - 1.0) > 1e-6 or not np.allclose(direction.T @ direction, np.eye(3), atol=1e-6):
        raise DeepDoseInputError("RT Dose needs frames perpendicular to the rows and columns (orthogonal grid); "
                                 "this image's slice axis is sheared.")
    origin = np.asarray(dose_image.GetOrigin(), float)
    spacing = dose_image.GetSpacing()
    if along < 0:  # frames must advance along row x column: reverse the slice order
        values = values[::-1]
        origin = origin + direction[:, 2] * spacing[2] * (values.shape[0] - 1)
    peak = float(values.max())
    scaling_text = f"{peak / _UINT32_MAX * (1 + 1e-7):.8e}" if peak > 0 else "1"
    scaling = float(scaling_text)
    pixels = np.clip(np.rint(values / scaling), 0, _UINT32_MAX).astype("<u4")

    reference = None
    if reference_ct_dicom_dir is not None:
        reference = _check_reference(_reference_headers(reference_ct_dicom_dir), dose_image)
    sop_uid = generate_uid()
    out = Path(path_or_dir)
    if out.is_dir() or out.suffix == "":
        out = out / f"RTDOSE_{sop_uid}.dcm"
    if isinstance(reference_ct_dicom_dir, (str, os.PathLike)) and Path(reference_ct_dicom_dir).is_dir():
        if Path(reference_ct_dicom_dir).resolve() in out.resolve().parents:
            raise DeepDoseInputError("Write the RT Dose outside the reference DICOM folder (it would join that series).")
    if out.exists() and not overwrite:
        raise DeepDoseInputError(f"{out} exists; choose another name or pass overwrite=True.")

    now = datetime.datetime.now()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RT_DOSE_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    if reference is not None:
        for keyword in _PATIENT_STUDY_KEYWORDS:
            if keyword in reference:
                setattr(ds, keyword, reference.data_element(keyword).value)
    else:
        ds.PatientName, ds.PatientID = PLACEHOLDER_PATIENT_NAME, PLACEHOLDER_PATIENT_ID
        ds.StudyInstanceUID, ds.FrameOfReferenceUID = generate_uid(), generate_uid()
        ds.StudyDate, ds.StudyTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    for keyword in ("PatientBirthDate", "PatientSex", "StudyID", "AccessionNumber", "ReferringPhysicianName",
                    "StudyDate", "StudyTime", "PositionReferenceIndicator"):  # type 2: present, may be empty
        if keyword not in ds:
            setattr(ds, keyword, "")
    ds.SOPClassUID, ds.SOPInstanceUID = RT_DOSE_STORAGE, sop_uid
    ds.Modality = "RTDOSE"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber, ds.InstanceNumber = 900, 1
    ds.SeriesDescription = (description or f"DeepDose {comment}")[:64]
    ds.InstanceCreationDate = ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.InstanceCreationTime = ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
    ds.Manufacturer, ds.ManufacturerModelName, ds.SoftwareVersions = "DeepDose", "DeepDose", __version__
    ds.ImagePositionPatient = [_ds(v) for v in origin]
    ds.ImageOrientationPatient = [_ds(v) for v in (*row_dir, *col_dir)]
    ds.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]  # row spacing (y), column spacing (x)
    ds.SliceThickness = _ds(spacing[2])
    ds.GridFrameOffsetVector = [_ds(k * spacing[2]) for k in range(values.shape[0])]
    ds.FrameIncrementPointer = 0x3004000C
    ds.NumberOfFrames = str(values.shape[0])
    ds.Rows, ds.Columns = int(values.shape[1]), int(values.shape[2])
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 32, 32, 31, 0
    ds.DoseUnits, ds.DoseType, ds.DoseSummationType = units, dose_type, summation
    ds.DoseGridScaling = scaling_text
    ds.DoseComment = comment[:64]
    ds.PixelData = pixels.tobytes()
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        ds.save_as(str(out), enforce_file_format=True)
    except TypeError:  # pydicom < 3
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.save_as(str(out), write_like_original=False)
    return out


def read_rtdose(path: PathLike) -> sitk.Image:
    """Read a DICOM RT Dose file as a float64 SimpleITK image: stored values × DoseGridScaling.

    The values are in Gy when DoseUnits is GY (metadata ``DeepDose.units`` = ``"Gy"``). Metadata keys
    ``DoseUnits``, ``DoseType``, ``DoseSummationType``, ``DoseComment`` and ``SeriesDescription`` carry
    the header values. Frames must be equally spaced.
    """
    p = Path(path)
    if not p.is_file():
        raise DeepDoseInputError(f"RT Dose file {p} not found.")
    ds = pydicom.dcmread(str(p), force=True)
    if str(ds.get("SOPClassUID", "")) != RT_DOSE_STORAGE and ds.get("Modality") != "RTDOSE":
        raise DeepDoseInputError(f"{p} is not a DICOM RT Dose file.")
    array = np.asarray(ds.pixel_array, dtype=np.float64) * float(ds.get("DoseGridScaling", 1.0))
    if array.ndim == 2:
        array = array[None]
    row_dir = np.array(ds.ImageOrientationPatient[:3], float)
    col_dir = np.array(ds.ImageOrientationPatient[3:], float)
    normal = np.cross(row_dir, col_dir)
    origin = np.array(ds.ImagePositionPatient, float)
    if array.shape[0] > 1:
        offsets = np.array(ds.GridFrameOffsetVector, float)
        if offsets.size != array.shape[0]:
            raise DeepDoseInputError(f"{p}: GridFrameOffsetVector has {offsets.size} values for {array.shape[0]} frames.")
        if offsets[0] != 0:  # absolute z coordinates, defined for axial (1,0,0,0,1,0) frames only
            if not np.allclose(ds.ImageOrientationPatient, [1, 0, 0, 0, 1, 0], atol=1e-6):
                raise DeepDoseInputError(f"{p}: absolute GridFrameOffsetVector with a non-axial orientation.")
            offsets = offsets - origin[2]
        steps = np.diff(offsets)
        if np.any(np.abs(steps - steps[0]) > 1e-3 * max(abs(steps[0]), 1e-6)) or steps[0] == 0:
            raise DeepDoseInputError(f"{p}: frames are not equally spaced ({steps.min():g} to {steps.max():g} mm).")
        origin = origin + offsets[0] * normal
        dz, slice_dir = abs(float(steps[0])), normal * np.sign(steps[0])
    else:
        dz, slice_dir = float(ds.get("SliceThickness") or 1.0), normal
    image = sitk.GetImageFromArray(array)
    image.SetOrigin(origin.tolist())
    image.SetSpacing([float(ds.PixelSpacing[1]), float(ds.PixelSpacing[0]), dz])
    image.SetDirection(np.column_stack([row_dir, col_dir, slice_dir]).ravel().tolist())
    for keyword in ("DoseUnits", "DoseType", "DoseSummationType", "DoseComment", "SeriesDescription"):
        image.SetMetaData(keyword, str(ds.get(keyword, "")))
    if str(ds.get("DoseUnits", "")).upper() == "GY":
        image.SetMetaData("DeepDose.units", "Gy")
    return image
