"""SimpleITK (LPS) <-> MRML volume node (RAS) conversion: geometry, values, no shared memory."""
from __future__ import annotations

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="MRML tests need `slicer` (Slicer or pip slicer-core)")

import SimpleITK as sitk  # noqa: E402
import vtk  # noqa: E402

from DeepDoseLib.errors import DeepDoseInputError  # noqa: E402
from DeepDoseLib.mrml import (  # noqa: E402
    array_from_volume_node,
    image_from_volume_node,
    volume_geometry,
    volume_node_from_image,
)

# Geometry goes through double precision only (no resampling): 1e-9 mm / 1e-9 in direction cosines
# is many orders above round-off (~1e-15) and far below any clinically meaningful difference.
TOL = 1e-9


def _rotation(axis, angle_rad):
    """Rotation matrix about ``axis`` (Rodrigues)."""
    axis = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle_rad) * k + (1 - np.cos(angle_rad)) * (k @ k)


DIRECTIONS = {
    "identity": np.eye(3),
    "flipped": np.diag([-1.0, 1.0, -1.0]),
    "oblique": _rotation([1.0, 2.0, 3.0], 0.4),
    "oblique_flipped": _rotation([0.3, -1.0, 0.5], 1.1) @ np.diag([1.0, -1.0, 1.0]),
}


def make_image(direction=np.eye(3), dtype=np.float32, size_xyz=(5, 6, 7)):
    """Image whose voxel values encode their index: value = 100 z + 10 y + x."""
    x, y, z = size_xyz
    zz, yy, xx = np.meshgrid(np.arange(z), np.arange(y), np.arange(x), indexing="ij")
    array_zyx = (100 * zz + 10 * yy + xx).astype(dtype)
    image = sitk.GetImageFromArray(array_zyx)
    image.SetSpacing((0.8, 1.25, 3.0))
    image.SetOrigin((-12.5, 40.25, -301.0))
    image.SetDirection(tuple(np.asarray(direction, dtype=float).ravel()))
    return image


def assert_same_image(actual, expected, tol=TOL):
    assert actual.GetSize() == expected.GetSize()
    np.testing.assert_allclose(actual.GetOrigin(), expected.GetOrigin(), rtol=0, atol=tol)
    np.testing.assert_allclose(actual.GetSpacing(), expected.GetSpacing(), rtol=0, atol=tol)
    np.testing.assert_allclose(actual.GetDirection(), expected.GetDirection(), rtol=0, atol=tol)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(actual), sitk.GetArrayFromImage(expected))
    assert actual.GetPixelID() == expected.GetPixelID()


def node_ijk_to_ras(node):
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


@pytest.mark.parametrize("direction_name", sorted(DIRECTIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_round_trip_is_exact(scene, direction_name, dtype):
    image = make_image(DIRECTIONS[direction_name], dtype)
    node = volume_node_from_image(scene, image, "roundtrip")
    assert node.IsA("vtkMRMLScalarVolumeNode") and not node.IsA("vtkMRMLLabelMapVolumeNode")
    assert_same_image(image_from_volume_node(node), image)


@pytest.mark.parametrize("direction_name", sorted(DIRECTIONS))
def test_voxel_positions_agree_in_ras(scene, direction_name):
    """Each voxel is at the same physical point: LPS from SimpleITK == RAS from MRML with x, y negated."""
    image = make_image(DIRECTIONS[direction_name])
    node = volume_node_from_image(scene, image, "positions")
    ijk_to_ras = node_ijk_to_ras(node)
    for index in [(0, 0, 0), (4, 0, 0), (0, 5, 0), (0, 0, 6), (3, 2, 1), (4, 5, 6)]:
        lps = np.array(image.TransformIndexToPhysicalPoint(index))
        ras = ijk_to_ras @ np.array([index[0], index[1], index[2], 1.0])
        np.testing.assert_allclose(ras[:3], lps * [-1, -1, 1], rtol=0, atol=1e-9)


def test_axis_order_and_values(scene):
    """numpy (z, y, x) of SimpleITK maps to VTK (i, j, k) = (x, y, z) without transposition."""
    image = make_image()
    node = volume_node_from_image(scene, image, "order")
    image_data = node.GetImageData()
    assert image_data.GetDimensions() == image.GetSize()
    assert image_data.GetScalarComponentAsDouble(4, 2, 3, 0) == 100 * 3 + 10 * 2 + 4
    assert array_from_volume_node(node)[3, 2, 4] == 324
    assert image_from_volume_node(node)[4, 2, 3] == 324


def test_ras_conventions_for_identity_lps(scene):
    image = make_image()
    node = volume_node_from_image(scene, image, "conventions")
    geometry = volume_geometry(node)
    assert geometry["origin_ras"] == pytest.approx((12.5, -40.25, -301.0), abs=TOL)
    assert geometry["spacing_mm"] == pytest.approx((0.8, 1.25, 3.0), abs=TOL)
    np.testing.assert_allclose(geometry["directions_ras"], np.diag([-1.0, -1.0, 1.0]), atol=TOL)
    assert geometry["dimensions_ijk"] == (5, 6, 7)


def test_labelmap_node(scene):
    labels = sitk.Cast(make_image(DIRECTIONS["oblique"]) > 300, sitk.sitkUInt8)
    node = volume_node_from_image(scene, labels, "labels", labelmap=True)
    assert node.IsA("vtkMRMLLabelMapVolumeNode")
    assert_same_image(image_from_volume_node(node), labels)


def test_memory_is_never_shared(scene):
    image = make_image()
    node = volume_node_from_image(scene, image, "copy")
    image[0, 0, 0] = -1.0  # modifying the source image must not reach the node
    assert array_from_volume_node(node)[0, 0, 0] == 0.0

    back = image_from_volume_node(node)
    slicer.util.arrayFromVolume(node)[0, 0, 0] = 7.0  # modifying the node must not reach the copy
    node.GetImageData().Modified()
    assert back[0, 0, 0] == 0.0
    assert array_from_volume_node(node)[0, 0, 0] == 7.0


def test_update_existing_node_keeps_id_and_display(scene):
    node = volume_node_from_image(scene, make_image(), "first")
    node_id, display_id = node.GetID(), node.GetDisplayNodeID()
    count = scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")
    new_image = make_image(DIRECTIONS["oblique"], np.float32, size_xyz=(3, 4, 2))
    updated = volume_node_from_image(scene, new_image, "second", node=node)
    assert updated is node and node.GetID() == node_id and node.GetDisplayNodeID() == display_id
    assert node.GetName() == "second"
    assert scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode") == count
    assert_same_image(image_from_volume_node(node), new_image)


def test_2d_image_becomes_single_slice(scene):
    image2d = sitk.GetImageFromArray(np.arange(12, dtype=np.float32).reshape(3, 4))
    node = volume_node_from_image(scene, image2d, "slice")
    assert node.GetImageData().GetDimensions() == (4, 3, 1)


def test_vector_image_is_rejected(scene):
    vector = sitk.GetImageFromArray(np.zeros((2, 3, 4, 3), dtype=np.float32), isVector=True)
    with pytest.raises(DeepDoseInputError, match="components"):
        volume_node_from_image(scene, vector, "vector")


def test_node_without_data_is_rejected(scene):
    empty = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty")
    with pytest.raises(DeepDoseInputError, match="no voxel data"):
        image_from_volume_node(empty)


def test_linear_parent_transform_is_applied(scene):
    image = make_image(DIRECTIONS["oblique"])
    node = volume_node_from_image(scene, image, "moved")
    transform = vtk.vtkTransform()
    transform.Translate(5.0, -2.0, 1.5)  # RAS mm
    transform.RotateZ(30.0)
    transform_node = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "T")
    transform_node.SetMatrixTransformToParent(transform.GetMatrix())
    node.SetAndObserveTransformNodeID(transform_node.GetID())

    world = image_from_volume_node(node)
    to_parent = np.array(
        [[transform.GetMatrix().GetElement(r, c) for c in range(4)] for r in range(4)]
    )
    for index in [(0, 0, 0), (4, 5, 6), (1, 3, 2)]:
        local_ras = node_ijk_to_ras(node) @ np.array([*index, 1.0])
        expected_lps = (to_parent @ local_ras)[:3] * [-1, -1, 1]
        np.testing.assert_allclose(world.TransformIndexToPhysicalPoint(index), expected_lps, atol=1e-9)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(world), sitk.GetArrayFromImage(image))

    # Writing a world-space image into a transformed node detaches it from the transform.
    volume_node_from_image(scene, world, "moved", node=node)
    assert node.GetParentTransformNode() is None
    assert_same_image(image_from_volume_node(node), world)


def test_nonlinear_parent_transform_is_rejected(scene):
    node = volume_node_from_image(scene, make_image(), "warped")
    source, target = vtk.vtkPoints(), vtk.vtkPoints()
    for point, shift in [((0, 0, 0), 0), ((50, 0, 0), 3), ((0, 50, 0), 0), ((0, 0, 50), 0), ((30, 30, 30), 2)]:
        source.InsertNextPoint(point)
        target.InsertNextPoint(point[0] + shift, point[1], point[2])
    tps = vtk.vtkThinPlateSplineTransform()
    tps.SetSourceLandmarks(source)
    tps.SetTargetLandmarks(target)
    tps.SetBasisToR()
    transform_node = scene.AddNewNodeByClass("vtkMRMLTransformNode", "warp")
    transform_node.SetAndObserveTransformToParent(tps)
    node.SetAndObserveTransformNodeID(transform_node.GetID())
    with pytest.raises(DeepDoseInputError, match="non-linear"):
        image_from_volume_node(node)
