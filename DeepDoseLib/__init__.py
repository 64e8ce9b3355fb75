"""DeepDose core: patient-specific voxel dosimetry from quantitative PET/SPECT and CT.

Pure Python (numpy, torch, SimpleITK, pydicom); never imports Slicer, VTK or Qt — the Slicer bridge
is :mod:`DeepDoseLib.mrml`. Units: activity Bq/mL, density g/cm³, dose rate mGy/h, spacing mm (LPS).

Typical use::

    import DeepDoseLib as dd
    ct = dd.read_ct("ct.nii.gz").image
    pet = dd.read_pet("pet.nii.gz", pet_unit="Bq/mL").image
    dose_rate = dd.compute_dose_rate(ct, pet, "Ga68", method="led")   # SimpleITK image in mGy/h
"""
from __future__ import annotations

from ._version import __version__

# The names below are imported on first use (PEP 562), so that ``import DeepDoseLib`` and its torch-free
# modules (nuclides, units, dicom_pet, rtdose, the model card reader) do not import torch: the Slicer
# module opens, lists nuclides and shows the model card without PyTorch installed.
_LAZY = {
    "DoseInputs": ".dose", "compute_dose_rate": ".dose", "compute_dose_rate_from_inputs": ".dose",
    "prepare_inputs": ".dose", "DeepDoseError": ".errors", "DeepDoseInputError": ".errors",
    "read_ct": ".image_io", "read_image": ".image_io", "read_pet": ".image_io", "write_image": ".image_io",
    "Nuclide": ".nuclides", "get_nuclide": ".nuclides",
    "list_nuclides": ".nuclides",
}


def __getattr__(name):
    if name == "METHODS":  # the dose methods this version can run, from the registry (DeepDoseLib.dose_methods)
        from .dose_methods import method_names

        globals()["METHODS"] = method_names()
        return globals()["METHODS"]
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "__version__", "METHODS", "DeepDoseError", "DeepDoseInputError", "DoseInputs", "Nuclide",
    "compute_dose_rate", "compute_dose_rate_from_inputs", "get_nuclide", "list_nuclides", "prepare_inputs",
    "read_ct", "read_image", "read_pet", "write_image",
]
