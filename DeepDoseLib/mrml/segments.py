"""Label maps -> segmentation nodes, and the demo case loaded into a scene (Slicer's SampleData uses it).

:func:`segmentation_from_labels` imports a SimpleITK label map with its names as one
``vtkMRMLSegmentationNode`` (one segment per named label, named and coloured from a temporary
colour table, the way Slicer imports a labelmap with a colour table).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import SimpleITK as sitk

from .volumes import volume_node_from_image

#: Labels of the demo case left out of its segmentation by default: large "rest of body" classes
#: whose DVH says little, and air.
DEMO_SKIPPED_LABELS = ("background", "soft_tissue", "fat", "muscle", "gastrointestinal_gas", "airways")


def _label_color(index: int) -> Tuple[float, float, float]:
    """A distinct, saturated colour for the ``index``-th structure (golden-angle hue steps)."""
    import colorsys

    hue = (index * 0.618033988749895) % 1.0
    return colorsys.hsv_to_rgb(hue, 0.75, 0.95)


def segmentation_from_labels(scene, labels_image: sitk.Image, names: Mapping[int, str], name: str = "Structures",
                             colors: Optional[Mapping[int, Sequence[float]]] = None):
    """Create a segmentation node with one segment per entry of ``names`` (label value -> name).

    Labels absent from ``names`` are ignored (set to 0 before the import). Returns the node.
    """
    import slicer

    array = sitk.GetArrayFromImage(labels_image)
    keep = sorted(int(v) for v in names if int(v) != 0)
    selected = np.where(np.isin(array, keep), array, 0).astype(np.uint16)
    image = sitk.GetImageFromArray(selected)
    image.CopyInformation(labels_image)

    color_node = scene.AddNewNodeByClass("vtkMRMLColorTableNode", "%s colors" % name)
    color_node.SetTypeToUser()
    color_node.SetNumberOfColors(max(keep) + 1 if keep else 1)
    color_node.SetColor(0, "background", 0.0, 0.0, 0.0, 0.0)
    for rank, value in enumerate(keep):
        rgb = tuple(colors[value])[:3] if colors and value in colors else _label_color(rank)
        color_node.SetColor(value, names[value], rgb[0], rgb[1], rgb[2], 1.0)
    labelmap = volume_node_from_image(scene, image, "%s labels" % name, labelmap=True)
    labelmap.GetDisplayNode().SetAndObserveColorNodeID(color_node.GetID())
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    try:
        ok = slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, segmentation)
        if not ok:
            raise RuntimeError("Importing the label map '%s' into a segmentation failed." % name)
    finally:
        display = labelmap.GetDisplayNode()
        scene.RemoveNode(labelmap)
        if display is not None and display.GetScene() is not None:
            scene.RemoveNode(display)
        scene.RemoveNode(color_node)
    segmentation.CreateDefaultDisplayNodes()
    return segmentation


def load_demo_case(scene, directory: Optional[Union[str, Path]] = None,
                   skip_labels: Sequence[str] = DEMO_SKIPPED_LABELS) -> Dict[str, object]:
    """Load the embedded demo PET/CT into ``scene``: CT (HU), PET (Bq/mL) and its organ segmentation.

    The files are generated locally on first use (no download) by
    :func:`DeepDoseLib.demo.ensure_demo_case_files` into ``directory`` (default: the per-user cache).
    Returns ``{"ct": node, "pet": node, "segmentation": node, "nuclide": "Ga68", "files": paths}``.
    """
    from ..demo import NUCLIDE, ensure_demo_case_files

    files = ensure_demo_case_files(directory)
    ct_node = volume_node_from_image(scene, sitk.ReadImage(str(files["ct"])), "DeepDose demo CT")
    pet_node = volume_node_from_image(scene, sitk.ReadImage(str(files["pet"])), "DeepDose demo PET (Bq/mL)")
    pet_node.SetAttribute("DeepDose.Unit", "Bq/mL")
    ct_node.SetAttribute("DeepDose.Unit", "HU")
    label_names = {int(k): v for k, v in json.loads(Path(files["label_names"]).read_text()).items()}
    names = {value: label for value, label in label_names.items() if label not in set(skip_labels)}
    labels = sitk.ReadImage(str(files["labels"]))
    segmentation = segmentation_from_labels(scene, labels, names, name="DeepDose demo organs")
    metadata = {}
    if files.get("metadata") and Path(files["metadata"]).is_file():
        metadata = json.loads(Path(files["metadata"]).read_text())
    return {"ct": ct_node, "pet": pet_node, "segmentation": segmentation,
            "nuclide": metadata.get("nuclide", NUCLIDE), "files": files}
