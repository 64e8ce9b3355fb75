"""The only bridge between DeepDoseLib and Slicer's MRML (works in Slicer and with ``slicer-core``).

Every function takes the scene explicitly; nothing here uses ``slicer.mrmlScene``.

* :func:`run_dosimetry`: CT (HU) + PET (Bq/mL) [+ segmentation] -> :class:`DosimetryResult`: dose-rate
  volume (mGy/h) shown as a wash with a colour legend, isodose model (lines in the slice views),
  one DVH table + plot series per segment, a DVH chart and an organ statistics table, all under
  one subject-hierarchy folder. :func:`build_dosimetry_outputs` does the same from a dose node
  computed elsewhere (the DeepDoseCLI module); :func:`update_isodose_levels` edits the levels.
* :func:`image_from_volume_node`, :func:`volume_node_from_image`: SimpleITK (LPS) <-> volume node
  (RAS) with exact geometry and copied voxels, numpy order ``(z, y, x)``.
* :func:`show_dose_overlay`, :func:`show_color_legend`: dose wash over the CT, colour legend.
* :func:`compute_dose_rate_node`: the dose-rate node alone.
* :func:`create_headless_scene`, :func:`get_scene`, :func:`save_scene_bundle`,
  :func:`load_scene_bundle`: a usable scene without the application, ``.mrb`` files.
* :class:`OffscreenSliceView` (:mod:`.rendering`): a slice view rendered offscreen with Slicer's
  displayable managers; :func:`load_demo_case`, :func:`segmentation_from_labels`.
"""
from __future__ import annotations

from .display import (
    DOSE_RATE_UNIT,
    DOSE_VOLUME_ATTRIBUTE,
    UNIT_ATTRIBUTE,
    dose_wash_color_node,
    dose_wash_rgb,
    set_dose_units,
    show_color_legend,
    show_dose_overlay,
)
from .dosimetry import DosimetryResult, build_dosimetry_outputs, fallback_node_name, run_dosimetry, tissue_maximum
from .hierarchy import create_run_folder, dose_study_item, folder_nodes, place_in_folder, run_folders
from .pet_units import PetActivity, is_dicom_volume, pet_activity
from .rtdose_export import dicom_files_of_node, export_rtdose
from .isodose import (
    ISODOSE_LEVEL_ARRAY,
    create_isodose_model,
    find_isodose_model,
    isodose_level_names,
    parse_levels_percent,
    update_isodose_levels,
)
from .logic import compute_dose_rate_node, dose_node_name, tag_dose_node
from .scene import (
    create_headless_scene,
    enable_scene_bundle_io,
    get_scene,
    in_slicer_application,
    load_scene_bundle,
    release_headless_scene,
    save_scene_bundle,
    slice_composite_nodes,
)
from .segments import load_demo_case, segmentation_from_labels
from .structures import table_column
from .volumes import (
    array_from_volume_node,
    image_from_volume_node,
    volume_geometry,
    volume_node_from_image,
)

__all__ = [
    "DOSE_RATE_UNIT",
    "DOSE_VOLUME_ATTRIBUTE",
    "ISODOSE_LEVEL_ARRAY",
    "UNIT_ATTRIBUTE",
    "DosimetryResult",
    "array_from_volume_node",
    "build_dosimetry_outputs",
    "compute_dose_rate_node",
    "create_headless_scene",
    "create_isodose_model",
    "create_run_folder",
    "dicom_files_of_node",
    "dose_study_item",
    "export_rtdose",
    "is_dicom_volume",
    "pet_activity",
    "PetActivity",
    "dose_node_name",
    "dose_wash_color_node",
    "dose_wash_rgb",
    "fallback_node_name",
    "find_isodose_model",
    "enable_scene_bundle_io",
    "folder_nodes",
    "get_scene",
    "image_from_volume_node",
    "in_slicer_application",
    "isodose_level_names",
    "load_demo_case",
    "load_scene_bundle",
    "parse_levels_percent",
    "place_in_folder",
    "release_headless_scene",
    "run_dosimetry",
    "run_folders",
    "save_scene_bundle",
    "segmentation_from_labels",
    "set_dose_units",
    "show_color_legend",
    "show_dose_overlay",
    "slice_composite_nodes",
    "table_column",
    "tag_dose_node",
    "tissue_maximum",
    "update_isodose_levels",
    "volume_geometry",
    "volume_node_from_image",
]
