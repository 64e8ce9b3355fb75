"""Export a DeepDose dose volume node as a DICOM RT Dose file (the writer is :mod:`DeepDoseLib.rtdose`).

The unit decides what is written: an absorbed dose (``Gy``, ``mGy``, ``cGy``; e.g. a time-integrated map)
is written as DoseUnits ``GY``, DoseType ``PHYSICAL`` (values in Gy); a dose-rate map (``mGy/h``) is
never written as ``GY`` (a planning or dosimetry system would read it as absorbed dose): it is written
as DoseUnits ``RELATIVE`` with ``DOSE RATE mGy/h`` in the DoseComment and SeriesDescription. With the
DICOM files of the PET (or CT) the dose was computed from, the file joins their patient, study and
frame of reference.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

from ..errors import DeepDoseInputError
from ..rtdose import RATE_UNITS, TO_GY, write_rtdose
from .display import DOSE_VOLUME_ATTRIBUTE, UNIT_ATTRIBUTE
from .volumes import image_from_volume_node

#: Node attribute with the SOP Instance UIDs of a volume loaded from DICOM (set by Slicer's DICOM plugins).
DICOM_INSTANCE_UIDS_ATTRIBUTE = "DICOM.instanceUIDs"


def dicom_files_of_node(node, file_for_instance) -> list:
    """The DICOM files a volume was loaded from: ``file_for_instance(uid)`` (e.g. ``slicer.dicomDatabase.fileForInstance``)
    for each UID of the node's ``DICOM.instanceUIDs`` attribute; [] for a volume not loaded from DICOM."""
    if node is None or file_for_instance is None:
        return []
    uids = (node.GetAttribute(DICOM_INSTANCE_UIDS_ATTRIBUTE) or "").split()
    files = [file_for_instance(uid) for uid in uids]
    return [f for f in files if f]


def rtdose_units_for(unit: str) -> str:
    """DICOM DoseUnits for a dose volume in ``unit``: ``GY`` for an absorbed dose, ``RELATIVE`` for a rate."""
    if unit in TO_GY:
        return "GY"
    if unit in RATE_UNITS:
        return "RELATIVE"
    raise DeepDoseInputError(f"Cannot export a volume in {unit!r} as RT Dose: use an absorbed dose "
                             f"({', '.join(TO_GY)}) or a dose rate ({', '.join(RATE_UNITS)}).")


def export_rtdose(dose_node, path: Union[str, Path], reference_files: Optional[Sequence[str]] = None,
                  overwrite: bool = False) -> Path:
    """Write ``dose_node`` (a DeepDose dose volume, unit in its ``DeepDose.Unit`` attribute) as RT Dose.

    ``reference_files``: DICOM files of the PET/CT series the dose lies on (patient, study, frame of
    reference are copied); without them the file gets a placeholder patient. Returns the written path.
    """
    if dose_node is None or dose_node.GetAttribute(DOSE_VOLUME_ATTRIBUTE) != "1":
        raise DeepDoseInputError("Select a DeepDose dose volume to export as RT Dose.")
    unit = dose_node.GetAttribute(UNIT_ATTRIBUTE) or ""
    units = rtdose_units_for(unit)
    references = None
    if reference_files:
        import pydicom

        references = [pydicom.dcmread(str(f), stop_before_pixels=True) for f in reference_files]
    kind = "ABSORBED DOSE Gy" if units == "GY" else "DOSE RATE %s" % unit
    return write_rtdose(image_from_volume_node(dose_node), path, unit=unit, units=units, dose_type="PHYSICAL",
                        reference_ct_dicom_dir=references, description="DeepDose %s %s" % (kind, dose_node.GetName()),
                        overwrite=overwrite)
