"""Segments -> organ DVH (table nodes, plot series, one plot chart) and an organ statistics table.

Segments are exported one at a time with ``vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode``
on the **segmentation's own geometry**, cropped to the segment (overlapping segments stay whole),
and handed to :mod:`DeepDoseLib.analysis` as binary images: the analysis turns them into
**fractional masks** on the dose grid (3³ sub-samples per dose voxel), so a liver drawn on a
1 mm CT is not reduced to whole 4 mm PET voxels. On the dose grid itself the fractions are 0 or 1.
The numbers (DVH, Dx, means, masses) all come from ``DeepDoseLib.analysis``; this module only
turns them into MRML nodes. The segmentation node is read, never modified.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk
import vtk

from ..analysis.dvh import DVH, compute_dvh, unit_token, voxel_volume_mL
from ..analysis.masks import CroppedMask, fractional_mask
from ..analysis.organs import OrganStatistics, organ_statistics, organ_table_rows
from .display import DOSE_RATE_UNIT
from .volumes import image_from_volume_node

ATTRIBUTE_SEGMENT_NAME = "DeepDose.SegmentName"
ATTRIBUTE_SEGMENT_ID = "DeepDose.SegmentID"
ATTRIBUTE_DVH = "DeepDose.DVH"
ATTRIBUTE_STATISTICS = "DeepDose.OrganStatistics"
REFERENCE_DOSE_VOLUME = "DeepDoseDoseVolume"
REFERENCE_SEGMENTATION = "DeepDoseSegmentation"


@dataclass
class SegmentMask:
    """One segment as a binary SimpleITK image (LPS, the segmentation's geometry, cropped)."""

    segment_id: str
    name: str
    color_rgb: Tuple[float, float, float]
    mask: sitk.Image


def segment_masks(scene, segmentation_node, segment_ids: Optional[Sequence[str]] = None) -> List[SegmentMask]:
    """Export the segments of ``segmentation_node`` (all, or ``segment_ids``) as binary images.

    Empty segments are left out. A temporary labelmap node is added and removed again.
    """
    import slicer

    segmentation = segmentation_node.GetSegmentation()
    if segment_ids is None:
        ids = vtk.vtkStringArray()
        segmentation.GetSegmentIDs(ids)
        segment_ids = [ids.GetValue(i) for i in range(ids.GetNumberOfValues())]
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    masks = []
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "DeepDose segment export")
    try:
        for segment_id in segment_ids:
            segment = segmentation.GetSegment(segment_id)
            if segment is None:
                continue
            one = vtk.vtkStringArray()
            one.InsertNextValue(segment_id)
            if not logic.ExportSegmentsToLabelmapNode(segmentation_node, one, labelmap, None):
                continue
            image_data = labelmap.GetImageData()
            if image_data is None or image_data.GetNumberOfPoints() == 0:
                continue
            mask = image_from_volume_node(labelmap)
            if not np.any(sitk.GetArrayViewFromImage(mask)):
                continue
            masks.append(SegmentMask(segment_id, segment.GetName(), tuple(segment.GetColor()),
                                     sitk.Cast(mask != 0, sitk.sitkUInt8)))
    finally:
        display = labelmap.GetDisplayNode()
        scene.RemoveNode(labelmap)
        if display is not None and display.GetScene() is not None:
            scene.RemoveNode(display)
    return masks


def mask_on_dose_grid(mask: sitk.Image, dose_image: sitk.Image) -> CroppedMask:
    """Voxel fractions of a binary ``mask`` on the dose grid.

    When the mask's voxels *are* dose voxels (same spacing and direction, origin shifted by whole
    voxels, as for a segment drawn on the PET grid and exported cropped) the fractions are copied
    exactly (0 or 1); otherwise :func:`DeepDoseLib.analysis.fractional_mask` supersamples each dose
    voxel (3³ points). Parts outside the dose grid are left out.
    """
    same_axes = (np.allclose(mask.GetSpacing(), dose_image.GetSpacing(), rtol=1e-6, atol=0)
                 and np.allclose(mask.GetDirection(), dose_image.GetDirection(), atol=1e-9))
    if same_axes:
        offset = np.array(dose_image.TransformPhysicalPointToContinuousIndex(mask.GetOrigin()))
        if np.all(np.abs(offset - np.round(offset)) < 1e-3):
            start_xyz = np.round(offset).astype(int)
            dose_shape_zyx = tuple(reversed(dose_image.GetSize()))
            source = sitk.GetArrayViewFromImage(mask) != 0
            start = start_xyz[::-1]
            low = np.maximum(start, 0)
            high = np.minimum(start + np.array(source.shape), dose_shape_zyx)
            if np.any(high <= low):
                return CroppedMask((slice(0, 0),) * 3, np.zeros((0, 0, 0), np.float32), dose_shape_zyx)
            box = tuple(slice(int(a), int(b)) for a, b in zip(low, high))
            cut = tuple(slice(int(a - s0), int(b - s0)) for a, b, s0 in zip(low, high, start))
            return fractional_mask(_paste(source[cut], box, dose_shape_zyx), dose_image)
    return fractional_mask(mask, dose_image, 1)


def _paste(block: np.ndarray, box, shape) -> CroppedMask:
    return CroppedMask(box, block.astype(np.float32), shape)


def _double_column(name: str, values) -> vtk.vtkDoubleArray:
    column = vtk.vtkDoubleArray()
    column.SetName(name)
    column.SetNumberOfTuples(len(values))
    for i, value in enumerate(values):
        column.SetValue(i, float(value))
    return column


def _string_column(name: str, values) -> vtk.vtkStringArray:
    column = vtk.vtkStringArray()
    column.SetName(name)
    for value in values:
        column.InsertNextValue(str(value))
    return column


def dvh_table_node(scene, dvh: DVH, name: str):
    """A table node with the cumulative DVH: dose at every bin edge, volume (%) and (mL) receiving ≥ it."""
    token = unit_token(dvh.unit)
    dose_column = "dose_%s" % token
    cumulative_mL = np.append(dvh.cumulative_volume_mL, 0.0)
    table_node = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    table = table_node.GetTable()
    table.AddColumn(_double_column(dose_column, dvh.bin_edges))
    table.AddColumn(_double_column("volume_percent", 100.0 * cumulative_mL / dvh.total_volume_mL))
    table.AddColumn(_double_column("volume_mL", cumulative_mL))
    table_node.SetColumnUnitLabel(dose_column, dvh.unit)
    table_node.SetColumnTitle(dose_column, "Dose rate" if dvh.unit == DOSE_RATE_UNIT else "Dose")
    table_node.SetColumnUnitLabel("volume_percent", "%")
    table_node.SetColumnTitle("volume_percent", "Volume receiving at least the dose")
    table_node.SetColumnUnitLabel("volume_mL", "mL")
    table_node.SetColumnTitle("volume_mL", "Volume receiving at least the dose")
    table_node.SetAttribute(ATTRIBUTE_DVH, "cumulative")
    table_node.SetAttribute("DeepDose.DVH.Mean", repr(dvh.mean))
    table_node.SetAttribute("DeepDose.DVH.Min", repr(dvh.min))
    table_node.SetAttribute("DeepDose.DVH.Max", repr(dvh.max))
    table_node.SetAttribute("DeepDose.DVH.VolumeML", repr(dvh.total_volume_mL))
    table_node.Modified()
    return table_node


@dataclass
class DVHNodes:
    """The DVH outputs: one table and one plot series per segment, one chart."""

    tables: List
    series: List
    chart: object


def create_dvh_nodes(scene, dose_node, dose_image: sitk.Image, masks: Sequence[SegmentMask],
                     unit: str = DOSE_RATE_UNIT, segmentation_node=None) -> DVHNodes:
    """One cumulative-DVH table + plot series per segment and one plot chart showing them all."""
    token = unit_token(unit)
    chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", "%s DVH" % dose_node.GetName())
    chart.SetTitle("Cumulative DVH: %s" % dose_node.GetName())
    chart.SetXAxisTitle("%s (%s)" % ("Dose rate" if unit == DOSE_RATE_UNIT else "Dose", unit))
    chart.SetYAxisTitle("Volume (%)")
    chart.SetLegendVisibility(True)
    chart.SetAttribute(ATTRIBUTE_DVH, "chart")
    chart.SetNodeReferenceID(REFERENCE_DOSE_VOLUME, dose_node.GetID())
    tables, series = [], []
    for mask in masks:
        dvh = compute_dvh(dose_image, mask_on_dose_grid(mask.mask, dose_image), unit=unit, name=mask.name)
        table_node = dvh_table_node(scene, dvh, "%s DVH %s" % (mask.name, dose_node.GetName()))
        table_node.SetAttribute(ATTRIBUTE_SEGMENT_NAME, mask.name)
        table_node.SetAttribute(ATTRIBUTE_SEGMENT_ID, mask.segment_id)
        table_node.SetNodeReferenceID(REFERENCE_DOSE_VOLUME, dose_node.GetID())
        if segmentation_node is not None:
            table_node.SetNodeReferenceID(REFERENCE_SEGMENTATION, segmentation_node.GetID())
        plot = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", mask.name)
        plot.SetAndObserveTableNodeID(table_node.GetID())
        plot.SetXColumnName("dose_%s" % token)
        plot.SetYColumnName("volume_percent")
        plot.SetPlotType(plot.PlotTypeScatter)
        plot.SetMarkerStyle(plot.MarkerStyleNone)
        plot.SetLineWidth(2)
        plot.SetColor(*mask.color_rgb)
        plot.SetAttribute(ATTRIBUTE_SEGMENT_NAME, mask.name)
        chart.AddAndObservePlotSeriesNodeID(plot.GetID())
        tables.append(table_node)
        series.append(plot)
    return DVHNodes(tables, series, chart)


def _unit_of_column(name: str, unit: str) -> str:
    token = unit_token(unit)
    if name.endswith("_percent") or name.endswith("_pct"):
        return "%"
    if name.endswith("_mL"):
        return "mL"
    if name.endswith("_g"):
        return "g"
    if name.endswith(token):
        return unit
    return ""


def organ_statistics_rows(dose_image: sitk.Image, masks: Sequence[SegmentMask],
                          density_g_per_cm3: Optional[np.ndarray] = None, unit: str = DOSE_RATE_UNIT,
                          dose_levels: Sequence[float] = (),
                          fallback: Optional[np.ndarray] = None) -> List[OrganStatistics]:
    """Organ statistics (DeepDoseLib.analysis) of every segment, in segment order; ``fallback`` (bool (z, y, x) on
    the dose grid: where Deep-dose returned its baseline) adds each row's ``fallback_percent``."""
    structures: Dict[str, CroppedMask] = {}
    for mask in masks:
        name = mask.name
        while name in structures:  # two segments with one name keep both rows
            name += " (%s)" % mask.segment_id
        structures[name] = mask_on_dose_grid(mask.mask, dose_image)
    rows = organ_statistics(dose_image, structures, density_g_per_cm3=density_g_per_cm3, unit=unit,
                            dose_levels=dose_levels, fallback=fallback)
    for row, mask in zip(rows, masks):  # the whole segment's volume, also outside the dose grid
        row.structure_volume_mL = float(np.count_nonzero(sitk.GetArrayViewFromImage(mask.mask))) * \
            voxel_volume_mL(mask.mask)
    return rows


def statistics_table_node(scene, rows: Sequence[OrganStatistics], name: str, unit: str = DOSE_RATE_UNIT):
    """A table node with one row per structure and the columns of :func:`organ_table_rows`.

    The first column (``organ``) holds names; every other column is numeric with its unit label.
    """
    table_rows = organ_table_rows(list(rows))
    header, body = table_rows[0], table_rows[1:]
    table_node = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    table = table_node.GetTable()
    for index, column_name in enumerate(header):
        values = [row[index] for row in body]
        if index == 0:
            table.AddColumn(_string_column(column_name, values))
        else:
            table.AddColumn(_double_column(column_name, [float(v) if v != "nan" else math.nan for v in values]))
            column_unit = _unit_of_column(column_name, unit)
            if column_unit:
                table_node.SetColumnUnitLabel(column_name, column_unit)
    table_node.SetUseFirstColumnAsRowHeader(True)
    table_node.SetAttribute(ATTRIBUTE_STATISTICS, "1")
    table_node.SetAttribute("DeepDose.Unit", unit)
    table_node.Modified()
    return table_node


def table_column(table_node, column_name: str) -> list:
    """Values of one column of a table node (floats for numeric columns, str otherwise)."""
    column = table_node.GetTable().GetColumnByName(column_name)
    if column is None:
        raise KeyError(column_name)
    if isinstance(column, vtk.vtkStringArray):
        return [column.GetValue(i) for i in range(column.GetNumberOfValues())]
    return [column.GetValue(i) for i in range(column.GetNumberOfTuples())]


def segmentation_label_map(scene, segmentation_node, reference_volume_node):
    """All segments as one label map on ``reference_volume_node``'s grid (e.g. the PET for MIRD).

    Uses ``vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode`` with the reference
    geometry; segment *i* (in segmentation order) gets label *i* + 1 (overlaps: the later segment
    wins). Returns ``(label image (SimpleITK, LPS), {label: segment name})``.
    """
    import slicer

    segmentation = segmentation_node.GetSegmentation()
    ids = vtk.vtkStringArray()
    segmentation.GetSegmentIDs(ids)
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "DeepDose segment export")
    try:
        ok = slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
            segmentation_node, ids, labelmap, reference_volume_node,
            slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY)
        if not ok:
            raise RuntimeError("Exporting the segmentation '%s' to a label map failed." % segmentation_node.GetName())
        labels = image_from_volume_node(labelmap)
    finally:
        display = labelmap.GetDisplayNode()
        scene.RemoveNode(labelmap)
        if display is not None and display.GetScene() is not None:
            scene.RemoveNode(display)
    names = {i + 1: segmentation.GetSegment(ids.GetValue(i)).GetName() for i in range(ids.GetNumberOfValues())}
    return labels, names
