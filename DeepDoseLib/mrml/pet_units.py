"""The PET/SPECT activity (Bq/mL) of a volume node, converted or refused exactly as the command line does.

* A volume loaded from DICOM (node attribute ``DICOM.instanceUIDs``): its headers are read from the DICOM
  database files (``file_for_instance``, e.g. ``slicer.dicomDatabase.fileForInstance``) and converted by
  :func:`DeepDoseLib.dicom_pet.series_conversion`, the command line's conversion: Units BQML, body-weight
  SUV (GML, with decay correction and times) and Philips CNTS; anything else is refused with the tag
  named. The unit chooser does not apply.
* Any other volume: its values are in the unit chosen by the user (Bq/mL, kBq/mL, MBq/mL), times an
  optional SPECT calibration factor.

The input node is never modified: when a conversion is needed a hidden temporary node in Bq/mL (same name,
same geometry) is made for the run and removed afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Optional

import numpy as np
import SimpleITK as sitk

from ..errors import DeepDoseInputError
from ..image_io import PET_UNIT_TO_BQ_PER_ML
from .rtdose_export import DICOM_INSTANCE_UIDS_ATTRIBUTE, dicom_files_of_node
from .volumes import image_from_volume_node, volume_node_from_image

#: Attribute of the dose node: ISO date-time the dose rate refers to (the PET's activity reference time).
REFERENCE_TIME_ATTRIBUTE = "DeepDose.ReferenceTime"


@dataclass
class PetActivity:
    """The PET in Bq/mL for a run: ``node`` (the input, or a temporary converted copy) and how it was obtained.

    ``reference_time``: ISO date-time the activity (and so the dose rate) refers to, "" when unknown.
    """

    node: object
    temporary: bool
    from_dicom: bool
    conversion: str
    reference_time: str = ""
    warnings: List[str] = field(default_factory=list)
    check: object = None
    source_node: object = None

    def summary(self) -> str:
        """One line for the user: conversion, total activity, reference time."""
        parts = ["PET: " + self.conversion + "."]
        if self.check is not None:
            parts.append(self.check.text())
        parts.append("Dose rate at %s." % self.reference_time if self.reference_time else
                     "Reference time of the dose rate: the time the PET values refer to (not recorded in the file).")
        return " ".join(parts)

    def finish(self, dose_node) -> None:
        """Record on the dose node its reference time and the user's PET (not the temporary copy); discard the copy."""
        from .logic import REFERENCE_PET

        dose_node.SetAttribute(REFERENCE_TIME_ATTRIBUTE, self.reference_time or "")
        dose_node.SetAttribute("DeepDose.PetConversion", self.conversion)
        if self.source_node is not None:
            dose_node.SetNodeReferenceID(REFERENCE_PET, self.source_node.GetID())
        self.discard()

    def discard(self) -> None:
        """Remove the temporary node (if any)."""
        if self.temporary and self.node is not None and self.node.GetScene() is not None:
            self.node.GetScene().RemoveNode(self.node)
        self.temporary = False


def is_dicom_volume(node) -> bool:
    return node is not None and bool((node.GetAttribute(DICOM_INSTANCE_UIDS_ATTRIBUTE) or "").strip())


def _dicom_factors(node, file_for_instance) -> tuple:
    """(factor per slice k of the node, metadata) from the node's DICOM headers."""
    import pydicom

    from ..dicom_pet import series_conversion

    files = dicom_files_of_node(node, file_for_instance)
    uids = (node.GetAttribute(DICOM_INSTANCE_UIDS_ATTRIBUTE) or "").split()
    if not files or len(files) != len(uids):
        raise DeepDoseInputError(
            "The PET '%s' was loaded from DICOM but its files are not in the DICOM database (%d of %d found): its "
            "Units (0054,1001) cannot be read. Re-import it through the DICOM module." % (node.GetName(), len(files),
                                                                                       len(uids)))
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    ras_to_ijk = _ras_to_ijk(node)
    slices = []
    for ds in headers:
        if "ImagePositionPatient" not in ds:
            raise DeepDoseInputError("PET DICOM file without ImagePositionPatient (0020,0032): cannot place its slice")
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ijk = ras_to_ijk @ np.array([-x, -y, z, 1.0])  # LPS -> RAS
        slices.append(int(round(ijk[2])))
    order = np.argsort(slices)
    headers = [headers[i] for i in order]
    slices = [slices[i] for i in order]
    factors, metadata = series_conversion(headers)
    return dict(zip(slices, factors)), metadata


def _ras_to_ijk(node) -> np.ndarray:
    import vtk

    matrix = vtk.vtkMatrix4x4()
    node.GetRASToIJKMatrix(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def _beside(scene, node, reference_node) -> None:
    """Put ``node`` under the subject-hierarchy parent of ``reference_node`` (when that has one)."""
    from .hierarchy import subject_hierarchy

    sh = subject_hierarchy(scene)
    reference = sh.GetItemByDataNode(reference_node)
    if not reference:
        return
    item = sh.GetItemByDataNode(node) or sh.CreateItem(sh.GetItemParent(reference), node)
    sh.SetItemParent(item, sh.GetItemParent(reference))


def pet_activity(scene, pet_node, *, pet_unit: str = "Bq/mL", calibration_factor: float = 1.0,
                 file_for_instance: Optional[Callable[[str], str]] = None, ct_node=None) -> PetActivity:
    """The PET of a run in Bq/mL (see the module docstring); with ``ct_node`` the total activity is checked.

    Raises DeepDoseInputError (a ValueError) for a DICOM PET that cannot be converted (the tag is named),
    an unknown unit or a non-positive calibration factor.
    """
    if pet_node is None:
        raise DeepDoseInputError("Select a PET/SPECT volume.")
    values = None
    if is_dicom_volume(pet_node):
        per_slice, metadata = _dicom_factors(pet_node, file_for_instance)
        image = image_from_volume_node(pet_node)
        values = sitk.GetArrayFromImage(image).astype(np.float64)
        if set(per_slice) != set(range(values.shape[0])):
            raise DeepDoseInputError("The PET's DICOM slices do not match the volume's %d slices: cannot map each "
                                     "file's activity conversion to its slice" % values.shape[0])
        factors = np.array([per_slice[k] for k in range(values.shape[0])])
        activity = PetActivity(pet_node, False, True, "DICOM " + metadata["DeepDose.conversion"],
                               metadata["DeepDose.reference_time"])
        if np.allclose(factors, 1.0, rtol=0, atol=0):
            values = values if ct_node is not None else None
        else:
            values *= factors[:, None, None]
            converted = sitk.GetImageFromArray(values.astype(np.float32))
            converted.CopyInformation(image)
            activity.node = volume_node_from_image(scene, converted, pet_node.GetName())
            activity.temporary = True
    else:
        if pet_unit not in PET_UNIT_TO_BQ_PER_ML:
            raise DeepDoseInputError("Unknown PET unit %r; use one of %s." % (pet_unit, ", ".join(PET_UNIT_TO_BQ_PER_ML)))
        if not (np.isfinite(calibration_factor) and calibration_factor > 0):
            raise DeepDoseInputError("The SPECT calibration factor must be > 0, got %r." % calibration_factor)
        factor = PET_UNIT_TO_BQ_PER_ML[pet_unit] * float(calibration_factor)
        text = "values in %s" % pet_unit + (" x calibration factor %.6g" % calibration_factor
                                             if calibration_factor != 1.0 else "")
        activity = PetActivity(pet_node, False, False, text)
        if factor != 1.0 or ct_node is not None:
            image = image_from_volume_node(pet_node)
            values = sitk.GetArrayFromImage(image).astype(np.float64) * factor
            if factor != 1.0:
                converted = sitk.GetImageFromArray(values.astype(np.float32))
                converted.CopyInformation(image)
                activity.node = volume_node_from_image(scene, converted, pet_node.GetName())
                activity.temporary = True
    activity.source_node = pet_node
    if activity.temporary:
        _beside(scene, activity.node, pet_node)  # same patient/study: the run folder lands in the PET's study
        activity.node.SetHideFromEditors(True)
        activity.node.SetAttribute("DeepDose.TemporaryActivity", "1")
    if ct_node is not None:
        from ..activity_check import check_activity

        ct = image_from_volume_node(ct_node)
        pet_image = image_from_volume_node(pet_node)
        activity.check = check_activity(values, float(np.prod(pet_image.GetSpacing())) / 1000.0,
                                        sitk.GetArrayViewFromImage(ct), float(np.prod(ct.GetSpacing())) / 1000.0)
        activity.warnings += activity.check.warnings
    return activity
