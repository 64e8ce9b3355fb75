"""Results where SlicerRT and DICOM expect them (real MRML of slicer-core; SlicerRT itself is not in slicer-core).

SlicerRT recognises a dose volume by the node attribute ``DicomRtImport.DoseVolume`` and reads its unit
from the **Study** ancestor (``DicomRtImport.DoseUnitName``/``DoseUnitValue``, through
``GetAttributeFromItemAncestor(item, name, "Study")``): the same call is made here on the real subject
hierarchy. RT Dose export is read back with pydicom.
"""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

slicer = pytest.importorskip("slicer", reason="MRML tests need `slicer` (Slicer or pip slicer-core)")

from DeepDoseLib.mrml import (  # noqa: E402
    dose_study_item,
    export_rtdose,
    image_from_volume_node,
    run_dosimetry,
    segmentation_from_labels,
    volume_node_from_image,
)
from DeepDoseLib.mrml.hierarchy import DOSE_UNIT_NAME_ATTRIBUTE, DOSE_UNIT_VALUE_ATTRIBUTE  # noqa: E402


def _sh(scene):
    return slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)


def _dicom_like(scene, node, patient_name="Doe^Jane", study_name="PET/CT 2026-01-01"):
    """Patient > Study > node, as Slicer's DICOM plugins arrange a loaded series."""
    sh = _sh(scene)
    patient = sh.CreateSubjectItem(sh.GetSceneItemID(), patient_name)
    study = sh.CreateStudyItem(patient, study_name)
    item = sh.GetItemByDataNode(node) or sh.CreateItem(study, node)
    sh.SetItemParent(item, study)
    return patient, study


def test_run_lands_under_the_pet_study_with_slicerrt_units(scene, small_case):
    ct_image, pet_image, labels, names = small_case
    ct = volume_node_from_image(scene, ct_image, "CT")
    pet = volume_node_from_image(scene, pet_image, "PET")
    patient, study = _dicom_like(scene, pet)
    organs = segmentation_from_labels(scene, labels, {v: n for v, n in names.items() if n == "liver"}, "Organs")
    result = run_dosimetry(scene, ct, pet, "Ga68", "led", segmentation_node=organs)
    sh = _sh(scene)
    assert sh.GetItemParent(result.folder_item) == study
    dose_item = sh.GetItemByDataNode(result.dose_node)
    assert sh.GetItemAncestorAtLevel(dose_item, "Study") == study
    assert sh.GetItemAncestorAtLevel(dose_item, "Patient") == patient
    # What SlicerRT's DVH logic and Isodose widget read:
    assert result.dose_node.GetAttribute("DicomRtImport.DoseVolume") == "1"
    assert sh.GetAttributeFromItemAncestor(dose_item, DOSE_UNIT_NAME_ATTRIBUTE, "Study") == "mGy/h"
    assert sh.GetAttributeFromItemAncestor(dose_item, DOSE_UNIT_VALUE_ATTRIBUTE, "Study") == "1"
    # DVH table and chart are in the same study (SlicerRT's DVH module lists them with the dose).
    for node in result.dvh_table_nodes + [result.chart_node, result.isodose_model_node]:
        assert sh.GetItemAncestorAtLevel(sh.GetItemByDataNode(node), "Study") == study
    # The input stayed where it was.
    assert sh.GetItemParent(sh.GetItemByDataNode(pet)) == study


def test_study_of_another_dose_unit_and_non_dicom_inputs(scene):
    sh = _sh(scene)
    pet = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "PET")
    patient, study = _dicom_like(scene, pet)
    sh.SetItemAttribute(study, DOSE_UNIT_NAME_ATTRIBUTE, "Gy")  # e.g. an RT Dose imported by SlicerRT
    rate_study = dose_study_item(scene, pet, "mGy/h")
    assert rate_study != study and sh.GetItemParent(rate_study) == patient
    assert sh.GetItemAttribute(study, DOSE_UNIT_NAME_ATTRIBUTE) == "Gy"  # not overwritten
    assert dose_study_item(scene, pet, "mGy/h") == rate_study  # reused by the next run

    loose = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "PET from NIfTI")
    created = dose_study_item(scene, loose, "mGy/h")
    assert sh.GetItemLevel(created) == "Study" and sh.GetItemLevel(sh.GetItemParent(created)) == "Patient"
    assert sh.GetItemAttribute(created, DOSE_UNIT_NAME_ATTRIBUTE) == "mGy/h"


def _dose_node(scene, unit, values_zyx, spacing=(2.0, 3.0, 4.0), origin=(-10.0, 5.0, 20.0)):
    from DeepDoseLib.mrml.display import set_dose_units

    image = sitk.GetImageFromArray(values_zyx.astype(np.float32))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    node = volume_node_from_image(scene, image, "dose %s" % unit)
    set_dose_units(node, unit)
    return node, image


def test_rt_dose_export_round_trips_through_pydicom(scene, tmp_path):
    import pydicom

    from DeepDoseLib.rtdose import read_rtdose

    rng = np.random.default_rng(3)
    values = rng.uniform(0.0, 5.0, size=(6, 7, 8))
    absorbed, image = _dose_node(scene, "Gy", values)
    path = export_rtdose(absorbed, tmp_path / "absorbed.dcm")
    ds = pydicom.dcmread(path)
    assert ds.Modality == "RTDOSE" and ds.DoseUnits == "GY" and ds.DoseType == "PHYSICAL"
    assert (ds.Rows, ds.Columns, int(ds.NumberOfFrames)) == (7, 8, 6)
    np.testing.assert_allclose([float(v) for v in ds.PixelSpacing], [3.0, 2.0])  # row spacing (y), column (x)
    np.testing.assert_allclose([float(v) for v in ds.GridFrameOffsetVector], np.arange(6) * 4.0)
    np.testing.assert_allclose([float(v) for v in ds.ImagePositionPatient], image.GetOrigin(), atol=1e-4)
    stored = ds.pixel_array * float(ds.DoseGridScaling)
    np.testing.assert_allclose(stored, values, atol=float(ds.DoseGridScaling))
    back = read_rtdose(path)
    np.testing.assert_allclose(sitk.GetArrayFromImage(back), values, atol=1e-4)

    rate, _ = _dose_node(scene, "mGy/h", values)
    ds = pydicom.dcmread(export_rtdose(rate, tmp_path / "rate.dcm"))
    assert ds.DoseUnits == "RELATIVE" and "DOSE RATE mGy/h" in ds.DoseComment  # never GY for a rate
    assert "DOSE RATE mGy/h" in ds.SeriesDescription
    np.testing.assert_allclose(ds.pixel_array * float(ds.DoseGridScaling), values, atol=float(ds.DoseGridScaling))

    plain = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "not a dose")
    with pytest.raises(ValueError, match="dose volume"):
        export_rtdose(plain, tmp_path / "x.dcm")


def test_rt_dose_joins_the_pet_patient_and_study(scene, tmp_path, dicom_factory):
    """With the PET's DICOM files (found through the node's DICOM.instanceUIDs), the RT Dose joins its study."""
    import pydicom

    from DeepDoseLib.mrml import dicom_files_of_node

    series = dicom_factory.write_pet_series(tmp_path / "pet", np.full((4, 8, 8), 100, np.int16),
                                              spacing_mm=(3.0, 3.0, 4.0))
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in series]
    pet_image = sitk.ReadImage([str(f) for f in series])
    pet = volume_node_from_image(scene, pet_image, "PET")
    pet.SetAttribute("DICOM.instanceUIDs", " ".join(h.SOPInstanceUID for h in headers))
    by_uid = {h.SOPInstanceUID: str(f) for h, f in zip(headers, series)}
    files = dicom_files_of_node(pet, by_uid.get)
    assert sorted(files) == sorted(map(str, series))
    dose, _ = _dose_node(scene, "mGy/h", np.ones((4, 8, 8)), spacing=pet_image.GetSpacing(), origin=pet_image.GetOrigin())
    ds = pydicom.dcmread(export_rtdose(dose, tmp_path / "out" / "dose.dcm", reference_files=files))
    assert ds.StudyInstanceUID == headers[0].StudyInstanceUID and ds.PatientID == headers[0].PatientID
    assert ds.FrameOfReferenceUID == headers[0].FrameOfReferenceUID
