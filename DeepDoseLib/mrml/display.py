"""Show a dose-rate volume (mGy/h) the way SlicerRT users expect: a colour "dose wash" overlay.

The dose volume gets a continuous blue -> green -> yellow -> red colour table, a window covering
0..``window_max`` (default: the maximum), and a lower threshold so that voxels below
``threshold_fraction * window_max`` are transparent. It becomes the foreground layer of every slice
view, over the CT (background) at the given opacity, with a colour legend (:func:`show_color_legend`).
The node is marked for SlicerRT (``DicomRtImport.DoseVolume``) and carries its unit.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import vtk
from vtk.util import numpy_support

#: Node attribute marking dose volumes for SlicerRT (Isodose, DVH, dose comparison modules).
DOSE_VOLUME_ATTRIBUTE = "DicomRtImport.DoseVolume"
#: Node attribute holding the unit of the voxel values of a DeepDose output.
UNIT_ATTRIBUTE = "DeepDose.Unit"
DOSE_RATE_UNIT = "mGy/h"
#: Attribute identifying the dose-wash colour table created by DeepDose (one per scene).
DOSE_WASH_ATTRIBUTE = "DeepDose.DoseWashColorTable"
DOSE_WASH_NAME = "DeepDose_DoseWash"

# (position 0..1, r, g, b): dark blue at the threshold, red at the maximum, like a dose wash.
_DOSE_WASH_POINTS = (
    (0.00, 0.0, 0.0, 0.5),
    (0.15, 0.0, 0.0, 1.0),
    (0.35, 0.0, 1.0, 1.0),
    (0.50, 0.0, 1.0, 0.0),
    (0.65, 1.0, 1.0, 0.0),
    (0.85, 1.0, 0.5, 0.0),
    (1.00, 1.0, 0.0, 0.0),
)


def dose_wash_color_node(scene, number_of_colors: int = 256):
    """Return the scene's DeepDose dose-wash colour table, creating it on first use.

    The table is a user ``vtkMRMLColorTableNode`` (saved with the scene, so a dose displayed with
    it reloads identically); it is found again through the attribute ``DeepDose.DoseWashColorTable``.
    """
    class_name = "vtkMRMLColorTableNode"
    for i in range(scene.GetNumberOfNodesByClass(class_name)):
        node = scene.GetNthNodeByClass(i, class_name)
        if node.GetAttribute(DOSE_WASH_ATTRIBUTE) == "1":
            return node

    transfer = vtk.vtkColorTransferFunction()
    for position, r, g, b in _DOSE_WASH_POINTS:
        transfer.AddRGBPoint(position, r, g, b)

    color_node = scene.CreateNodeByClass(class_name)
    color_node.SetName(DOSE_WASH_NAME)
    color_node.SetTypeToUser()
    color_node.SetNumberOfColors(number_of_colors)
    color_node.GetLookupTable().SetTableRange(0, number_of_colors - 1)
    for index in range(number_of_colors):
        r, g, b = transfer.GetColor(index / float(number_of_colors - 1))
        color_node.SetColor(index, "dose %d" % index, r, g, b, 1.0)
    color_node.SetAttribute(DOSE_WASH_ATTRIBUTE, "1")
    color_node.SetAttribute("Category", "DeepDose")
    scene.AddNode(color_node)
    color_node.UnRegister(None)  # CreateNodeByClass returned a new reference; the scene owns it
    return color_node


def _max_value(volume_node) -> float:
    """Largest finite voxel value of ``volume_node`` (0.0 if none)."""
    scalars = volume_node.GetImageData().GetPointData().GetScalars()
    values = numpy_support.vtk_to_numpy(scalars)
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else 0.0


def set_dose_units(dose_node, unit: str = DOSE_RATE_UNIT) -> None:
    """Mark ``dose_node`` as a dose volume whose voxel values are in ``unit`` (default mGy/h).

    Sets the attributes ``DicomRtImport.DoseVolume`` = "1" and ``DeepDose.Unit`` = unit, and, where
    the MRML API has it, the voxel value quantity/units as coded entries (UCUM for the unit; the
    quantity uses the private coding scheme "99DeepDose" since DICOM has no dose-rate code).
    """
    dose_node.SetAttribute(DOSE_VOLUME_ATTRIBUTE, "1")
    dose_node.SetAttribute(UNIT_ATTRIBUTE, unit)
    try:
        import slicer

        units = slicer.vtkCodedEntry()
        units.SetValueSchemeMeaning(unit, "UCUM", unit)
        dose_node.SetVoxelValueUnits(units)
        quantity = slicer.vtkCodedEntry()
        quantity.SetValueSchemeMeaning("DoseRate", "99DeepDose", "Absorbed dose rate")
        dose_node.SetVoxelValueQuantity(quantity)
    except (ImportError, AttributeError):  # older MRML without coded voxel units
        pass


def show_dose_overlay(
    scene,
    dose_node,
    background_node=None,
    opacity: float = 0.5,
    threshold_fraction: float = 0.01,
    window_max: Optional[float] = None,
):
    """Display ``dose_node`` (mGy/h) as a thresholded colour wash over ``background_node``.

    Parameters
    ----------
    scene : vtkMRMLScene
        Scene holding the nodes and the slice composite nodes to update.
    dose_node : vtkMRMLScalarVolumeNode
        Dose-rate volume, voxel values in mGy/h.
    background_node : vtkMRMLScalarVolumeNode, optional
        Volume shown under the wash (typically the CT); left unchanged when None.
    opacity : float
        Foreground opacity 0..1 in every slice view.
    threshold_fraction : float
        Voxels below ``threshold_fraction * window_max`` are transparent (0 shows every voxel >= 0).
    window_max : float, optional
        Dose rate (mGy/h) shown in the top colour (red); default: the maximum of the volume. A
        robust value such as the maximum in tissue keeps a few per-gram-of-air voxels from
        compressing the wash; voxels above it stay visible in the top colour.

    Returns
    -------
    vtkMRMLScalarVolumeDisplayNode
        The display node of ``dose_node``.
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be within 0..1, got {opacity}")
    if not 0.0 <= threshold_fraction < 1.0:
        raise ValueError(f"threshold_fraction must be within [0, 1), got {threshold_fraction}")

    set_dose_units(dose_node)
    display_node = dose_node.GetDisplayNode()
    if display_node is None:
        dose_node.CreateDefaultDisplayNodes()
        display_node = dose_node.GetDisplayNode()

    max_value = _max_value(dose_node)
    if window_max is None or not np.isfinite(window_max) or window_max <= 0:
        window_max = max_value if max_value > 0 else 1.0
    window_max = float(window_max)
    color_node = dose_wash_color_node(scene)

    was_modifying = display_node.StartModify()
    try:
        display_node.SetAndObserveColorNodeID(color_node.GetID())
        display_node.AutoWindowLevelOff()
        display_node.SetWindowLevelMinMax(0.0, window_max)
        display_node.AutoThresholdOff()
        display_node.SetThreshold(threshold_fraction * window_max, max(window_max, max_value))
        display_node.ApplyThresholdOn()
        display_node.SetInterpolate(1)
    finally:
        display_node.EndModify(was_modifying)

    class_name = "vtkMRMLSliceCompositeNode"
    for i in range(scene.GetNumberOfNodesByClass(class_name)):
        composite = scene.GetNthNodeByClass(i, class_name)
        was_modifying = composite.StartModify()
        if background_node is not None:
            composite.SetBackgroundVolumeID(background_node.GetID())
        composite.SetForegroundVolumeID(dose_node.GetID())
        composite.SetForegroundOpacity(opacity)
        composite.EndModify(was_modifying)
    return display_node


def dose_wash_rgb(scene, fraction: float) -> Tuple[float, float, float]:
    """RGB (0..1) that the dose wash shows at ``fraction`` of its window (0 = window minimum, 1 = maximum).

    Read from the scene's dose-wash colour table itself, with the lookup rule of the volume display
    (``vtkLookupTable``: index = floor(fraction × number of colours), clamped), so colours derived
    from it (isodose lines) are exactly those of the wash. ``fraction`` is rounded to 1e-9 first so
    that round-off does not move a level lying on a colour boundary (25 %, 50 %, 75 %).
    """
    color_node = dose_wash_color_node(scene)
    count = color_node.GetNumberOfColors()
    position = round(min(max(float(fraction), 0.0), 1.0), 9) * count
    index = min(int(np.floor(position)), count - 1)
    rgba = [0.0, 0.0, 0.0, 0.0]
    color_node.GetColor(index, rgba)
    return float(rgba[0]), float(rgba[1]), float(rgba[2])


def show_color_legend(dose_node, title: str = "Dose rate (%s)" % DOSE_RATE_UNIT, label_format: str = "%.3g"):
    """Show a colour legend (scalar bar) of ``dose_node``'s wash in every slice and 3D view.

    Uses the colour-legend display node of Slicer's Colors module (``vtkMRMLColorLegendDisplayNode``,
    Slicer >= 5.0); returns it, or None when this MRML version has no colour legend.
    """
    import slicer

    color_logic = getattr(slicer, "vtkSlicerColorLogic", None)
    if color_logic is None or not hasattr(color_logic, "AddDefaultColorLegendDisplayNode"):
        return None
    legend = color_logic.AddDefaultColorLegendDisplayNode(dose_node)
    if legend is None:
        return None
    was_modifying = legend.StartModify()
    legend.SetTitleText(title)
    legend.SetLabelFormat(label_format)
    legend.SetUseColorNamesForLabels(False)
    legend.SetVisibility(True)
    legend.SetVisibility2D(True)
    legend.SetVisibility3D(True)
    legend.EndModify(was_modifying)
    return legend
