"""Write small synthetic PET/SPECT DICOM series with pydicom, for tests.

Geometry follows DICOM/LPS: slice k sits at ``origin_mm + k * spacing_mm[2] * normal``, with
``normal = row_direction x column_direction``. Pixel arrays are numpy ``(z, y, x)``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
AXIAL_ORIENTATION = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def oblique_orientation(angle_deg: float = 30.0) -> tuple[float, ...]:
    """Row and column direction cosines rotated by ``angle_deg`` about the patient y axis."""
    a = np.deg2rad(angle_deg)
    row = (np.cos(a), 0.0, np.sin(a))
    col = (0.0, 1.0, 0.0)
    return tuple(float(v) for v in (*row, *col))


def slice_normal(orientation: Sequence[float]) -> np.ndarray:
    """Unit normal (row x column) of an ImageOrientationPatient value."""
    return np.cross(np.asarray(orientation[:3], float), np.asarray(orientation[3:], float))


def suv_tags(
    dose_Bq: float = 200e6,
    half_life_s: float = 4062.6,
    weight_kg: float = 70.0,
    injection_time: str = "090000",
    decay_correction: str = "START",
    radionuclide: str = "^68^Gallium",
) -> dict:
    """Header values of a body-weight SUV (Units GML) series; series starts at 10:00:00."""
    item = Dataset()
    item.Radiopharmaceutical = "Fluorodeoxyglucose"
    item.RadiopharmaceuticalStartTime = injection_time
    item.RadiopharmaceuticalStartDateTime = "20240315" + injection_time
    item.RadionuclideTotalDose = f"{dose_Bq:.6g}"
    item.RadionuclideHalfLife = f"{half_life_s}"
    code = Dataset()
    code.CodeValue = "C-131A3"
    code.CodingSchemeDesignator = "SRT"
    code.CodeMeaning = radionuclide
    item.RadionuclideCodeSequence = [code]
    return {
        "Units": "GML",
        "DecayCorrection": decay_correction,
        "PatientWeight": f"{weight_kg}",
        "RadiopharmaceuticalInformationSequence": [item],
    }


def write_pet_series(
    directory: str | os.PathLike,
    stored: np.ndarray,
    *,
    slopes: Sequence[float] | None = None,
    intercepts: Sequence[float] | None = None,
    origin_mm: Sequence[float] = (-20.0, 30.0, 100.0),
    spacing_mm: Sequence[float] = (2.0, 3.0, 4.0),
    orientation: Sequence[float] = AXIAL_ORIENTATION,
    units: str | None = "BQML",
    modality: str = "PT",
    tags: dict | None = None,
    per_slice: Callable[[int, Dataset], None] | None = None,
    prefix: str = "slice",
) -> list[Path]:
    """Write ``stored`` (int16, shape (z, y, x)) as one DICOM file per slice; return the paths.

    ``spacing_mm`` is (column spacing x, row spacing y, slice spacing z). ``tags`` are set on
    every slice (keyword -> value); ``per_slice(k, ds)`` may edit slice ``k`` before it is saved.
    Files are named ``<prefix>_<k>.dcm``; each call creates a new SeriesInstanceUID.
    """
    stored = np.asarray(stored, dtype=np.int16)
    n_slices, rows, cols = stored.shape
    slopes = list(slopes) if slopes is not None else [1.0] * n_slices
    intercepts = list(intercepts) if intercepts is not None else [0.0] * n_slices
    normal = slice_normal(orientation)
    study_uid, series_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n_slices):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = PET_IMAGE_STORAGE
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = PET_IMAGE_STORAGE
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.Modality = modality
        ds.PatientName, ds.PatientID = "Phantom^Synthetic", "DD0001"
        ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = "20240315"
        ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = "100000"
        ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
        ds.ImagePositionPatient = [f"{v:.6f}" for v in np.asarray(origin_mm) + k * spacing_mm[2] * normal]
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in orientation]
        ds.PixelSpacing = [f"{spacing_mm[1]}", f"{spacing_mm[0]}"]  # row spacing, column spacing
        ds.SliceThickness = f"{spacing_mm[2]}"
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = f"{slopes[k]:.8g}", f"{intercepts[k]:.8g}"
        if units is not None:
            ds.Units = units
        for keyword, value in (tags or {}).items():
            setattr(ds, keyword, value)
        ds.PixelData = stored[k].tobytes()
        if per_slice is not None:
            per_slice(k, ds)
        path = directory / f"{prefix}_{k:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
