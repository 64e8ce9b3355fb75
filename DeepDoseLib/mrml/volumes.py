"""SimpleITK image <-> MRML volume node conversion with exact geometry.

Conventions (documented once, used everywhere in DeepDose):

* SimpleITK images live in **LPS** physical space: ``origin`` (mm), ``spacing`` (mm) and a
  3x3 ``direction`` matrix whose columns are the unit vectors of the i, j, k voxel axes.
* MRML volume nodes live in **RAS** space: ``IJKToRAS = diag(-1, -1, 1, 1) @ IJKToLPS``, stored as
  origin (RAS, mm), spacing (mm) and ``IJKToRASDirections`` (unit columns).
* The voxel array of both is addressed by numpy as ``array[k, j, i]`` i.e. ``(z, y, x)``; VTK image
  data stores the same memory with i fastest, so no transposition is needed, only a reshape.

Arrays are always deep-copied: a node never shares memory with the image it came from (and vice
versa), so computing on one can never silently modify the other.

Only scalar (single-component) 3D images are supported; a 2D image is accepted and treated as a
single slice. Volumes under a parent transform are returned in world coordinates if the transform
is linear (the transform is "hardened" into the returned image); non-linear transforms raise.
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import vtk
from vtk.util import numpy_support

from ..errors import DeepDoseInputError

#: LPS <-> RAS flips the first two axes; the matrix is its own inverse.
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def _ijk_to_world_matrix(volume_node) -> np.ndarray:
    """Return the 4x4 IJK -> world(RAS) matrix of ``volume_node``, parent transforms included.

    Raises DeepDoseInputError if the node is under a non-linear transform.
    """
    ijk_to_ras = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(ijk_to_ras)
    matrix = np.array([[ijk_to_ras.GetElement(r, c) for c in range(4)] for r in range(4)])
    transform_node = volume_node.GetParentTransformNode()
    if transform_node is None:
        return matrix
    if not transform_node.IsTransformToWorldLinear():
        raise DeepDoseInputError(
            f"Volume '{volume_node.GetName()}' is under the non-linear transform "
            f"'{transform_node.GetName()}': harden or resample it before computing dose."
        )
    to_world = vtk.vtkMatrix4x4()
    transform_node.GetMatrixTransformToWorld(to_world)
    to_world_np = np.array([[to_world.GetElement(r, c) for c in range(4)] for r in range(4)])
    return to_world_np @ matrix


def image_from_volume_node(volume_node) -> sitk.Image:
    """Convert an MRML scalar volume node to a SimpleITK image (LPS), deep-copying the voxels.

    Parameters
    ----------
    volume_node : vtkMRMLScalarVolumeNode (or vtkMRMLLabelMapVolumeNode)
        A volume with image data. Voxel values keep their type and unit (e.g. HU, Bq/mL).

    Returns
    -------
    SimpleITK.Image
        3D image with origin/spacing (mm) and direction in LPS, pixel type equal to the VTK scalar
        type. Parent linear transforms are applied to the geometry (world coordinates).
    """
    if volume_node is None:
        raise DeepDoseInputError("No volume node given.")
    image_data = volume_node.GetImageData()
    if image_data is None or image_data.GetPointData().GetScalars() is None:
        raise DeepDoseInputError(f"Volume '{volume_node.GetName()}' has no voxel data.")
    scalars = image_data.GetPointData().GetScalars()
    if scalars.GetNumberOfComponents() != 1:
        raise DeepDoseInputError(
            f"Volume '{volume_node.GetName()}' has {scalars.GetNumberOfComponents()} components "
            "per voxel; DeepDose needs a scalar volume."
        )
    dims_ijk = image_data.GetDimensions()
    array_zyx = numpy_support.vtk_to_numpy(scalars).reshape(dims_ijk[::-1]).copy()
    image = sitk.GetImageFromArray(array_zyx, isVector=False)

    if volume_node.GetParentTransformNode() is None:
        # Exact path: no matrix products, so the round trip is bit-exact.
        spacing = volume_node.GetSpacing()
        origin_ras = np.array(volume_node.GetOrigin(), dtype=float)
        directions_ras = vtk.vtkMatrix4x4()
        volume_node.GetIJKToRASDirectionMatrix(directions_ras)
        dir_ras = np.array([[directions_ras.GetElement(r, c) for c in range(3)] for r in range(3)])
    else:
        ijk_to_world = _ijk_to_world_matrix(volume_node)
        linear = ijk_to_world[:3, :3]
        spacing = np.linalg.norm(linear, axis=0)
        if np.any(spacing <= 0):
            raise DeepDoseInputError(f"Volume '{volume_node.GetName()}' has a degenerate geometry.")
        dir_ras = linear / spacing
        origin_ras = ijk_to_world[:3, 3]

    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([float(v) for v in _LPS_TO_RAS @ origin_ras])
    image.SetDirection([float(v) for v in (_LPS_TO_RAS @ dir_ras).ravel()])
    return image


def _as_3d(image: sitk.Image) -> sitk.Image:
    """Promote a 2D image to a one-slice 3D image; reject other dimensions."""
    if image.GetDimension() == 3:
        return image
    if image.GetDimension() == 2:
        return sitk.JoinSeries([image])
    raise DeepDoseInputError(f"Expected a 3D image, got a {image.GetDimension()}D image.")


def volume_node_from_image(
    scene,
    image: sitk.Image,
    name: str,
    node=None,
    labelmap: bool = False,
):
    """Create (or update) a volume node holding a deep copy of ``image`` with exact geometry.

    Parameters
    ----------
    scene : vtkMRMLScene
        Scene to add a new node to (ignored for the lookup when ``node`` is given, but the node is
        added to it if it is not in a scene yet).
    image : SimpleITK.Image
        Scalar 3D (or 2D) image in LPS; voxel values keep their unit (HU, Bq/mL, mGy/h ...).
    name : str
        Name of a newly created node (an existing ``node`` is renamed to it as well).
    node : vtkMRMLScalarVolumeNode, optional
        Existing node to update in place (keeps its ID, display node and references; a parent
        transform is removed because the image geometry is in world coordinates).
    labelmap : bool
        Create a vtkMRMLLabelMapVolumeNode instead of a vtkMRMLScalarVolumeNode.

    Returns
    -------
    vtkMRMLScalarVolumeNode
        The node, with default display nodes created.
    """
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise DeepDoseInputError(
            f"Image '{name}' has {image.GetNumberOfComponentsPerPixel()} components per voxel; "
            "only scalar images can become DeepDose volume nodes."
        )
    image = _as_3d(image)

    array_zyx = sitk.GetArrayFromImage(image)  # already a copy, (z, y, x)
    vtk_array = numpy_support.numpy_to_vtk(np.ascontiguousarray(array_zyx).ravel(), deep=True)
    vtk_array.SetName("ImageScalars")
    image_data = vtk.vtkImageData()
    image_data.SetDimensions(image.GetSize())  # (i, j, k) = (x, y, z)
    image_data.GetPointData().SetScalars(vtk_array)

    direction_lps = np.array(image.GetDirection(), dtype=float).reshape(3, 3)
    direction_ras = _LPS_TO_RAS @ direction_lps
    origin_ras = _LPS_TO_RAS @ np.array(image.GetOrigin(), dtype=float)

    if node is None:
        class_name = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
        node = scene.AddNewNodeByClass(class_name, name)
    else:
        if node.GetScene() is None:
            scene.AddNode(node)
        node.SetName(name)
        if node.GetParentTransformNode() is not None:
            # The image geometry is in world coordinates: a parent transform would move it.
            node.SetAndObserveTransformNodeID(None)

    was_modifying = node.StartModify()
    try:
        directions = vtk.vtkMatrix4x4()
        for r in range(3):
            for c in range(3):
                directions.SetElement(r, c, float(direction_ras[r, c]))
        node.SetIJKToRASDirectionMatrix(directions)
        node.SetSpacing(*[float(s) for s in image.GetSpacing()])
        node.SetOrigin(*[float(v) for v in origin_ras])
        node.SetAndObserveImageData(image_data)
    finally:
        node.EndModify(was_modifying)
    if node.GetDisplayNode() is None:
        node.CreateDefaultDisplayNodes()
    return node


def array_from_volume_node(volume_node) -> np.ndarray:
    """Return a (z, y, x) numpy **copy** of the voxel values of ``volume_node`` (unit unchanged)."""
    image_data = volume_node.GetImageData()
    if image_data is None or image_data.GetPointData().GetScalars() is None:
        raise DeepDoseInputError(f"Volume '{volume_node.GetName()}' has no voxel data.")
    dims_ijk = image_data.GetDimensions()
    scalars = numpy_support.vtk_to_numpy(image_data.GetPointData().GetScalars())
    return scalars.reshape(dims_ijk[::-1]).copy()


def volume_geometry(volume_node) -> dict:
    """Return the RAS geometry of a node as plain Python values (for comparisons and logs).

    Keys: ``origin_ras`` (mm), ``spacing_mm``, ``directions_ras`` (3x3 nested tuples, unit
    columns), ``dimensions_ijk``.
    """
    directions = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASDirectionMatrix(directions)
    image_data = volume_node.GetImageData()
    return {
        "origin_ras": tuple(volume_node.GetOrigin()),
        "spacing_mm": tuple(volume_node.GetSpacing()),
        "directions_ras": tuple(
            tuple(directions.GetElement(r, c) for c in range(3)) for r in range(3)
        ),
        "dimensions_ijk": tuple(image_data.GetDimensions()) if image_data is not None else None,
    }
