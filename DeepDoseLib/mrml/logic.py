"""Compute a dose-rate map from CT and PET volume nodes and show it in the scene.

This is the MRML-facing counterpart of :func:`DeepDoseLib.compute_dose_rate`: nodes in, node out.
Inputs are read through deep copies (:func:`image_from_volume_node`), so the CT and PET nodes
are never modified.
"""
from __future__ import annotations

from typing import Callable, Optional

from .display import DOSE_RATE_UNIT, show_dose_overlay
from .volumes import image_from_volume_node, volume_node_from_image
from ..errors import DeepDoseInputError

ATTRIBUTE_METHOD = "DeepDose.Method"
ATTRIBUTE_NUCLIDE = "DeepDose.Nuclide"
ATTRIBUTE_VERSION = "DeepDose.Version"
ATTRIBUTE_INCLUDE_PHOTONS = "DeepDose.IncludePhotons"
ATTRIBUTE_CLIP_NEGATIVE = "DeepDose.ClipNegative"
#: Node reference roles from the dose node to the volumes it was computed from.
REFERENCE_CT = "DeepDoseCT"
REFERENCE_PET = "DeepDosePET"
#: SlicerRT reads the unit name of a dose volume from this attribute (DVH / isodose labels).
ATTRIBUTE_SLICERRT_UNIT_NAME = "DicomRtImport.DoseUnitName"


def _version() -> str:
    try:
        from .._version import __version__
    except ImportError:  # pragma: no cover - packaging without _version.py
        return "unknown"
    return str(__version__)


def tag_dose_node(dose_node, ct_node, pet_node, method: str, nuclide: str, include_photons: bool = False,
                  clip_negative: bool = False) -> None:
    """Record on ``dose_node`` how it was made (attributes ``DeepDose.*``) and its CT/PET (references)."""
    dose_node.SetAttribute(ATTRIBUTE_METHOD, method)
    dose_node.SetAttribute(ATTRIBUTE_NUCLIDE, nuclide)
    dose_node.SetAttribute(ATTRIBUTE_VERSION, _version())
    dose_node.SetAttribute(ATTRIBUTE_INCLUDE_PHOTONS, "1" if include_photons else "0")
    dose_node.SetAttribute(ATTRIBUTE_CLIP_NEGATIVE, "1" if clip_negative else "0")
    dose_node.SetAttribute(ATTRIBUTE_SLICERRT_UNIT_NAME, DOSE_RATE_UNIT)
    if ct_node is not None:
        dose_node.SetNodeReferenceID(REFERENCE_CT, ct_node.GetID())
    if pet_node is not None:
        dose_node.SetNodeReferenceID(REFERENCE_PET, pet_node.GetID())


def dose_node_name(pet_node, method: str, nuclide: str) -> str:
    """Default output name, e.g. ``"PET dose rate (mGy/h, LED Ga68)"``."""
    return "%s dose rate (%s, %s %s)" % (pet_node.GetName(), DOSE_RATE_UNIT, method.upper(), nuclide)


def compute_dose_rate_node(
    scene,
    ct_node,
    pet_node,
    nuclide: str,
    method: str = "led",
    include_photons: bool = False,
    clip_negative: bool = False,
    output_node=None,
    progress: Optional[Callable[[float, str], None]] = None,
):
    """Compute the dose-rate map (mGy/h) of ``pet_node`` and show it as an overlay on ``ct_node``.

    Parameters
    ----------
    scene : vtkMRMLScene
        Scene of the inputs; a new output node is added to it.
    ct_node : vtkMRMLScalarVolumeNode
        CT volume, voxel values in HU.
    pet_node : vtkMRMLScalarVolumeNode
        PET activity-concentration volume, voxel values in Bq/mL (not SUV, not counts).
    nuclide : str
        Nuclide name as listed by ``DeepDoseLib.list_nuclides()``, e.g. "Ga68".
    method : str
        One of ``DeepDoseLib.METHODS`` (e.g. "led": local energy deposition).
    include_photons, clip_negative : bool
        Passed to :func:`DeepDoseLib.compute_dose_rate`.
    output_node : vtkMRMLScalarVolumeNode, optional
        Node to overwrite (keeps its ID, name and display node); when None a new node is created,
        named after the PET, e.g. "PET dose rate (mGy/h, LED Ga68)".
    progress : callable(fraction, message), optional
        Progress callback forwarded to the computation.

    Returns
    -------
    vtkMRMLScalarVolumeNode
        Dose-rate volume on the PET grid (float32, mGy/h), displayed as a dose wash.
    """
    from .. import compute_dose_rate  # resolved at call time: the core may be imported lazily

    if ct_node is None or pet_node is None:
        raise DeepDoseInputError("Both a CT volume (HU) and a PET volume (Bq/mL) are required.")
    if output_node is not None and output_node in (ct_node, pet_node):
        raise DeepDoseInputError(
            "The output volume must differ from the CT and PET inputs: choose a new volume."
        )

    ct_image = image_from_volume_node(ct_node)
    pet_image = image_from_volume_node(pet_node)
    dose_image = compute_dose_rate(
        ct_image,
        pet_image,
        nuclide,
        method,
        include_photons=include_photons,
        clip_negative=clip_negative,
        progress=progress,
    )

    name = dose_node_name(pet_node, method, nuclide)
    if output_node is not None and output_node.GetName():
        name = output_node.GetName()
    dose_node = volume_node_from_image(scene, dose_image, name, node=output_node)

    tag_dose_node(dose_node, ct_node, pet_node, method, nuclide, include_photons, clip_negative)

    show_dose_overlay(scene, dose_node, background_node=ct_node)
    if progress is not None:
        progress(1.0, "Dose-rate map ready: %s" % dose_node.GetName())
    return dose_node
