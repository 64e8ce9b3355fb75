"""The only bridge between DeepDoseLib and Slicer's MRML (works in Slicer and with ``slicer-core``).

Every function takes the scene explicitly; nothing here uses ``slicer.mrmlScene``.

* :func:`image_from_volume_node`, :func:`volume_node_from_image`: SimpleITK (LPS) <-> volume node
  (RAS) with exact geometry and copied voxels, numpy order ``(z, y, x)``.
* :func:`show_dose_overlay`: dose wash (mGy/h) over the CT in every slice view.
* :func:`compute_dose_rate_node`: CT (HU) + PET (Bq/mL) nodes -> dose-rate node (mGy/h).
* :func:`create_headless_scene`, :func:`get_scene`: a usable scene without the application.
"""
from __future__ import annotations

from .display import (
    DOSE_RATE_UNIT,
    DOSE_VOLUME_ATTRIBUTE,
    UNIT_ATTRIBUTE,
    dose_wash_color_node,
    set_dose_units,
    show_dose_overlay,
)
from .logic import compute_dose_rate_node, dose_node_name
from .scene import (
    create_headless_scene,
    get_scene,
    in_slicer_application,
    release_headless_scene,
    slice_composite_nodes,
)
from .volumes import (
    array_from_volume_node,
    image_from_volume_node,
    volume_geometry,
    volume_node_from_image,
)

__all__ = [
    "DOSE_RATE_UNIT",
    "DOSE_VOLUME_ATTRIBUTE",
    "UNIT_ATTRIBUTE",
    "array_from_volume_node",
    "compute_dose_rate_node",
    "create_headless_scene",
    "dose_node_name",
    "dose_wash_color_node",
    "get_scene",
    "image_from_volume_node",
    "in_slicer_application",
    "release_headless_scene",
    "set_dose_units",
    "show_dose_overlay",
    "slice_composite_nodes",
    "volume_geometry",
    "volume_node_from_image",
]
