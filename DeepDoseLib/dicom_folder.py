"""The image series of a DICOM folder, and the refusal of a folder with a damaged file (CT and PET alike).

GDCM (through SimpleITK) lists the image series of a folder and leaves out every file it cannot parse. A slice
truncated or damaged far enough is then simply missing from its series, and when it is the first or the last one
no gap in the slice positions shows it: the volume would be read one slice short, silently. So every regular file
of the folder is accounted for:

- a file of a series is read completely by pydicom, and its uncompressed pixel data must be as long as its
  header says;
- a file of no series must be a complete DICOM object that is not an image (e.g. an RT Structure Set or a report),
  or a document whose suffix says so (:data:`DOCUMENT_SUFFIXES`: notes, exports, screenshots);
- hidden files and ``DICOMDIR`` are ignored.

Anything else is refused by name (:class:`~DeepDoseLib.errors.DeepDoseInputError`, exit 2). Files are only read.
"""
from __future__ import annotations

import os
from typing import Dict, List

from .errors import DeepDoseInputError

#: suffixes (lower case) of files that are taken for documents, not DICOM, when they belong to no series
DOCUMENT_SUFFIXES = (".txt", ".md", ".csv", ".json", ".xml", ".html", ".htm", ".pdf", ".log", ".ini", ".cfg",
                     ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".zip")


def dicom_series_files(directory: str | os.PathLike) -> Dict[str, List[str]]:
    """The image series of a DICOM folder: SeriesInstanceUID → its files sorted by GDCM along the slice normal.

    Every other file of the folder is checked as the module docstring says.

    Raises
    ------
    DeepDoseInputError
        If the folder is missing, holds no image series, or holds a file that is damaged, truncated, or an image
        of no readable series (named in the message).
    """
    import SimpleITK as sitk

    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise DeepDoseInputError(f"DICOM folder not found: {directory}")
    uids = list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(directory))
    if not uids:
        raise DeepDoseInputError(f"{directory}: no DICOM image series found in this folder.")
    series = {uid: list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(directory, uid)) for uid in uids}
    in_series = {os.path.abspath(f) for files in series.values() for f in files}
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if name.startswith(".") or name.upper() == "DICOMDIR" or not os.path.isfile(path):
            continue
        if os.path.abspath(path) in in_series:
            _check_complete(path, directory)
        elif os.path.splitext(name)[1].lower() not in DOCUMENT_SUFFIXES and _is_image(_check_complete(path, directory)):
            raise DeepDoseInputError(f"{path}: a DICOM image that belongs to no readable series in {directory}; "
                                     "remove it or repair it, so that no slice is left out silently.")
    return series


def _check_complete(path: str, directory: str):
    """The dataset of ``path`` read completely by pydicom; refused when damaged or truncated."""
    import pydicom

    try:
        ds = pydicom.dcmread(path)
        if "PixelData" not in ds and _is_image(ds):
            raise ValueError("an image without pixel data")
        if "PixelData" in ds:
            expected = int(ds.Rows) * int(ds.Columns) * int(getattr(ds, "NumberOfFrames", 1) or 1) \
                * int(ds.BitsAllocated) // 8 * int(getattr(ds, "SamplesPerPixel", 1) or 1)
            if "TransferSyntaxUID" in ds.file_meta and not ds.file_meta.TransferSyntaxUID.is_compressed \
                    and len(ds.PixelData) < expected:
                raise ValueError(f"pixel data holds {len(ds.PixelData)} bytes, {expected} expected")
    except Exception as exc:  # pydicom raises many kinds of errors on damaged files
        lines = str(exc).strip().splitlines()
        raise DeepDoseInputError(f"{path} in the DICOM folder {directory} is not a readable DICOM file "
                                 f"({type(exc).__name__}: {lines[-1] if lines else ''}); it is damaged or truncated. "
                                 "Remove it or restore it, so that no slice is left out silently.") from exc
    return ds


def _is_image(ds) -> bool:
    """A dataset of an image: pixel data, a slice position, or an Image Storage SOP class in the dataset or in its
    file meta information (which survives a file cut short after a few hundred bytes)."""
    import pydicom

    meta = getattr(ds, "file_meta", None)
    classes = (ds.get("SOPClassUID"), meta.get("MediaStorageSOPClassUID") if meta is not None else None)
    image_class = any("Image Storage" in str(getattr(pydicom.uid.UID(str(c)), "name", "")) for c in classes if c)
    return "PixelData" in ds or "ImagePositionPatient" in ds or image_class
