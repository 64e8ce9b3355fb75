"""Read a PET or SPECT DICOM series as activity concentration in Bq/mL.

Geometry comes from SimpleITK/GDCM (LPS, numpy axis order ``(z, y, x)``). Each file's
RescaleSlope/RescaleIntercept is applied by GDCM; the reader is forced to a float output type
because SimpleITK's default (the first file's pixel type, int16 when its slope is 1) silently
truncates slices with other slopes. The stored Units (0054,1001) are converted to Bq/mL with
header values read by pydicom; any missing or implausible value raises DeepDoseInputError.

SUV (Units GML) follows the QIBA vendor-neutral body-weight SUV convention:
``Bq/mL = SUV * dose_Bq * 2**(-dt_s / half_life_s) / weight_g``. Time-zone offsets in DICOM
date-times are ignored (all times are taken as local scanner time). Input files are only read.
"""
from __future__ import annotations

import os
import re
from datetime import datetime
from typing import Any, Sequence

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.datadict import tag_for_keyword

from DeepDoseLib.dicom_folder import dicom_series_files
from DeepDoseLib.errors import DeepDoseInputError

PET_SPECT_MODALITIES = ("PT", "NM")
PHILIPS_PET_CREATOR = "Philips PET Private Group"
_SEQ = " in the RadiopharmaceuticalInformationSequence"


def read_pet_dicom_series(directory: str | os.PathLike, series_uid: str | None = None) -> sitk.Image:
    """Read one PET/SPECT series from ``directory`` as a float32 image in Bq/mL.

    ``series_uid`` selects the SeriesInstanceUID when the folder holds several series.
    The image carries metadata ``DeepDose.units`` ("Bq/mL"), ``DeepDose.conversion``,
    ``DeepDose.reference_time`` (ISO time the concentrations refer to, "" if unknown),
    ``DeepDose.decay_correction``, ``DeepDose.radionuclide``, ``DeepDose.modality``,
    ``DeepDose.source_units`` and ``DeepDose.series_uid``.
    """
    files = _series_files(os.fspath(directory), series_uid)
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    factors, metadata = series_conversion(headers)

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.SetOutputPixelType(sitk.sitkFloat64)  # per-file rescale without truncation
    raw = reader.Execute()
    values = sitk.GetArrayFromImage(raw)  # (z, y, x), stored * slope + intercept
    factors = np.asarray(factors)
    if len(files) == 1:
        values *= factors[0]
    elif values.shape[0] == len(files):
        values *= factors[:, None, None]
    else:
        raise DeepDoseInputError(
            f"{len(files)} DICOM files gave {values.shape[0]} slices; cannot map each file's "
            "activity conversion to its slice")
    image = sitk.GetImageFromArray(values.astype(np.float32))
    image.CopyInformation(raw)
    for key, value in metadata.items():
        image.SetMetaData(key, value)
    return image


def series_conversion(headers: Sequence[pydicom.Dataset]) -> tuple[list[float], dict]:
    """Per-file factors to Bq/mL (Bq/mL = (stored * slope + intercept) * factor) and the series metadata.

    ``headers``: the datasets of one PET/SPECT series (pixels not needed), in any order; the factors are
    in the same order. The metadata are those :func:`read_pet_dicom_series` records (``DeepDose.units``,
    ``DeepDose.conversion``, ``DeepDose.reference_time``, ...). Raises DeepDoseInputError naming the tag
    when a value needed for the conversion is missing or implausible. Used by the command line and the
    Slicer module (which reads the headers of a loaded volume from the DICOM database).
    """
    headers = list(headers)
    _check_modality(headers[0])
    _check_slice_positions(headers)
    try:
        start_reference = _start_reference(headers)
    except DeepDoseInputError:
        start_reference = None  # activity_scale_factor raises if it actually needs it
    conversions = [activity_scale_factor(ds, reference_datetime=start_reference) for ds in headers]
    factors = [factor for factor, _ in conversions]
    descriptions = sorted({text for _, text in conversions})
    if len(descriptions) == 1:
        conversion = descriptions[0]
    else:
        conversion = (f"per-slice factors {min(factors):.6g} to {max(factors):.6g} "
                      f"(Bq/mL per stored unit); first slice: {conversions[0][1]}")
    first = headers[0]
    reference = _activity_reference(headers, start_reference)
    metadata = {
        "DeepDose.units": "Bq/mL",
        "DeepDose.conversion": conversion,
        "DeepDose.reference_time": reference.isoformat() if reference else "",
        "DeepDose.decay_correction": _text(first, "DecayCorrection"),
        "DeepDose.radionuclide": _radionuclide_name(first),
        "DeepDose.modality": _text(first, "Modality"),
        "DeepDose.source_units": _text(first, "Units"),
        "DeepDose.series_uid": _text(first, "SeriesInstanceUID"),
    }
    return factors, metadata


def activity_scale_factor(ds: pydicom.Dataset, *, reference_datetime: datetime | None = None
                          ) -> tuple[float, str]:
    """Return ``(factor, description)`` with Bq/mL = (stored * slope + intercept) * factor.

    ``reference_datetime`` overrides the SUV decay reference time for DecayCorrection START
    (the series reader passes the QIBA reference computed over all slices).
    """
    _check_modality(ds)
    units = _text(_require(ds, "Units", "cannot convert to Bq/mL"), None).upper()
    if units == "BQML":
        return 1.0, "Units BQML: values already in Bq/mL"
    if units == "GML":
        return _suv_body_weight_factor(ds, reference_datetime)
    if units == "CNTS":
        return _philips_counts_factor(ds)
    raise DeepDoseInputError(
        f"cannot convert Units (0054,1001) '{units}' to Bq/mL: supported are BQML, GML "
        "(body-weight SUV) and CNTS with the Philips activity concentration scale factor")


def _suv_body_weight_factor(ds: pydicom.Dataset, reference: datetime | None) -> tuple[float, str]:
    """Factor from body-weight SUV (g/mL) to Bq/mL for one slice."""
    context = "cannot convert SUV to Bq/mL"
    suv_type = _text(ds, "SUVType").upper()
    if suv_type not in ("", "BW"):
        raise DeepDoseInputError(f"{context}: SUVType (0054,1006) is '{suv_type}', only BW is supported")
    weight_kg = _positive(ds, "PatientWeight", context, "kg")
    item = _radiopharmaceutical(ds, context)
    dose_Bq = _positive(item, "RadionuclideTotalDose", context, "Bq", _SEQ)
    decay = _text(_require(ds, "DecayCorrection", context), None).upper()
    if decay == "ADMIN":
        factor = dose_Bq / (weight_kg * 1000.0)
        return factor, (f"body-weight SUV x {dose_Bq / 1e6:.6g} MBq / {weight_kg:.6g} kg "
                        "(DecayCorrection ADMIN: dose not decayed)")
    if decay == "START":
        reference = reference or _start_reference([ds])
        label = "scan start"
    elif decay == "NONE":
        reference = _acquisition_datetime(ds, strict=True)
        label = "slice acquisition"
    else:
        raise DeepDoseInputError(f"{context}: DecayCorrection (0054,1102) '{decay}' is not "
                                 "START, ADMIN or NONE")
    half_life_s = _positive(item, "RadionuclideHalfLife", context, "s", _SEQ)
    injection = _injection_datetime(ds, item, context)
    dt_s = (reference - injection).total_seconds()
    if dt_s < 0:
        raise DeepDoseInputError(
            f"{context}: injection time {injection.isoformat()} is after the {label} time "
            f"{reference.isoformat()}; the DICOM times are inconsistent")
    decayed_Bq = dose_Bq * 2.0 ** (-dt_s / half_life_s)
    factor = decayed_Bq / (weight_kg * 1000.0)
    return factor, (f"body-weight SUV x {dose_Bq / 1e6:.6g} MBq decayed {dt_s / 60:.6g} min "
                    f"(half-life {half_life_s:.6g} s) from injection {injection.isoformat()} to "
                    f"{label} {reference.isoformat()} (DecayCorrection {decay}) / {weight_kg:.6g} kg")


def _philips_counts_factor(ds: pydicom.Dataset) -> tuple[float, str]:
    """Factor for Philips CNTS images: private tag (7053,1009) in Bq/mL per count."""
    try:
        value = ds.get_private_item(0x7053, 0x09, PHILIPS_PET_CREATOR).value
    except KeyError:
        raise DeepDoseInputError(
            "cannot convert Units (0054,1001) 'CNTS' to Bq/mL: the Philips private tag "
            f"Activity Concentration Scale Factor (7053,1009) of '{PHILIPS_PET_CREATOR}' is missing"
        ) from None
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace").strip("\x00 ")
    try:
        factor = float(value)
    except (TypeError, ValueError):
        raise DeepDoseInputError(f"Philips Activity Concentration Scale Factor (7053,1009) "
                                 f"'{value}' is not a number") from None
    if not np.isfinite(factor) or factor <= 0:
        raise DeepDoseInputError(f"Philips Activity Concentration Scale Factor (7053,1009) "
                                 f"must be > 0, got {factor}")
    return factor, f"Units CNTS x Philips activity concentration scale factor {factor:.6g} (7053,1009)"


def _series_files(directory: str, series_uid: str | None) -> list[str]:
    """File names of the requested series, sorted by GDCM along the slice normal (the folder checked by
    :func:`~DeepDoseLib.dicom_folder.dicom_series_files`)."""
    series = dicom_series_files(directory)
    if series_uid is None and len(series) == 1:
        series_uid = next(iter(series))
    if series_uid not in series:
        listing = "; ".join(_describe_series(directory, uid) for uid in series)
        what = f"series {series_uid} is not" if series_uid else "several series are"
        raise DeepDoseInputError(f"{what} in {directory}; choose series_uid among: {listing}")
    return series[series_uid]


def _describe_series(directory: str, uid: str) -> str:
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(directory, uid)
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    return f"{uid} ({_text(ds, 'Modality')} '{_text(ds, 'SeriesDescription')}', {len(files)} files)"


def _check_modality(ds: pydicom.Dataset) -> None:
    modality = _text(_require(ds, "Modality", "cannot read as PET/SPECT"), None).upper()
    if modality not in PET_SPECT_MODALITIES:
        units = _text(ds, "Units") or "absent"
        raise DeepDoseInputError(
            f"not a PET or SPECT image: Modality (0008,0060) is '{modality}' (expected PT or NM) "
            f"and Units (0054,1001) is {units}; activity in Bq/mL cannot be read from it")


def _check_slice_positions(headers: Sequence[pydicom.Dataset]) -> None:
    """Refuse series whose slices are not one regular stack (tilted, repeated or uneven)."""
    if len(headers) < 2:
        return
    context = "cannot build a volume from the slices"
    orientations = np.array([[float(v) for v in _require(ds, "ImageOrientationPatient", context)]
                             for ds in headers])
    if np.abs(orientations - orientations[0]).max() > 1e-4:
        raise DeepDoseInputError(f"{context}: ImageOrientationPatient (0020,0037) differs between slices")
    normal = np.cross(orientations[0, :3], orientations[0, 3:])
    positions = np.array([[float(v) for v in _require(ds, "ImagePositionPatient", context)]
                          for ds in headers])
    gaps_mm = np.diff(positions @ normal)
    if np.abs(gaps_mm).min() < 1e-3:
        raise DeepDoseInputError(f"{context}: several slices share one ImagePositionPatient "
                                 "(0020,0032); dynamic or gated series must be split per frame")
    if np.ptp(gaps_mm) > max(0.01, 1e-3 * np.abs(gaps_mm).mean()):
        raise DeepDoseInputError(f"{context}: uneven slice spacing, gaps from {gaps_mm.min():.4g} "
                                 f"to {gaps_mm.max():.4g} mm")


def _start_reference(headers: Sequence[pydicom.Dataset]) -> datetime:
    """QIBA scan reference: SeriesDate/Time, or the earliest acquisition time if it is earlier."""
    series = _datetime(headers[0], "SeriesDate", "SeriesTime", "cannot decay-correct the dose")
    acquisitions = [t for t in (_acquisition_datetime(ds, strict=False) for ds in headers) if t]
    return min(acquisitions) if acquisitions and min(acquisitions) < series else series


def _activity_reference(headers: Sequence[pydicom.Dataset], start: datetime | None) -> datetime | None:
    """Time the Bq/mL values refer to, per DecayCorrection; None if not derivable."""
    decay = _text(headers[0], "DecayCorrection").upper()
    try:
        if decay == "START":
            return start
        if decay == "ADMIN":
            return _injection_datetime(headers[0], _radiopharmaceutical(headers[0], ""), "")
        if decay == "NONE":  # each slice at its own acquisition time; report the earliest
            return min(_acquisition_datetime(ds, strict=True) for ds in headers)
    except DeepDoseInputError:
        pass
    return None


def _acquisition_datetime(ds: pydicom.Dataset, strict: bool) -> datetime | None:
    """AcquisitionDateTime, else AcquisitionDate (or SeriesDate) + AcquisitionTime."""
    if _text(ds, "AcquisitionDateTime"):
        return _parse_dt(ds, "AcquisitionDateTime")
    date_keyword = "AcquisitionDate" if _text(ds, "AcquisitionDate") else "SeriesDate"
    if not strict and not (_text(ds, date_keyword) and _text(ds, "AcquisitionTime")):
        return None
    return _datetime(ds, date_keyword, "AcquisitionTime", "cannot decay-correct the dose to the slice time")


def _injection_datetime(ds: pydicom.Dataset, item: pydicom.Dataset, context: str) -> datetime:
    """RadiopharmaceuticalStartDateTime, else SeriesDate + RadiopharmaceuticalStartTime."""
    if _text(item, "RadiopharmaceuticalStartDateTime"):
        return _parse_dt(item, "RadiopharmaceuticalStartDateTime")
    if not _text(item, "RadiopharmaceuticalStartTime"):
        raise DeepDoseInputError(
            f"{context}: DICOM tags RadiopharmaceuticalStartDateTime (0018,1078) and "
            f"RadiopharmaceuticalStartTime (0018,1072) are missing{_SEQ}")
    date = _parse_date(_require(ds, "SeriesDate", context), "SeriesDate")
    return datetime.combine(date, _parse_time(item.RadiopharmaceuticalStartTime, "RadiopharmaceuticalStartTime"))


def _radiopharmaceutical(ds: pydicom.Dataset, context: str) -> pydicom.Dataset:
    return _require(ds, "RadiopharmaceuticalInformationSequence", context)[0]


def _radionuclide_name(ds: pydicom.Dataset) -> str:
    try:
        return _text(ds.RadiopharmaceuticalInformationSequence[0].RadionuclideCodeSequence[0], "CodeMeaning")
    except (AttributeError, IndexError):
        return ""


def _tag_name(keyword: str) -> str:
    tag = tag_for_keyword(keyword)
    return f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _require(ds: pydicom.Dataset, keyword: str, context: str, where: str = "") -> Any:
    """Value of ``keyword``; raise naming the tag if it is absent or empty."""
    value = ds.get(keyword)
    if value is None or (hasattr(value, "__len__") and len(value) == 0):
        raise DeepDoseInputError(f"{context}: DICOM tag {_tag_name(keyword)} is missing{where}")
    return value


def _positive(ds: pydicom.Dataset, keyword: str, context: str, unit: str, where: str = "") -> float:
    raw = _require(ds, keyword, context, where)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise DeepDoseInputError(f"{context}: {_tag_name(keyword)} '{raw}' is not a number") from None
    if not np.isfinite(value) or value <= 0:
        raise DeepDoseInputError(f"{context}: {_tag_name(keyword)} must be > 0 {unit}, got {value}")
    return value


def _text(ds: Any, keyword: str | None) -> str:
    """Stripped string of ``ds.keyword`` ("" if absent), or of ``ds`` itself if keyword is None."""
    value = ds if keyword is None else ds.get(keyword, "")
    return str(value if value is not None else "").strip()


def _datetime(ds: pydicom.Dataset, date_keyword: str, time_keyword: str, context: str) -> datetime:
    date = _parse_date(_require(ds, date_keyword, context), date_keyword)
    return datetime.combine(date, _parse_time(_require(ds, time_keyword, context), time_keyword))


def _parse_date(value: Any, keyword: str):
    match = re.fullmatch(r"(\d{4})\.?(\d{2})\.?(\d{2})", str(value).strip())
    if not match:
        raise DeepDoseInputError(f"{_tag_name(keyword)} '{value}' is not a DICOM date YYYYMMDD")
    return datetime(*map(int, match.groups())).date()


def _parse_time(value: Any, keyword: str):
    match = re.fullmatch(r"(\d{2}):?(\d{2})?:?(\d{2})?(?:\.(\d{1,6}))?", str(value).strip())
    if not match:
        raise DeepDoseInputError(f"{_tag_name(keyword)} '{value}' is not a DICOM time HHMMSS.FFFFFF")
    hh, mm, ss, frac = match.groups()
    return datetime(2000, 1, 1, int(hh), int(mm or 0), int(ss or 0),
                    int((frac or "0").ljust(6, "0"))).time()


def _parse_dt(ds: pydicom.Dataset, keyword: str) -> datetime:
    value = _text(ds, keyword)
    match = re.fullmatch(r"(\d{8})(\d{2,6}(?:\.\d{1,6})?)?(?:[+-]\d{4})?", value)
    if not match:
        raise DeepDoseInputError(f"{_tag_name(keyword)} '{value}' is not a DICOM date-time")
    date = _parse_date(match.group(1), keyword)
    return datetime.combine(date, _parse_time(match.group(2) or "00", keyword))
