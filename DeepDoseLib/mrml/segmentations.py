"""Label maps → MRML segmentation nodes with organ names (and a loader for generated cases).

The label map is imported through a temporary labelmap volume node whose colour table carries the
organ names, with ``vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode`` (the
Segmentations module's own import), so each label value becomes one segment named after its organ.
"""
from __future__ import annotations

import colorsys
import json
from pathlib import Path
from typing import Dict, Optional, Union

import numpy as np
import SimpleITK as sitk

from ..errors import DeepDoseInputError
from .volumes import volume_node_from_image


def _slicer():
    import slicer

    return slicer


def _color(value: int) -> tuple:
    """A distinct, stable colour per label value (golden-ratio hue walk)."""
    return colorsys.hsv_to_rgb((value * 0.618033988749895) % 1.0, 0.65, 0.95)


def label_color_table(scene, label_names: Dict[int, str], name: str = "DeepDose labels"):
    """A ``vtkMRMLColorTableNode`` naming label value v by ``label_names[v]`` (unnamed values are unused)."""
    table = scene.AddNewNodeByClass("vtkMRMLColorTableNode", name)
    table.SetTypeToUser()
    table.SetNumberOfColors(int(max(label_names)) + 1)
    for value in range(int(max(label_names)) + 1):
        r, g, b = _color(value)
        label = label_names.get(value)
        table.SetColor(value, label if label is not None else "", r, g, b, 1.0 if label is not None and value else 0.0)
    return table


def segmentation_node_from_labels(scene, labels: sitk.Image, label_names: Dict[int, str], name: str = "Labels",
                                  reference_volume_node=None):
    """Create a ``vtkMRMLSegmentationNode`` with one segment per label value present (background 0 excluded).

    Args:
        labels: integer label map (SimpleITK, LPS).
        label_names: value → organ name; the segment gets that name (``label <v>`` when missing).
        reference_volume_node: volume whose geometry the segmentation refers to (e.g. the CT).

    Returns:
        The segmentation node; segment names are the organ names (``segment.GetLabelValue()`` the value).
    """
    slicer = _slicer()
    values = [int(v) for v in np.unique(sitk.GetArrayViewFromImage(labels)) if v != 0]
    if not values:
        raise DeepDoseInputError("The label map is empty (only background): nothing to segment.")
    if max(values) > 65535 or min(values) < 0:
        raise DeepDoseInputError("Label values must be in 0 … 65535.")
    names = {v: str(label_names.get(v, f"label {v}")) for v in values}
    labelmap = volume_node_from_image(scene, sitk.Cast(labels, sitk.sitkUInt16), f"{name} labelmap", labelmap=True)
    colors = label_color_table(scene, names, f"{name} colours")
    labelmap.GetDisplayNode().SetAndObserveColorNodeID(colors.GetID())
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    segmentation.CreateDefaultDisplayNodes()
    if reference_volume_node is not None:
        segmentation.SetReferenceImageGeometryParameterFromVolumeNode(reference_volume_node)
    ok = slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, segmentation)
    scene.RemoveNode(labelmap)
    scene.RemoveNode(colors)
    if not ok:
        raise DeepDoseInputError(f"Importing the label map '{name}' into a segmentation failed.")
    seg = segmentation.GetSegmentation()
    for i in range(seg.GetNumberOfSegments()):
        segment = seg.GetNthSegment(i)
        value = int(segment.GetLabelValue()) if hasattr(segment, "GetLabelValue") else None
        if value in names:
            segment.SetName(names[value])
            segment.SetColor(*_color(value))
    return segmentation


def load_case_into_scene(scene, case_dir: Union[str, Path], prefix: Optional[str] = None) -> dict:
    """Load a generated case folder (ct, pet, true_activity, labels + labels.json, dose_rate if present)
    into ``scene``; returns name → node (the labels as a segmentation referring to the CT)."""
    folder = Path(case_dir)
    prefix = prefix or folder.name
    if not (folder / "labels.nii.gz").is_file() or not (folder / "ct.nii.gz").is_file():
        raise DeepDoseInputError(f"{folder} is not a DeepDose case folder (ct.nii.gz and labels.nii.gz expected).")
    nodes = {}
    for key in ("ct", "pet", "true_activity", "dose_rate"):
        path = folder / f"{key}.nii.gz"
        if path.is_file():
            nodes[key] = volume_node_from_image(scene, sitk.ReadImage(str(path)), f"{prefix} {key}")
    names = {int(k): v for k, v in json.loads((folder / "labels.json").read_text()).items()} \
        if (folder / "labels.json").is_file() else {}
    nodes["labels"] = segmentation_node_from_labels(scene, sitk.ReadImage(str(folder / "labels.nii.gz")), names,
                                                    f"{prefix} labels", nodes["ct"])
    return nodes
