"""DICOM RT Dose export: round trips through pydicom, SimpleITK/GDCM and dicompyler-core."""
from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from DeepDoseLib.errors import DeepDoseInputError
from DeepDoseLib.geometry import same_grid
from DeepDoseLib.rtdose import PLACEHOLDER_PATIENT_ID, RT_DOSE_STORAGE, read_rtdose, write_rtdose

from dicom_factory import write_pet_series


def dose_image(direction=None, shape=(6, 7, 9), spacing=(2.5, 3.0, 4.0), origin=(-20.0, 35.5, -102.25), seed=0):
    rng = np.random.default_rng(seed)
    array = rng.gamma(2.0, 3.0, shape)  # Gy
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    if direction is not None:
        image.SetDirection(direction)
    return image


def oblique_direction():
    """30° about y, then 20° about z: no axis is along a patient axis."""
    a, b = np.radians(30.0), np.radians(20.0)
    ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    rz = np.array([[np.cos(b), -np.sin(b), 0], [np.sin(b), np.cos(b), 0], [0, 0, 1]])
    return tuple((rz @ ry).ravel())


FLIPPED_Z = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0)  # slices run against row × column (left-handed)


@pytest.mark.parametrize("direction", [None, oblique_direction(), FLIPPED_Z], ids=["axial", "oblique", "flipped-z"])
def test_round_trip_values_and_grid(tmp_path, direction):
    src = dose_image(direction)
    path = write_rtdose(src, tmp_path / "dose.dcm", dose_type="PHYSICAL", summation="PLAN")
    ds = pydicom.dcmread(str(path))
    assert ds.SOPClassUID == RT_DOSE_STORAGE and ds.Modality == "RTDOSE"
    assert (ds.DoseUnits, ds.DoseType, ds.DoseSummationType) == ("GY", "PHYSICAL", "PLAN")
    assert int(ds.NumberOfFrames) == 6 and (ds.Rows, ds.Columns) == (7, 9) and ds.BitsAllocated == 32
    offsets = np.array(ds.GridFrameOffsetVector, float)
    np.testing.assert_allclose(offsets, 4.0 * np.arange(6))  # relative, increasing along row × column
    scaling = float(ds.DoseGridScaling)
    back = read_rtdose(path)
    original = sitk.GetArrayFromImage(src)
    # uint32 storage: quantisation error <= DoseGridScaling / 2 (max / 2^33, ~1e-9 relative here)
    if direction == FLIPPED_Z:  # same voxels, stored from the other end: the grid is re-expressed
        assert np.allclose(np.array(back.GetDirection()).reshape(3, 3)[:, 2], [0, 0, 1])
        np.testing.assert_allclose(back.GetOrigin(), src.TransformIndexToPhysicalPoint([0, 0, 5]), atol=1e-6)
        original = original[::-1]
    else:
        assert same_grid(back, src, tolerance_mm=1e-6)
    np.testing.assert_allclose(sitk.GetArrayFromImage(back), original, rtol=0, atol=0.5 * scaling * (1 + 1e-9))
    resampled = sitk.Resample(back, src, sitk.Transform(), sitk.sitkNearestNeighbor, -1.0)
    np.testing.assert_allclose(sitk.GetArrayFromImage(resampled), sitk.GetArrayFromImage(src), atol=scaling)
    assert back.GetMetaData("DoseUnits") == "GY" and back.GetMetaData("DeepDose.units") == "Gy"
    assert back.GetMetaData("DoseSummationType") == "PLAN"


@pytest.mark.parametrize("direction", [None, oblique_direction()], ids=["axial", "oblique"])
def test_simpleitk_reads_the_same_grid_and_raw_values(tmp_path, direction):
    src = dose_image(direction)
    path = write_rtdose(src, tmp_path / "dose.dcm")
    gdcm = sitk.ReadImage(str(path))
    assert same_grid(gdcm, src, tolerance_mm=1e-5)
    scaling = float(pydicom.dcmread(str(path)).DoseGridScaling)
    values = sitk.GetArrayFromImage(gdcm).astype(np.float64)
    if np.issubdtype(sitk.GetArrayViewFromImage(gdcm).dtype, np.integer):  # GDCM 2.5: stored values, unscaled
        values = values * scaling
    np.testing.assert_allclose(values, sitk.GetArrayFromImage(src), atol=0.5 * scaling * (1 + 1e-9))


def test_units_conversion_and_dose_rate_policy(tmp_path):
    src = dose_image()
    milli = sitk.GetImageFromArray(sitk.GetArrayFromImage(src) * 1e3)
    milli.CopyInformation(src)
    back = read_rtdose(write_rtdose(milli, tmp_path / "mgy.dcm", unit="mGy"))
    np.testing.assert_allclose(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(src), rtol=1e-8)
    with pytest.raises(DeepDoseInputError, match="absorbed dose"):
        write_rtdose(src, tmp_path / "rate.dcm", unit="mGy/h")
    path = write_rtdose(src, tmp_path / "rate.dcm", unit="mGy/h", units="RELATIVE")
    ds = pydicom.dcmread(str(path))
    assert ds.DoseUnits == "RELATIVE" and ds.DoseComment == "DOSE RATE mGy/h"
    assert "DOSE RATE mGy/h" in ds.SeriesDescription
    np.testing.assert_allclose(sitk.GetArrayFromImage(read_rtdose(path)), sitk.GetArrayFromImage(src), rtol=1e-8)
    assert not read_rtdose(path).HasMetaDataKey("DeepDose.units")


def test_bad_requests_are_refused(tmp_path):
    src = dose_image()
    path = write_rtdose(src, tmp_path / "dose.dcm")
    with pytest.raises(DeepDoseInputError, match="exists"):
        write_rtdose(src, path)
    write_rtdose(src, path, overwrite=True, dose_type="effective", summation="record")
    assert pydicom.dcmread(str(path)).DoseType == "EFFECTIVE"
    negative = sitk.GetImageFromArray(-sitk.GetArrayFromImage(src))
    for kwargs, match in (({"dose_image": negative}, "non-negative"), ({"units": "CGY"}, "GY"),
                          ({"dose_type": "BIOLOGICAL"}, "DoseType"), ({"summation": "ALL"}, "DoseSummationType")):
        with pytest.raises(DeepDoseInputError, match=match):
            write_rtdose(**{"dose_image": src, "path_or_dir": tmp_path / "x.dcm", **kwargs})
    sheared = dose_image()
    sheared.SetDirection((1.0, 0.0, 0.3, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    with pytest.raises(DeepDoseInputError, match="sheared"):
        write_rtdose(sheared, tmp_path / "s.dcm")
    with pytest.raises(DeepDoseInputError, match="not a DICOM RT Dose"):
        read_rtdose(write_pet_series(tmp_path / "pet", np.zeros((2, 3, 3)))[0])


def test_placeholder_patient_without_reference(tmp_path):
    path = write_rtdose(dose_image(), tmp_path)  # a folder: the file name comes from the SOP instance UID
    ds = pydicom.dcmread(str(path))
    assert path.parent == tmp_path and path.name == f"RTDOSE_{ds.SOPInstanceUID}.dcm"
    assert ds.PatientID == PLACEHOLDER_PATIENT_ID and "NO REFERENCE" in str(ds.PatientName)
    assert ds.FrameOfReferenceUID and ds.StudyInstanceUID


def test_reference_ct_gives_patient_study_and_frame_of_reference(tmp_path):
    ct_dir = tmp_path / "ct"
    write_pet_series(ct_dir, np.zeros((5, 8, 8)), origin_mm=(-25.0, 30.0, -110.0), spacing_mm=(5.0, 5.0, 5.0),
                     units=None, modality="CT", tags={"PatientName": "Doe^Jane", "PatientID": "P123"})
    ct = pydicom.dcmread(str(next(ct_dir.iterdir())))
    path = write_rtdose(dose_image(), tmp_path / "out" / "dose.dcm", reference_ct_dicom_dir=ct_dir)
    ds = pydicom.dcmread(str(path))
    assert (ds.PatientID, str(ds.PatientName)) == ("P123", "Doe^Jane")
    assert ds.StudyInstanceUID == ct.StudyInstanceUID and ds.FrameOfReferenceUID == ct.FrameOfReferenceUID
    assert ds.SeriesInstanceUID != ct.SeriesInstanceUID
    ds2 = pydicom.dcmread(str(write_rtdose(dose_image(), tmp_path / "d2.dcm", reference_ct_dicom_dir=[ct])))
    assert ds2.FrameOfReferenceUID == ct.FrameOfReferenceUID
    with pytest.raises(DeepDoseInputError, match="outside the reference"):
        write_rtdose(dose_image(), ct_dir / "dose.dcm", reference_ct_dicom_dir=ct_dir)
    far = dose_image(origin=(500.0, 500.0, 500.0))
    with pytest.raises(DeepDoseInputError, match="does not overlap"):
        write_rtdose(far, tmp_path / "far.dcm", reference_ct_dicom_dir=ct_dir)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # dicompyler-core uses pydicom APIs due to go in v4
def test_dicompyler_core_reads_the_export(tmp_path):
    import pydicom.dicomio

    if not hasattr(pydicom.dicomio, "read_file"):  # dicompyler-core 0.5.6 imports a name pydicom 3 removed
        pydicom.dicomio.read_file = pydicom.dcmread
    dicomparser = pytest.importorskip("dicompylercore.dicomparser")
    src = dose_image()
    path = write_rtdose(src, tmp_path / "dose.dcm")
    parser = dicomparser.DicomParser(str(path))
    data = parser.GetDoseData()
    assert data["doseunits"] == "GY" and data["dosesummationtype"] == "PLAN" and data["frames"] == 6
    np.testing.assert_allclose(data["lut"][0], -20.0 + 2.5 * np.arange(9))  # x of the columns [mm]
    np.testing.assert_allclose(data["lut"][1], 35.5 + 3.0 * np.arange(7))  # y of the rows [mm]
    plane = parser.GetDoseGrid(-102.25 + 4.0 * 3) * float(data["dosegridscaling"])  # frame 3 by its z
    np.testing.assert_allclose(plane, sitk.GetArrayFromImage(src)[3], atol=float(data["dosegridscaling"]))
