"""Label maps -> segmentation nodes, and the demo case loaded into a scene (Slicer's SampleData uses it).

:func:`segmentation_from_labels` imports the named labels of a SimpleITK label map as one
``vtkMRMLSegmentationNode`` (through :mod:`.segmentations`, the Segmentations module's own import).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Union

import numpy as np
import SimpleITK as sitk

from .segmentations import segmentation_node_from_labels
from .volumes import volume_node_from_image

#: Labels of the demo case left out of its segmentation by default: large "rest of body" classes
#: whose DVH says little, and air.
DEMO_SKIPPED_LABELS = ("background", "soft_tissue", "fat", "muscle", "gastrointestinal_gas", "airways")


def segmentation_from_labels(scene, labels_image: sitk.Image, names: Mapping[int, str], name: str = "Structures"):
    """A segmentation node with one segment per entry of ``names`` (label value -> name) present in the map.

    Labels absent from ``names`` are set to 0 (left out) before the import by
    :func:`.segmentations.segmentation_node_from_labels`; segments are named after ``names``.
    """
    array = sitk.GetArrayFromImage(labels_image)
    keep = sorted(int(v) for v in names if int(v) != 0)
    selected = sitk.GetImageFromArray(np.where(np.isin(array, keep), array, 0).astype(np.uint16))
    selected.CopyInformation(labels_image)
    return segmentation_node_from_labels(scene, selected, {int(v): str(n) for v, n in names.items()}, name)


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
