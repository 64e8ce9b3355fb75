"""Image I/O with units, CT→PET resampling in physical space, and bad-input refusals."""
from __future__ import annotations

import re

import numpy as np
import pytest
import SimpleITK as sitk

import DeepDoseLib as dd
from DeepDoseLib.errors import DeepDoseInputError
from DeepDoseLib.geometry import check_ct_covers_activity, physical_extent_mm, resample_to_grid, same_grid

from conftest import sha256_of_tree


def image(array, spacing=(2.0, 2.0, 2.0), origin=(0.0, 0.0, 0.0), direction=None):
    im = sitk.GetImageFromArray(np.asarray(array, dtype=np.float32))
    im.SetSpacing(spacing)
    im.SetOrigin(origin)
    if direction is not None:
        im.SetDirection(direction)
    return im


def rotation_z(deg):
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return (c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_roundtrip_formats_keep_geometry(tmp_path, suffix):
    src = image(np.random.default_rng(0).uniform(0, 1e4, (5, 6, 7)), (1.5, 2.5, 3.0), (-10.0, 4.0, 7.5),
                rotation_z(90))
    path = dd.write_image(src, tmp_path / f"pet{suffix}")
    back = dd.read_pet(path).image
    assert same_grid(src, back)
    np.testing.assert_allclose(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(src), rtol=1e-6)


def test_pet_unit_conversion_and_note(tmp_path):
    path = dd.write_image(image(np.full((3, 3, 3), 2.5)), tmp_path / "pet_kbq.nii.gz")
    loaded = dd.read_pet(path, pet_unit="kBq/mL")
    assert sitk.GetArrayFromImage(loaded.image).max() == pytest.approx(2500.0)
    assert "kBq/mL" in loaded.notes[0]
    with pytest.raises(dd.DeepDoseInputError, match="Unknown PET unit"):
        dd.read_pet(path, pet_unit="SUV")


def test_suspiciously_small_pet_is_flagged(tmp_path):
    path = dd.write_image(image(np.full((3, 3, 3), 4.2)), tmp_path / "suv.nii.gz")
    assert any("looks" in n or "SUV" in n for n in dd.read_pet(path).notes)


def test_write_never_overwrites_inputs_or_existing_files(tmp_path):
    src = tmp_path / "ct.nii.gz"
    dd.write_image(image(np.zeros((3, 3, 3))), src)
    before = sha256_of_tree(src)
    with pytest.raises(dd.DeepDoseInputError, match="exists"):
        dd.write_image(image(np.ones((3, 3, 3))), src)
    with pytest.raises(dd.DeepDoseInputError, match="input"):
        dd.write_image(image(np.ones((3, 3, 3))), src, overwrite=True, protected=[src])
    assert sha256_of_tree(src) == before


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(dd.DeepDoseInputError, match="not found"):
        dd.read_ct(tmp_path / "nope.nii.gz")
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not an image")
    with pytest.raises(dd.DeepDoseInputError, match="Cannot read"):
        dd.read_ct(bad)


def test_label_map_is_not_accepted_as_ct(tmp_path):
    path = dd.write_image(image(np.random.default_rng(0).integers(0, 5, (4, 4, 4))), tmp_path / "labels.nii.gz")
    with pytest.raises(dd.DeepDoseInputError, match="not a CT in HU"):
        dd.read_ct(path)


def test_resampling_is_done_in_physical_space():
    """A CT with another spacing, origin and a 90° rotated direction lands where it physically is."""
    pet = image(np.zeros((10, 12, 14)), (4.0, 4.0, 4.0), (-28.0, -24.0, -20.0))
    # CT: 2 mm voxels, rotated 90° about z; a bone marker block at a known physical position
    ct_arr = np.full((40, 40, 40), 0.0, dtype=np.float32)
    ct = image(ct_arr, (2.0, 2.0, 2.0), (40.0, -40.0, -40.0), rotation_z(90))
    marker_phys = (8.0, 4.0, 0.0)
    idx = ct.TransformPhysicalPointToIndex(marker_phys)
    arr = sitk.GetArrayFromImage(ct)
    arr[idx[2] - 2:idx[2] + 3, idx[1] - 2:idx[1] + 3, idx[0] - 2:idx[0] + 3] = 1000.0
    ct2 = sitk.GetImageFromArray(arr)
    ct2.CopyInformation(ct)
    on_pet = resample_to_grid(ct2, pet, default_value=-1000.0)
    assert same_grid(on_pet, pet)
    pet_idx = pet.TransformPhysicalPointToIndex(marker_phys)
    assert sitk.GetArrayFromImage(on_pet)[pet_idx[2], pet_idx[1], pet_idx[0]] == pytest.approx(1000.0)
    assert sitk.GetArrayFromImage(on_pet).max() == pytest.approx(1000.0)


def test_extent_includes_voxel_faces():
    lo, hi = physical_extent_mm(image(np.zeros((2, 3, 4)), (1.0, 2.0, 3.0), (0.0, 0.0, 0.0)))
    np.testing.assert_allclose(lo, [-0.5, -1.0, -1.5])
    np.testing.assert_allclose(hi, [3.5, 5.0, 4.5])


def test_non_overlapping_pet_ct_refused():
    pet = image(np.full((5, 5, 5), 1e4), origin=(0.0, 0.0, 0.0))
    ct = image(np.zeros((5, 5, 5)), origin=(500.0, 0.0, 0.0))
    with pytest.raises(dd.DeepDoseInputError, match="do not overlap"):
        dd.compute_dose_rate(ct, pet, "Ga68")


def test_partially_covered_activity_refused_and_allowed_within_tolerance():
    act = np.zeros((10, 10, 10), np.float32)
    act[:, :, 7:] = 1e4  # activity in x index 7..9
    pet = image(act)
    ct = image(np.zeros((10, 10, 6)))  # CT covers x index 0..5 only
    with pytest.raises(dd.DeepDoseInputError, match="outside the CT field of view"):
        check_ct_covers_activity(ct, pet)
    act2 = np.zeros((10, 10, 10), np.float32)
    act2[:, :, :5] = 1e4
    act2[0, 0, 9] = 1.0  # negligible activity outside
    dose = dd.compute_dose_rate(ct, image(act2), "Ga68")
    assert np.isfinite(sitk.GetArrayFromImage(dose)).all()


def test_nan_activity_refused_and_negative_refused_or_clipped():
    ct = image(np.zeros((4, 4, 4)))
    act = np.full((4, 4, 4), 1e4, np.float32)
    act[1, 1, 1] = np.nan
    with pytest.raises(dd.DeepDoseInputError, match="NaN"):
        dd.compute_dose_rate(ct, image(act), "Ga68")
    act[1, 1, 1] = -50.0
    pet = image(act)
    with pytest.raises(dd.DeepDoseInputError, match="negative"):
        dd.compute_dose_rate(ct, pet, "Ga68")
    dose = sitk.GetArrayFromImage(dd.compute_dose_rate(ct, pet, "Ga68", clip_negative=True))
    assert dose[1, 1, 1] == 0.0
    # the caller's image is untouched
    assert sitk.GetArrayFromImage(pet)[1, 1, 1] == -50.0


def test_inputs_not_modified_by_compute(demo_case):
    ct_before = sitk.GetArrayFromImage(demo_case.ct).copy()
    pet_before = sitk.GetArrayFromImage(demo_case.pet).copy()
    dd.compute_dose_rate(demo_case.ct, demo_case.pet, "Ga68", clip_negative=True)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(demo_case.ct), ct_before)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(demo_case.pet), pet_before)


def test_real_ct_dicom_series_reads_as_hu(shared_data):
    folder = shared_data / "totalsegmentator_example" / "example_ct_dicom"
    if not folder.is_dir():
        pytest.skip("example CT DICOM series absent")
    before = sha256_of_tree(folder)
    ct = dd.read_ct(folder).image
    arr = sitk.GetArrayFromImage(ct)
    assert arr.shape[0] == 20
    assert arr.min() <= -900 and 0 < np.median(arr[arr > -200]) < 200  # air and soft tissue in HU
    assert sha256_of_tree(folder) == before


@pytest.mark.parametrize("keep_bytes", [0, 400, 1000, 3000])
def test_a_damaged_ct_slice_is_refused_not_left_out(shared_data, tmp_path, keep_bytes):
    """The real CT series with its first slice cut short: GDCM leaves such a slice out of the series (19 of 20 read,
    no gap to see), so the folder is refused, naming the file. A note and a complete non-image DICOM object (an RT
    Structure Set) beside the series are accepted."""
    import shutil

    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, RTStructureSetStorage, generate_uid

    folder = shared_data / "totalsegmentator_example" / "example_ct_dicom"
    if not folder.is_dir():
        pytest.skip("example CT DICOM series absent")
    copy = tmp_path / "ct"
    shutil.copytree(folder, copy)
    (copy / "notes.txt").write_text("not an image: ignored")
    rt = pydicom.Dataset()
    rt.file_meta = FileMetaDataset()
    rt.file_meta.MediaStorageSOPClassUID = RTStructureSetStorage
    rt.file_meta.MediaStorageSOPInstanceUID = rt.SOPInstanceUID = generate_uid()
    rt.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    rt.SOPClassUID, rt.Modality = RTStructureSetStorage, "RTSTRUCT"
    rt.save_as(copy / "RS.structures.dcm", enforce_file_format=True)
    assert sitk.GetArrayFromImage(dd.read_ct(copy).image).shape[0] == 20
    first = sorted(p for p in copy.iterdir() if p.name.startswith("CT."))[0]
    first.write_bytes(first.read_bytes()[:keep_bytes])
    with pytest.raises(DeepDoseInputError, match=re.escape(first.name)):
        dd.read_ct(copy)


def test_grid_option_puts_dose_on_another_grid():
    ct = image(np.zeros((8, 8, 8)))
    pet = image(np.full((8, 8, 8), 1e4))
    grid = image(np.zeros((4, 4, 4)), (4.0, 4.0, 4.0), (1.0, 1.0, 1.0))
    dose = dd.compute_dose_rate(ct, pet, "Ga68", grid=grid)
    assert same_grid(dose, grid)
