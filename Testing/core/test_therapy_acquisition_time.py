"""Scan times from DICOM headers: hours after administration (header or user administration time)."""
from __future__ import annotations

import pytest

from DeepDoseLib.errors import DeepDoseInputError
from DeepDoseLib.therapy.acquisition_time import hours_after_administration


def _write(path, acquisition=("20240302", "093000.00"), start="20240301093000"):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.20"  # NM image
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID
    ds.AcquisitionDate, ds.AcquisitionTime = acquisition
    if start:
        item = Dataset()
        item.RadiopharmaceuticalStartDateTime = start
        ds.RadiopharmaceuticalInformationSequence = [item]
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(str(path), enforce_file_format=True)


def test_hours_from_header_and_from_user(tmp_path):
    # administered 2024-03-01 09:30:00, acquired 2024-03-02 09:30:00 → 24 h; user time 10:30 → 23 h
    _write(tmp_path / "series" / "1.dcm")
    assert hours_after_administration(tmp_path / "series") == pytest.approx(24.0)
    assert hours_after_administration(tmp_path / "series", "2024-03-01T10:30") == pytest.approx(23.0)


def test_missing_administration_or_acquisition_before_it_is_refused(tmp_path):
    _write(tmp_path / "a" / "1.dcm", start=None)
    with pytest.raises(DeepDoseInputError, match="administration time"):
        hours_after_administration(tmp_path / "a")
    with pytest.raises(DeepDoseInputError, match="not after the administration"):
        hours_after_administration(tmp_path / "a", "2024-03-03T00:00")
