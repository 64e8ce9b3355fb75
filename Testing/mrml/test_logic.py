"""CT + PET nodes -> dose-rate node: geometry, values, display, inputs untouched, NRRD output."""
from __future__ import annotations

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="MRML tests need `slicer` (Slicer or pip slicer-core)")

import SimpleITK as sitk  # noqa: E402

import DeepDoseLib  # noqa: E402
from DeepDoseLib.errors import DeepDoseInputError  # noqa: E402
from DeepDoseLib.mrml import (  # noqa: E402
    DOSE_VOLUME_ATTRIBUTE,
    array_from_volume_node,
    compute_dose_rate_node,
    create_headless_scene,
    get_scene,
    image_from_volume_node,
    release_headless_scene,
    slice_composite_nodes,
    volume_geometry,
    volume_node_from_image,
)
from DeepDoseLib.mrml.display import DOSE_WASH_ATTRIBUTE  # noqa: E402

# Geometry is copied, never resampled: 1e-9 mm is far above double round-off (~1e-13 mm here).
GEOMETRY_TOL = 1e-9


def _oblique_pet(pet):
    """The demo PET resampled to a rotated, flipped, coarser 5 mm grid (a PET not aligned with CT)."""
    angle = 0.3
    rotation = np.array(
        [[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0.0, 0.0, 1.0]]
    ) @ np.diag([1.0, 1.0, -1.0])
    reference = sitk.Image([60, 40, 50], sitk.sitkFloat32)
    reference.SetSpacing((5.0, 5.0, 5.0))
    reference.SetDirection(tuple(rotation.ravel()))
    centre = np.array(pet.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in pet.GetSize()]))
    half_extent = rotation @ (np.array([59, 39, 49]) * 5.0 / 2)
    reference.SetOrigin(tuple(centre - half_extent))
    return sitk.Resample(pet, reference, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)


def assert_same_geometry(actual, expected, tol=GEOMETRY_TOL):
    assert actual.GetSize() == expected.GetSize()
    np.testing.assert_allclose(actual.GetOrigin(), expected.GetOrigin(), rtol=0, atol=tol)
    np.testing.assert_allclose(actual.GetSpacing(), expected.GetSpacing(), rtol=0, atol=tol)
    np.testing.assert_allclose(actual.GetDirection(), expected.GetDirection(), rtol=0, atol=tol)


def node_snapshot(node):
    """Everything a computation could accidentally change on an input node."""
    display = node.GetDisplayNode()
    return {
        "array": array_from_volume_node(node),
        "geometry": volume_geometry(node),
        "name": node.GetName(),
        "attributes": {name: node.GetAttribute(name) for name in node.GetAttributeNames() or ()},
        "node_mtime": node.GetMTime(),
        "image_mtime": node.GetImageData().GetMTime(),
        "display_id": node.GetDisplayNodeID(),
        "window_level": (display.GetWindow(), display.GetLevel()) if display else None,
        "color": display.GetColorNodeID() if display else None,
    }


def assert_snapshot_equal(before, after):
    np.testing.assert_array_equal(after.pop("array"), before.pop("array"))
    assert after == before


@pytest.fixture(params=["demo_grid", "oblique_pet_grid"])
def case_nodes(request, scene, demo_case):
    """(ct_image, pet_image, ct_node, pet_node) on the demo grid or with an oblique PET grid."""
    ct_image = demo_case.ct
    pet_image = demo_case.pet if request.param == "demo_grid" else _oblique_pet(demo_case.pet)
    ct_node = volume_node_from_image(scene, ct_image, "CT")
    pet_node = volume_node_from_image(scene, pet_image, "PET")
    return ct_image, pet_image, ct_node, pet_node


def test_dose_node_geometry_values_and_metadata(scene, demo_case, case_nodes):
    ct_image, pet_image, ct_node, pet_node = case_nodes
    dose_node = compute_dose_rate_node(scene, ct_node, pet_node, demo_case.nuclide, method="led")

    assert dose_node.GetScene() is scene
    assert dose_node.GetName() == "PET dose rate (mGy/h, LED %s)" % demo_case.nuclide
    dose_image = image_from_volume_node(dose_node)
    assert_same_geometry(dose_image, pet_image)
    # The bridge only converts: same images in -> same numbers out (the core is deterministic on
    # CPU; 1e-6 relative leaves room for float32 summation order only).
    expected = DeepDoseLib.compute_dose_rate(ct_image, pet_image, demo_case.nuclide, "led")
    np.testing.assert_allclose(
        sitk.GetArrayFromImage(dose_image), sitk.GetArrayFromImage(expected), rtol=1e-6, atol=0
    )
    assert float(sitk.GetArrayFromImage(dose_image).max()) > 0

    assert dose_node.GetAttribute(DOSE_VOLUME_ATTRIBUTE) == "1"
    assert dose_node.GetAttribute("DeepDose.Unit") == "mGy/h"
    assert dose_node.GetAttribute("DeepDose.Method") == "led"
    assert dose_node.GetAttribute("DeepDose.Nuclide") == demo_case.nuclide
    assert dose_node.GetAttribute("DeepDose.Version") == DeepDoseLib.__version__
    assert dose_node.GetVoxelValueUnits().GetCodeValue() == "mGy/h"
    assert dose_node.GetVoxelValueUnits().GetCodingSchemeDesignator() == "UCUM"
    assert dose_node.GetNodeReference("DeepDosePET") is pet_node
    assert dose_node.GetNodeReference("DeepDoseCT") is ct_node


def test_dose_display_and_slice_views(scene, demo_case):
    ct_node = volume_node_from_image(scene, demo_case.ct, "CT")
    pet_node = volume_node_from_image(scene, demo_case.pet, "PET")
    dose_node = compute_dose_rate_node(scene, ct_node, pet_node, demo_case.nuclide)
    max_dose = float(array_from_volume_node(dose_node).max())

    display = dose_node.GetDisplayNode()
    color_node = display.GetColorNode()
    assert color_node is not None and color_node.GetAttribute(DOSE_WASH_ATTRIBUTE) == "1"
    assert color_node.GetNumberOfColors() == 256
    assert not display.GetAutoWindowLevel()
    assert display.GetWindowLevelMin() == pytest.approx(0.0, abs=1e-6 * max_dose)
    assert display.GetWindowLevelMax() == pytest.approx(max_dose, rel=1e-6)
    assert display.GetApplyThreshold()
    assert display.GetLowerThreshold() == pytest.approx(0.01 * max_dose, rel=1e-6)
    assert display.GetUpperThreshold() == pytest.approx(max_dose, rel=1e-6)

    composites = slice_composite_nodes(scene)
    assert sorted(c.GetLayoutName() for c in composites) == ["Green", "Red", "Yellow"]
    for composite in composites:
        assert composite.GetForegroundVolumeID() == dose_node.GetID()
        assert composite.GetBackgroundVolumeID() == ct_node.GetID()
        assert composite.GetForegroundOpacity() == pytest.approx(0.5)

    # A second dose reuses the scene's dose-wash table instead of adding another one.
    second = compute_dose_rate_node(scene, ct_node, pet_node, "F18")
    assert second.GetDisplayNode().GetColorNodeID() == color_node.GetID()


def test_inputs_are_not_modified(scene, demo_case, case_nodes):
    _, _, ct_node, pet_node = case_nodes
    before = [node_snapshot(ct_node), node_snapshot(pet_node)]
    compute_dose_rate_node(scene, ct_node, pet_node, demo_case.nuclide, clip_negative=True)
    after = [node_snapshot(ct_node), node_snapshot(pet_node)]
    for b, a in zip(before, after):
        assert_snapshot_equal(b, a)


def test_output_node_is_reused(scene, demo_case):
    ct_node = volume_node_from_image(scene, demo_case.ct, "CT")
    pet_node = volume_node_from_image(scene, demo_case.pet, "PET")
    output = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "my dose")
    result = compute_dose_rate_node(scene, ct_node, pet_node, "Ga68", output_node=output)
    assert result is output and result.GetName() == "my dose"
    count = scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")
    again = compute_dose_rate_node(scene, ct_node, pet_node, "F18", output_node=output)
    assert again is output and again.GetAttribute("DeepDose.Nuclide") == "F18"
    assert scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode") == count

    with pytest.raises(DeepDoseInputError, match="must differ"):
        compute_dose_rate_node(scene, ct_node, pet_node, "Ga68", output_node=pet_node)
    with pytest.raises(DeepDoseInputError):
        compute_dose_rate_node(scene, None, pet_node, "Ga68")


def test_progress_is_reported(scene, demo_case):
    ct_node = volume_node_from_image(scene, demo_case.ct, "CT")
    pet_node = volume_node_from_image(scene, demo_case.pet, "PET")
    calls = []
    compute_dose_rate_node(scene, ct_node, pet_node, "Ga68", progress=lambda f, m: calls.append((f, m)))
    assert calls and calls[-1][0] == 1.0
    assert all(0.0 <= f <= 1.0 for f, _ in calls)


def test_dose_node_written_to_nrrd_keeps_pet_geometry(scene, demo_case, tmp_path):
    ct_node = volume_node_from_image(scene, demo_case.ct, "CT")
    pet_image = _oblique_pet(demo_case.pet)
    pet_node = volume_node_from_image(scene, pet_image, "PET")
    dose_node = compute_dose_rate_node(scene, ct_node, pet_node, demo_case.nuclide)

    path = tmp_path / "dose_rate_mGy_per_h.nrrd"
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(path))
    dose_node.SetAndObserveStorageNodeID(storage.GetID())
    assert storage.WriteData(dose_node) == 1, "writing %s failed" % path

    written = sitk.ReadImage(str(path))
    # NRRD stores geometry as decimal text: 1e-6 mm is the precision we require of the file.
    assert_same_geometry(written, pet_image, tol=1e-6)
    assert written.GetPixelID() == sitk.sitkFloat32
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(written), array_from_volume_node(dose_node)
    )


def test_headless_scene_is_usable():
    scene = create_headless_scene()
    try:
        assert scene.GetNodeByID("vtkMRMLColorTableNodeGrey") is not None
        assert scene.GetNodeByID("vtkMRMLColorTableNodeRainbow") is not None
        assert scene.GetNodeByID("vtkMRMLSelectionNodeSingleton") is not None
        orientations = {}
        for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceNode")):
            slice_node = scene.GetNthNodeByClass(i, "vtkMRMLSliceNode")
            orientations[slice_node.GetLayoutName()] = slice_node.GetOrientation()
        assert orientations == {"Red": "Axial", "Yellow": "Sagittal", "Green": "Coronal"}
        assert len(slice_composite_nodes(scene)) == 3
    finally:
        release_headless_scene(scene)


def test_get_scene_outside_slicer_is_headless():
    from DeepDoseLib.mrml.scene import in_slicer_application

    scene = get_scene()
    if in_slicer_application():
        assert scene is slicer.mrmlScene
    else:
        assert scene is not getattr(slicer, "mrmlScene", None)
        assert len(slice_composite_nodes(scene)) == 3
        release_headless_scene(scene)
