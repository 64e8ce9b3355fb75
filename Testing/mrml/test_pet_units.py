"""Units that cannot go wrong in the GUI path (DeepDoseLib.mrml.pet_units, used by the module's logic).

DICOM PET volumes are converted from their own headers with the command line's conversion
(DeepDoseLib.dicom_pet.series_conversion) or refused with the tag named; other volumes are read in the
declared unit x SPECT calibration factor. Real MRML (slicer-core) and DICOM files written with pydicom;
``file_for_instance`` maps SOP Instance UIDs to those files as Slicer's DICOM database does.
"""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

slicer = pytest.importorskip("slicer", reason="MRML tests need `slicer` (Slicer or pip slicer-core)")

from DeepDoseLib.errors import DeepDoseInputError  # noqa: E402
from DeepDoseLib.mrml import image_from_volume_node, pet_activity, run_dosimetry, volume_node_from_image  # noqa: E402


def _dicom_volume(factory, scene, tmp_path, units="GML", tags=None, name="PET", drop=()):
    """A PET volume node as Slicer's DICOM plugin loads it: values = stored x slope + intercept, and
    ``DICOM.instanceUIDs``; returns (node, {uid: file})."""
    import pydicom

    stored = (np.arange(4 * 6 * 5).reshape(4, 6, 5) % 17 + 1).astype(np.int16)

    def edit(k, ds):
        for keyword in drop:
            if keyword in ds:
                delattr(ds, keyword)

    files = factory.write_pet_series(tmp_path / name, stored, units=units, tags=tags, per_slice=edit,
                                     slopes=[0.5, 0.5, 0.5, 0.5])
    image = sitk.ReadImage([str(f) for f in files], sitk.sitkFloat32)
    node = volume_node_from_image(scene, image, name)
    uids = [pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files]
    node.SetAttribute("DICOM.instanceUIDs", " ".join(uids))
    return node, dict(zip(uids, map(str, files))), files


def test_dicom_suv_is_converted_as_the_command_line_does(scene, tmp_path, dicom_factory):
    from DeepDoseLib.dicom_pet import read_pet_dicom_series

    node, by_uid, files = _dicom_volume(dicom_factory, scene, tmp_path, tags=dicom_factory.suv_tags())
    activity = pet_activity(scene, node, file_for_instance=by_uid.get, pet_unit="MBq/mL")  # unit chooser ignored
    assert activity.from_dicom and activity.temporary and activity.node is not node
    command_line = read_pet_dicom_series(files[0].parent)
    np.testing.assert_allclose(sitk.GetArrayFromImage(image_from_volume_node(activity.node)),
                               sitk.GetArrayFromImage(command_line), rtol=1e-6)
    assert activity.reference_time == command_line.GetMetaData("DeepDose.reference_time") != ""
    assert "SUV" in activity.conversion and activity.reference_time in activity.summary()
    activity.discard()
    assert activity.node.GetScene() is None and node.GetScene() is scene  # the input stays


@pytest.mark.parametrize("units, tags, drop, tag_named", [
    ("GML", "suv", ("PatientWeight",), "PatientWeight (0010,1030)"),
    ("GML", "suv", ("DecayCorrection",), "DecayCorrection (0054,1102)"),
    ("CNTS", None, (), "(7053,1009)"),
    (None, None, (), "Units (0054,1001)"),
])
def test_dicom_pet_without_the_tags_to_convert_is_refused_naming_the_tag(scene, tmp_path, units, tags, drop,
                                                                         tag_named, dicom_factory):
    tags = dicom_factory.suv_tags() if tags == "suv" else tags
    node, by_uid, _ = _dicom_volume(dicom_factory, scene, tmp_path, units=units, tags=tags, drop=drop)
    with pytest.raises(DeepDoseInputError) as error:
        pet_activity(scene, node, file_for_instance=by_uid.get)
    assert tag_named in str(error.value)


def test_dicom_volume_whose_files_are_not_in_the_database_is_refused(scene, tmp_path, dicom_factory):
    node, by_uid, _ = _dicom_volume(dicom_factory, scene, tmp_path, units="BQML")
    with pytest.raises(DeepDoseInputError, match="not in the DICOM database"):
        pet_activity(scene, node, file_for_instance={}.get)
    activity = pet_activity(scene, node, file_for_instance=by_uid.get)
    assert activity.node is node and not activity.temporary  # BQML: already Bq/mL, no copy


def test_declared_kBq_per_mL_gives_the_dose_of_the_Bq_per_mL_volume_x_1000(scene, small_case):
    ct_image, pet_image, _labels, _names = small_case
    ct = volume_node_from_image(scene, ct_image, "CT")
    kbq = volume_node_from_image(scene, pet_image / 1000.0, "PET kBq")
    bq = volume_node_from_image(scene, pet_image, "PET Bq")
    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    study = sh.CreateStudyItem(sh.CreateSubjectItem(sh.GetSceneItemID(), "Doe^Jane"), "PET/CT")
    sh.SetItemParent(sh.GetItemByDataNode(kbq) or sh.CreateItem(study, kbq), study)
    declared = pet_activity(scene, kbq, pet_unit="kBq/mL", ct_node=ct)
    plain = pet_activity(scene, bq, pet_unit="Bq/mL", ct_node=ct)
    assert declared.temporary and not plain.temporary
    assert declared.check.total_MBq == pytest.approx(plain.check.total_MBq, rel=1e-6)
    doses = []
    for activity in (declared, plain):
        result = run_dosimetry(scene, ct, activity.node, "Ga68", "led")
        if activity is declared:  # the converted copy sits in the user's study, so the run folder does too
            assert sh.GetItemAncestorAtLevel(sh.GetItemByDataNode(result.dose_node), "Study") == study
        activity.finish(result.dose_node)
        doses.append(sitk.GetArrayFromImage(image_from_volume_node(result.dose_node)))
    np.testing.assert_allclose(doses[0], doses[1], rtol=1e-5, atol=1e-6 * doses[1].max())
    assert doses[1].max() > 0 and kbq.GetScene() is scene and declared.node.GetScene() is None

    # Declared in Bq/mL, the kBq/mL values look 1000x too weak: the total-activity check says so.
    wrong = pet_activity(scene, kbq, pet_unit="Bq/mL", ct_node=ct)
    assert wrong.check.total_MBq == pytest.approx(plain.check.total_MBq / 1000, rel=1e-6)
    assert plain.warnings == [] and any("Implausibly low" in w for w in wrong.warnings)
    spect = pet_activity(scene, kbq, pet_unit="kBq/mL", calibration_factor=2.0, ct_node=ct)
    assert spect.check.total_MBq == pytest.approx(2 * plain.check.total_MBq, rel=1e-6)
    with pytest.raises(DeepDoseInputError, match="calibration factor"):
        pet_activity(scene, kbq, calibration_factor=0.0)
