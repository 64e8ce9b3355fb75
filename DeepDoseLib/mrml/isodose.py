"""Isodose surfaces as ONE model node whose slice intersections are the isodose lines (SlicerRT style).

* One closed surface per level (``vtkFlyingEdges3D`` on the dose volume's voxels), moved to RAS
  with the volume's IJK -> RAS matrix and appended into one ``vtkMRMLModelNode``.
* Every point carries the index of its level (0 = lowest) as the active point scalar
  ``IsodoseLevelIndex``; the display node maps it through a per-run ``vtkMRMLColorTableNode``
  whose colour *i* is named after level *i* (e.g. ``"50 % (12.3 mGy/h)"``) with a manual scalar
  range 0..n-1, so each line gets its own colour. With raw dose values as scalars every line
  would get the same colour.
* Level colours are read from the dose-wash colour table at the level's position in the dose
  window (:func:`.display.dose_wash_rgb`): the 50 % line has the colour the wash shows at 50 %.
* Levels are editable: :func:`update_isodose_levels` rebuilds surfaces and colours in place
  (same model and colour node IDs).

Levels are percentages of a reference dose rate (mGy/h), by default the maximum in tissue.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import vtk

from ..analysis.isodose import DEFAULT_ISODOSE_PERCENTS, IsodoseLevel, isodose_levels
from ..errors import DeepDoseInputError
from .display import DOSE_RATE_UNIT, dose_wash_rgb

#: Point-data array holding the level index (0 = lowest level) of every surface point.
ISODOSE_LEVEL_ARRAY = "IsodoseLevelIndex"
ATTRIBUTE_ISODOSE_PERCENTS = "DeepDose.IsodoseLevelsPercent"
ATTRIBUTE_ISODOSE_REFERENCE = "DeepDose.IsodoseReference"
ATTRIBUTE_ISODOSE_UNIT = "DeepDose.IsodoseUnit"
#: Node reference role from the isodose model to the dose volume it was contoured from.
REFERENCE_DOSE_VOLUME = "DeepDoseDoseVolume"


def _percents_text(percents: Sequence[float]) -> str:
    return ",".join("%g" % float(p) for p in percents)


def parse_levels_percent(text: str) -> List[float]:
    """``"10, 25 50;90"`` -> ``[10.0, 25.0, 50.0, 90.0]`` (sorted, unique); raises on bad values."""
    tokens = [t for t in text.replace(";", " ").replace(",", " ").split() if t]
    try:
        values = sorted({float(t.rstrip("%")) for t in tokens})
    except ValueError:
        raise DeepDoseInputError(
            "Isodose levels must be numbers in % of the reference dose rate, e.g. '10, 25, 50, 75, 90'."
        ) from None
    if not values or any(not (0.0 < v) for v in values):
        raise DeepDoseInputError("Isodose levels must be positive percentages, e.g. '10, 25, 50, 75, 90'.")
    return values


def isodose_surfaces(dose_node, levels: Sequence[IsodoseLevel]) -> vtk.vtkPolyData:
    """Isodose surfaces of ``dose_node`` at ``levels`` (values in the dose unit), in RAS (mm).

    Returns one vtkPolyData; point scalars ``IsodoseLevelIndex`` (int) give each point's level
    index in ``levels`` order. Levels no voxel reaches contribute no points.
    """
    image = dose_node.GetImageData()
    if image is None or image.GetPointData().GetScalars() is None:
        raise DeepDoseInputError("The dose volume '%s' has no voxel data." % dose_node.GetName())
    ijk_to_ras = vtk.vtkMatrix4x4()
    dose_node.GetIJKToRASMatrix(ijk_to_ras)
    transform = vtk.vtkTransform()
    transform.SetMatrix(ijk_to_ras)
    # The node's image data has origin 0 and spacing 1: its points are IJK indices.
    ijk_image = vtk.vtkImageData()
    ijk_image.ShallowCopy(image)
    ijk_image.SetOrigin(0.0, 0.0, 0.0)
    ijk_image.SetSpacing(1.0, 1.0, 1.0)

    append = vtk.vtkAppendPolyData()
    for index, level in enumerate(levels):
        contour = vtk.vtkFlyingEdges3D()
        contour.SetInputData(ijk_image)
        contour.SetValue(0, float(level))
        contour.ComputeScalarsOff()
        contour.ComputeNormalsOff()
        contour.ComputeGradientsOff()
        to_ras = vtk.vtkTransformPolyDataFilter()
        to_ras.SetTransform(transform)
        to_ras.SetInputConnection(contour.GetOutputPort())
        normals = vtk.vtkPolyDataNormals()  # after the transform: flips (LPS->RAS) keep normals outward
        normals.SetInputConnection(to_ras.GetOutputPort())
        normals.SplittingOff()
        normals.Update()
        surface = vtk.vtkPolyData()
        surface.DeepCopy(normals.GetOutput())
        level_index = vtk.vtkIntArray()
        level_index.SetName(ISODOSE_LEVEL_ARRAY)
        level_index.SetNumberOfTuples(surface.GetNumberOfPoints())
        level_index.Fill(index)
        surface.GetPointData().AddArray(level_index)
        surface.GetPointData().SetActiveScalars(ISODOSE_LEVEL_ARRAY)
        append.AddInputData(surface)
    if not levels:
        return vtk.vtkPolyData()
    append.Update()
    result = vtk.vtkPolyData()
    result.DeepCopy(append.GetOutput())
    result.GetPointData().SetActiveScalars(ISODOSE_LEVEL_ARRAY)
    return result


def _fill_color_table(scene, color_node, levels: Sequence[IsodoseLevel], window_max: float) -> None:
    """One colour per level, named after it, taken from the dose wash at ``level / window_max``."""
    was_modifying = color_node.StartModify()
    color_node.SetTypeToUser()
    color_node.SetNumberOfColors(max(len(levels), 1))
    color_node.GetLookupTable().SetTableRange(0, max(len(levels) - 1, 1))
    for index, level in enumerate(levels):
        r, g, b = dose_wash_rgb(scene, float(level) / window_max)
        color_node.SetColor(index, level.label, r, g, b, 1.0)
    color_node.EndModify(was_modifying)


def _window_max(dose_node, reference: float) -> float:
    display = dose_node.GetDisplayNode()
    if display is not None and display.GetWindowLevelMax() > 0:
        return float(display.GetWindowLevelMax())
    return float(reference)


def create_isodose_model(
    scene,
    dose_node,
    reference_dose: float,
    levels_percent: Sequence[float] = DEFAULT_ISODOSE_PERCENTS,
    name: Optional[str] = None,
    unit: str = DOSE_RATE_UNIT,
):
    """Create the isodose model of ``dose_node`` and its level colour table.

    Parameters
    ----------
    scene : vtkMRMLScene
    dose_node : vtkMRMLScalarVolumeNode
        Dose-rate (mGy/h) or dose volume, displayed as a wash (its window gives the level colours).
    reference_dose : float
        The 100 % dose in ``unit`` (e.g. the maximum in tissue).
    levels_percent : sequence of float
        Levels in % of ``reference_dose``.

    Returns
    -------
    vtkMRMLModelNode
        Surfaces in RAS with point scalars ``IsodoseLevelIndex``; its display node shows slice
        intersections (the isodose lines) and semi-transparent surfaces in 3D.
    """
    name = name or "%s isodose" % dose_node.GetName()
    model_node = scene.AddNewNodeByClass("vtkMRMLModelNode", name)
    color_node = scene.AddNewNodeByClass("vtkMRMLColorTableNode", "%s levels" % name)
    color_node.SetAttribute("Category", "DeepDose")
    model_node.CreateDefaultDisplayNodes()
    model_node.SetNodeReferenceID(REFERENCE_DOSE_VOLUME, dose_node.GetID())
    display = model_node.GetDisplayNode()
    display.SetAndObserveColorNodeID(color_node.GetID())
    if dose_node.GetParentTransformNode() is not None:
        model_node.SetAndObserveTransformNodeID(dose_node.GetParentTransformNode().GetID())
    return update_isodose_levels(scene, model_node, levels_percent, reference_dose, unit=unit)


def update_isodose_levels(
    scene,
    model_node,
    levels_percent: Optional[Sequence[float]] = None,
    reference_dose: Optional[float] = None,
    unit: Optional[str] = None,
):
    """Recompute the surfaces and colours of an isodose model in place (levels are editable).

    ``levels_percent`` / ``reference_dose`` / ``unit`` default to those stored on the model
    (attributes ``DeepDose.IsodoseLevelsPercent``, ``DeepDose.IsodoseReference``). Returns the model.
    """
    dose_node = model_node.GetNodeReference(REFERENCE_DOSE_VOLUME)
    if dose_node is None:
        raise DeepDoseInputError("The isodose model '%s' has lost its dose volume." % model_node.GetName())
    if levels_percent is None:
        levels_percent = parse_levels_percent(model_node.GetAttribute(ATTRIBUTE_ISODOSE_PERCENTS) or "")
    if reference_dose is None:
        reference_dose = float(model_node.GetAttribute(ATTRIBUTE_ISODOSE_REFERENCE))
    unit = unit or model_node.GetAttribute(ATTRIBUTE_ISODOSE_UNIT) or DOSE_RATE_UNIT
    levels = isodose_levels(float(reference_dose), percents=levels_percent, unit=unit)

    display = model_node.GetDisplayNode()
    color_node = display.GetColorNode()
    _fill_color_table(scene, color_node, levels, _window_max(dose_node, float(reference_dose)))

    model_node.SetAndObservePolyData(isodose_surfaces(dose_node, levels))
    model_node.SetAttribute(ATTRIBUTE_ISODOSE_PERCENTS, _percents_text(level.percent for level in levels))
    model_node.SetAttribute(ATTRIBUTE_ISODOSE_REFERENCE, repr(float(reference_dose)))
    model_node.SetAttribute(ATTRIBUTE_ISODOSE_UNIT, unit)

    was_modifying = display.StartModify()
    display.SetActiveScalarName(ISODOSE_LEVEL_ARRAY)
    display.SetActiveAttributeLocation(vtk.vtkAssignAttribute.POINT_DATA)
    display.SetScalarVisibility(True)
    display.SetScalarRangeFlag(display.UseManualScalarRange)
    display.SetScalarRange(0.0, float(max(len(levels) - 1, 1)))
    display.SetVisibility(True)
    display.SetVisibility2D(True)  # slice intersections = isodose lines
    display.SetVisibility3D(True)
    display.SetSliceIntersectionThickness(2)
    display.SetSliceIntersectionOpacity(1.0)
    display.SetOpacity(0.3)  # 3D surfaces only; the lines stay opaque
    display.SetBackfaceCulling(False)
    display.EndModify(was_modifying)
    return model_node


def isodose_level_names(model_node) -> List[str]:
    """Names of the levels of an isodose model (from its colour table), lowest first."""
    color_node = model_node.GetDisplayNode().GetColorNode()
    return [color_node.GetColorName(i) for i in range(color_node.GetNumberOfColors())]


def find_isodose_model(scene, dose_node):
    """The most recent isodose model made from ``dose_node`` (None if there is none)."""
    found = None
    for index in range(scene.GetNumberOfNodesByClass("vtkMRMLModelNode")):
        model = scene.GetNthNodeByClass(index, "vtkMRMLModelNode")
        if model.GetNodeReferenceID(REFERENCE_DOSE_VOLUME) == dose_node.GetID():
            found = model
    return found
