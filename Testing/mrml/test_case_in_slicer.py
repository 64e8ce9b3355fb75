"""A generated case loads into the real MRML scene (slicer-core): CT/PET volumes with exact geometry and
the labels as a segmentation whose segments carry the organ names and exactly the label voxels."""
from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

slicer = pytest.importorskip("slicer", reason="MRML tests need `slicer` (Slicer or `pip install slicer-core`)")
import vtk  # noqa: E402


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory):
    from DeepDoseLib.dataset import DatasetConfig, build_dataset

    out = tmp_path_factory.mktemp("slicer_case")
    # LED stand-in dose engine: this test is about loading into MRML, not about the ground truth
    build_dataset(out, DatasetConfig(n_cases=1, tracers=["Ga68-DOTATATE"], spacing_mm=6.0, engine="led",
                                     val_fraction=0.0, test_fraction=0.0, seed=2), progress=False)
    return out / "cases" / "case_00000"


def test_case_loads_with_named_segments(scene, case_dir):
    from DeepDoseLib.mrml import image_from_volume_node
    from DeepDoseLib.mrml.segmentations import load_case_into_scene

    nodes = load_case_into_scene(scene, case_dir, prefix="Case")
    ct = sitk.ReadImage(str(case_dir / "ct.nii.gz"))
    back = image_from_volume_node(nodes["ct"])
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(ct))
    np.testing.assert_allclose(back.GetOrigin(), ct.GetOrigin(), atol=1e-6)
    assert {"ct", "pet", "true_activity", "dose_rate", "labels"} <= set(nodes)

    names = {int(k): v for k, v in json.loads((case_dir / "labels.json").read_text()).items()}
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(case_dir / "labels.nii.gz")))
    present = {int(v) for v in np.unique(labels) if v != 0}
    segmentation = nodes["labels"].GetSegmentation()
    assert segmentation.GetNumberOfSegments() == len(present)
    by_name = {segmentation.GetNthSegment(i).GetName(): segmentation.GetNthSegmentID(i)
               for i in range(segmentation.GetNumberOfSegments())}
    assert set(by_name) == {names[v] for v in present}
    assert "liver" in by_name and "kidney_left_cortex" in by_name and "spleen" in by_name

    # every segment holds exactly its label's voxels: export back to a labelmap on the CT grid
    exported = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "exported")
    ids = vtk.vtkStringArray()
    for name in ("liver", "spleen", "kidney_left_cortex"):
        ids.InsertNextValue(by_name[name])
    assert slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(nodes["labels"], ids, exported,
                                                                                 nodes["ct"])
    out = sitk.GetArrayFromImage(image_from_volume_node(exported))
    value_of = {v: k for k, v in names.items()}
    for index, name in enumerate(("liver", "spleen", "kidney_left_cortex"), start=1):
        np.testing.assert_array_equal(out == index, labels == value_of[name], err_msg=name)
