"""Tests of DeepDoseLib.dicom_pet: PET DICOM series to Bq/mL, geometry and refusals."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from DeepDoseLib.dicom_pet import PHILIPS_PET_CREATOR, activity_scale_factor, read_pet_dicom_series
from DeepDoseLib.errors import DeepDoseInputError
from dicom_factory import AXIAL_ORIENTATION, oblique_orientation, slice_normal, suv_tags, write_pet_series

CT_EXAMPLE = Path("/work/shared/data/totalsegmentator_example/example_ct_dicom")
GA68_HALF_LIFE_S = 4062.6
SLOPES = [1.0, 2.5, 0.001234, 7.0]  # first slope 1: SimpleITK's default would read int16
INTERCEPTS = [0.0, 0.0, 5.5, -3.0]
# float32 output: relative rounding 2**-24 ~ 6e-8; 1e-6 leaves margin for the float64 scaling.
RTOL_FLOAT32 = 1e-6


@pytest.fixture
def stored() -> np.ndarray:
    """Stored int16 pixels, shape (z, y, x) = (4, 6, 8)."""
    return np.random.default_rng(7).integers(-100, 30000, size=(4, 6, 8)).astype(np.int16)


def rescaled(stored: np.ndarray, slopes=SLOPES, intercepts=INTERCEPTS) -> np.ndarray:
    """stored * RescaleSlope + RescaleIntercept, slice by slice."""
    return stored * np.asarray(slopes)[:, None, None] + np.asarray(intercepts)[:, None, None]


def sha256_of(paths) -> dict:
    return {p: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


def raises_naming(text: str):
    return pytest.raises(DeepDoseInputError, match=re.escape(text))


@pytest.mark.parametrize("orientation", [AXIAL_ORIENTATION, oblique_orientation(30.0)],
                         ids=["axial", "oblique"])
def test_bqml_values_and_geometry(tmp_path, stored, orientation):
    origin, spacing = (-20.0, 30.0, 100.0), (2.0, 3.0, 4.0)
    write_pet_series(tmp_path, stored, slopes=SLOPES, intercepts=INTERCEPTS, origin_mm=origin,
                     spacing_mm=spacing, orientation=orientation)
    image = read_pet_dicom_series(tmp_path)

    assert image.GetPixelID() == sitk.sitkFloat32
    np.testing.assert_allclose(sitk.GetArrayFromImage(image), rescaled(stored), rtol=RTOL_FLOAT32)
    # positions are written with 6 decimals, direction cosines with 8
    np.testing.assert_allclose(image.GetOrigin(), origin, atol=1e-5)
    np.testing.assert_allclose(image.GetSpacing(), spacing, atol=1e-5)
    columns = [orientation[:3], orientation[3:], slice_normal(orientation)]
    np.testing.assert_allclose(np.reshape(image.GetDirection(), (3, 3)), np.transpose(columns), atol=1e-6)
    assert image.GetMetaData("DeepDose.units") == "Bq/mL"
    assert image.GetMetaData("DeepDose.modality") == "PT"
    assert "BQML" in image.GetMetaData("DeepDose.conversion")


def test_slices_written_top_down_keep_their_own_slope(tmp_path, stored):
    """GDCM sorts files along the normal; each slice must still get its own file's rescale."""
    write_pet_series(tmp_path, stored, slopes=SLOPES, intercepts=INTERCEPTS,
                     origin_mm=(0.0, 0.0, 50.0), spacing_mm=(2.0, 3.0, -4.0))
    image = read_pet_dicom_series(tmp_path)
    np.testing.assert_allclose(sitk.GetArrayFromImage(image), rescaled(stored)[::-1], rtol=RTOL_FLOAT32)
    np.testing.assert_allclose(image.GetOrigin(), (0.0, 0.0, 50.0 - 3 * 4.0), atol=1e-5)
    np.testing.assert_allclose(image.GetSpacing(), (2.0, 3.0, 4.0), atol=1e-5)


def test_suv_start_matches_hand_calculation(tmp_path, stored):
    # injection 09:00, SeriesTime 10:00 -> 60 min of Ga-68 decay; 200 MBq, 70 kg
    write_pet_series(tmp_path, stored, slopes=SLOPES, intercepts=INTERCEPTS,
                     tags=suv_tags(dose_Bq=200e6, half_life_s=GA68_HALF_LIFE_S, weight_kg=70.0))
    image = read_pet_dicom_series(tmp_path)

    bq_per_ml_per_suv = 200e6 * 2 ** (-3600 / 4062.6) / 70000  # Bq / g, 1 g/mL assumed by SUV
    np.testing.assert_allclose(sitk.GetArrayFromImage(image), rescaled(stored) * bq_per_ml_per_suv,
                               rtol=RTOL_FLOAT32)
    assert image.GetMetaData("DeepDose.reference_time") == "2024-03-15T10:00:00"
    assert image.GetMetaData("DeepDose.decay_correction") == "START"
    assert image.GetMetaData("DeepDose.radionuclide") == "^68^Gallium"
    assert "60 min" in image.GetMetaData("DeepDose.conversion")


def test_suv_start_time_only_is_combined_with_series_date(tmp_path, stored):
    tags = suv_tags()
    del tags["RadiopharmaceuticalInformationSequence"][0].RadiopharmaceuticalStartDateTime
    write_pet_series(tmp_path, stored, tags=tags)
    image = read_pet_dicom_series(tmp_path)
    expected = stored * 200e6 * 2 ** (-3600 / GA68_HALF_LIFE_S) / 70000
    np.testing.assert_allclose(sitk.GetArrayFromImage(image), expected, rtol=RTOL_FLOAT32)


def test_suv_start_uses_earliest_acquisition_when_series_time_is_later(tmp_path, stored):
    """QIBA: a SeriesTime after the acquisition (e.g. reprocessed series) is not the scan start."""
    def acquisition_times(k, ds):
        ds.AcquisitionTime = f"1000{2 * k:02d}"  # 10:00:00, 10:00:02, ...

    write_pet_series(tmp_path, stored, tags={**suv_tags(), "SeriesTime": "103000"},
                     per_slice=acquisition_times)
    image = read_pet_dicom_series(tmp_path)
    expected = stored * 200e6 * 2 ** (-3600 / GA68_HALF_LIFE_S) / 70000
    np.testing.assert_allclose(sitk.GetArrayFromImage(image), expected, rtol=RTOL_FLOAT32)
    assert image.GetMetaData("DeepDose.reference_time") == "2024-03-15T10:00:00"


def test_suv_admin_does_not_decay_the_dose(tmp_path, stored):
    write_pet_series(tmp_path, stored, slopes=SLOPES, intercepts=INTERCEPTS,
                     tags=suv_tags(decay_correction="ADMIN"))
    image = read_pet_dicom_series(tmp_path)
    np.testing.assert_allclose(sitk.GetArrayFromImage(image), rescaled(stored) * 200e6 / 70000,
                               rtol=RTOL_FLOAT32)
    assert image.GetMetaData("DeepDose.reference_time") == "2024-03-15T09:00:00"


def test_suv_none_decays_the_dose_to_each_slice_acquisition_time(tmp_path, stored):
    def acquisition_times(k, ds):
        ds.AcquisitionTime = f"10{2 * k:02d}00"  # 10:00, 10:02, 10:04, 10:06

    write_pet_series(tmp_path, stored, slopes=SLOPES, intercepts=INTERCEPTS,
                     tags=suv_tags(decay_correction="NONE"), per_slice=acquisition_times)
    image = read_pet_dicom_series(tmp_path)
    dt_s = 3600.0 + 120.0 * np.arange(4)
    factors = 200e6 * 2 ** (-dt_s / GA68_HALF_LIFE_S) / 70000
    np.testing.assert_allclose(sitk.GetArrayFromImage(image), rescaled(stored) * factors[:, None, None],
                               rtol=RTOL_FLOAT32)
    assert image.GetMetaData("DeepDose.reference_time") == "2024-03-15T10:00:00"
    assert "per-slice" in image.GetMetaData("DeepDose.conversion")


@pytest.mark.parametrize("keyword, number, in_sequence", [
    ("RadionuclideTotalDose", "(0018,1074)", True),
    ("RadionuclideHalfLife", "(0018,1075)", True),
    ("PatientWeight", "(0010,1030)", False),
    ("DecayCorrection", "(0054,1102)", False),
    ("RadiopharmaceuticalInformationSequence", "(0054,0016)", False),
])
def test_missing_suv_tag_is_named(tmp_path, stored, keyword, number, in_sequence):
    tags = suv_tags()
    if in_sequence:
        delattr(tags["RadiopharmaceuticalInformationSequence"][0], keyword)
    else:
        del tags[keyword]
    write_pet_series(tmp_path, stored, tags=tags)
    with pytest.raises(DeepDoseInputError) as error:
        read_pet_dicom_series(tmp_path)
    assert keyword in str(error.value) and number in str(error.value)


def test_missing_injection_time_is_named(tmp_path, stored):
    tags = suv_tags()
    item = tags["RadiopharmaceuticalInformationSequence"][0]
    del item.RadiopharmaceuticalStartDateTime, item.RadiopharmaceuticalStartTime
    write_pet_series(tmp_path, stored, tags=tags)
    with raises_naming("RadiopharmaceuticalStartTime (0018,1072)"):
        read_pet_dicom_series(tmp_path)


def test_missing_units_is_named(tmp_path, stored):
    write_pet_series(tmp_path, stored, units=None)
    with raises_naming("Units (0054,1001) is missing"):
        read_pet_dicom_series(tmp_path)


@pytest.mark.parametrize("tags, message", [
    ({**suv_tags(), "PatientWeight": "0"}, "PatientWeight (0010,1030) must be > 0"),
    (suv_tags(dose_Bq=-5.0), "RadionuclideTotalDose (0018,1074) must be > 0"),
    (suv_tags(half_life_s=0.0), "RadionuclideHalfLife (0018,1075) must be > 0"),
    (suv_tags(injection_time="110000"), "inconsistent"),  # injected after the scan started
    ({**suv_tags(), "SUVType": "LBM"}, "SUVType (0054,1006) is 'LBM'"),
    ({**suv_tags(), "DecayCorrection": "ANYTIME"}, "DecayCorrection (0054,1102) 'ANYTIME'"),
])
def test_implausible_suv_values_are_refused(tmp_path, stored, tags, message):
    write_pet_series(tmp_path, stored, tags=tags)
    with raises_naming(message):
        read_pet_dicom_series(tmp_path)


@pytest.mark.parametrize("units", ["PROPCNTS", "CPS", "CM2ML"])
def test_unsupported_units_are_refused_by_name(tmp_path, stored, units):
    write_pet_series(tmp_path, stored, units=units)
    with raises_naming(f"Units (0054,1001) '{units}'"):
        read_pet_dicom_series(tmp_path)


def test_counts_without_philips_scale_factor_are_refused(tmp_path, stored):
    write_pet_series(tmp_path, stored, units="CNTS")
    with raises_naming("(7053,1009)"):
        read_pet_dicom_series(tmp_path)


def test_counts_with_philips_scale_factor_are_converted(tmp_path, stored):
    def philips_factor(k, ds):
        ds.private_block(0x7053, PHILIPS_PET_CREATOR, create=True).add_new(0x09, "DS", "0.125")

    write_pet_series(tmp_path, stored, slopes=SLOPES, intercepts=INTERCEPTS, units="CNTS",
                     per_slice=philips_factor)
    image = read_pet_dicom_series(tmp_path)
    np.testing.assert_allclose(sitk.GetArrayFromImage(image), rescaled(stored) * 0.125, rtol=RTOL_FLOAT32)


def test_input_files_are_not_modified(tmp_path, stored):
    paths = write_pet_series(tmp_path, stored, slopes=SLOPES, intercepts=INTERCEPTS, tags=suv_tags())
    before = sha256_of(paths)
    read_pet_dicom_series(tmp_path)
    assert sha256_of(paths) == before
    assert sorted(tmp_path.iterdir()) == sorted(paths)


def test_several_series_need_a_series_uid(tmp_path, stored):
    first = write_pet_series(tmp_path, stored, prefix="a")
    write_pet_series(tmp_path, stored * 2, prefix="b")
    with raises_naming("several series"):
        read_pet_dicom_series(tmp_path)
    uid = pydicom.dcmread(first[0]).SeriesInstanceUID
    image = read_pet_dicom_series(tmp_path, series_uid=uid)
    np.testing.assert_allclose(sitk.GetArrayFromImage(image), stored)
    with raises_naming("is not in"):
        read_pet_dicom_series(tmp_path, series_uid="1.2.3.4")


def test_repeated_slice_positions_are_refused(tmp_path, stored):
    """A dynamic series (same positions, several frames) must not be stacked as one volume."""
    write_pet_series(tmp_path, stored, spacing_mm=(2.0, 3.0, 0.0))
    with raises_naming("share one ImagePositionPatient"):
        read_pet_dicom_series(tmp_path)


def test_empty_folder_is_refused(tmp_path):
    with raises_naming("no DICOM image series"):
        read_pet_dicom_series(tmp_path)


def test_activity_scale_factor_of_one_dataset():
    ds = pydicom.Dataset()
    ds.Modality, ds.Units = "PT", "BQML"
    assert activity_scale_factor(ds)[0] == 1.0
    for keyword, value in suv_tags(decay_correction="ADMIN").items():
        setattr(ds, keyword, value)
    factor, description = activity_scale_factor(ds)
    assert factor == pytest.approx(200e6 / 70000, rel=1e-12)
    assert "ADMIN" in description


@pytest.mark.skipif(not CT_EXAMPLE.is_dir(), reason=f"example CT DICOM series absent: {CT_EXAMPLE}")
def test_real_ct_series_is_refused_as_pet():
    with raises_naming("Modality (0008,0060) is 'CT'"):
        read_pet_dicom_series(CT_EXAMPLE)


@pytest.mark.parametrize("keep_bytes", [0, 100, 400])
def test_a_damaged_slice_is_refused_not_left_out(tmp_path, keep_bytes):
    """A slice truncated so far that GDCM no longer sees it in the series would otherwise be left out silently
    (the first or last slice leaves no gap to detect): the folder is refused, naming the file."""
    stored = np.full((6, 8, 8), 2000, np.int16)
    write_pet_series(tmp_path, stored, origin_mm=(-14.0, -14.0, -10.0), spacing_mm=(4.0, 4.0, 4.0), slopes=[100.0] * 6)
    assert read_pet_dicom_series(tmp_path).GetSize()[2] == 6
    first = sorted(tmp_path.glob("*.dcm"))[0]
    first.write_bytes(first.read_bytes()[:keep_bytes])
    (tmp_path / "notes.txt").write_text("not an image: ignored")
    with pytest.raises(DeepDoseInputError, match=re.escape(first.name)):
        read_pet_dicom_series(tmp_path)
