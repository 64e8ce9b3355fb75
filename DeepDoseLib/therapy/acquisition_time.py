"""Scan times from DICOM: hours after administration from the acquisition date/time of a PET/SPECT series.

The time of a scan is its ``AcquisitionDate``/``AcquisitionTime`` (else ``SeriesDate``/``SeriesTime``, else
``StudyDate``/``StudyTime``) of the first readable file of the series folder (or the file itself); the
administration time comes from the user (ISO 8601, e.g. ``2024-03-01T09:30``) or from the radiopharmaceutical
sequence (``RadiopharmaceuticalStartDateTime``) when present.
"""
from __future__ import annotations

import datetime
from pathlib import Path
from typing import Optional, Tuple, Union

from ..errors import DeepDoseInputError


def _parse(date: str, time: str) -> datetime.datetime:
    time = (time or "000000").split(".")[0].ljust(6, "0")
    return datetime.datetime.strptime(f"{date}{time}", "%Y%m%d%H%M%S")


def _first_dataset(path: Path):
    import pydicom

    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        try:
            return pydicom.dcmread(str(f), stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - not DICOM: try the next file
            continue
    raise DeepDoseInputError(f"No DICOM file found in {path}: the scan time cannot be read from it.")


def dicom_times(path: Union[str, Path]) -> Tuple[datetime.datetime, Optional[datetime.datetime]]:
    """(acquisition date-time, administration date-time or None) of a DICOM series folder or file."""
    ds = _first_dataset(Path(path))
    acquisition = None
    for date_key, time_key in (("AcquisitionDate", "AcquisitionTime"), ("SeriesDate", "SeriesTime"),
                               ("StudyDate", "StudyTime")):
        if getattr(ds, date_key, "") and getattr(ds, time_key, ""):
            acquisition = _parse(str(getattr(ds, date_key)), str(getattr(ds, time_key)))
            break
    if acquisition is None:
        raise DeepDoseInputError(f"{path}: no acquisition, series or study date/time in the DICOM header.")
    administration = None
    for item in getattr(ds, "RadiopharmaceuticalInformationSequence", []) or []:
        start = str(getattr(item, "RadiopharmaceuticalStartDateTime", "") or "")
        if start:
            administration = datetime.datetime.strptime(start.split(".")[0][:14].ljust(14, "0"), "%Y%m%d%H%M%S")
    return acquisition, administration


def hours_after_administration(path: Union[str, Path], administration: Optional[str] = None) -> float:
    """Scan time [h after administration] of a DICOM series; ``administration`` (ISO 8601) overrides the header."""
    acquisition, header_administration = dicom_times(path)
    if administration:
        try:
            given = datetime.datetime.fromisoformat(administration)
        except ValueError as exc:
            raise DeepDoseInputError(f"Administration time {administration!r}: use ISO 8601, e.g. 2024-03-01T09:30 "
                                     f"({exc}).")
    elif header_administration is not None:
        given = header_administration
    else:
        raise DeepDoseInputError(f"{path}: the DICOM header has no administration time "
                                 "(RadiopharmaceuticalStartDateTime); give it (--administration-time).")
    hours = (acquisition - given.replace(tzinfo=None)).total_seconds() / 3600.0
    if not hours > 0:
        raise DeepDoseInputError(f"{path}: acquired {acquisition.isoformat()}, not after the administration "
                                 f"{given.isoformat()}.")
    return hours
