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
from .dose import DoseInputs, compute_dose_rate, compute_dose_rate_from_inputs, prepare_inputs
from .errors import DeepDoseError, DeepDoseInputError
from .image_io import read_ct, read_image, read_pet, write_image
from .dose_methods import method_names
from .nuclides import Nuclide, get_nuclide, list_nuclides

#: The dose methods this version can run (from the registry, :mod:`DeepDoseLib.dose_methods`).
METHODS = method_names()

__all__ = [
    "__version__", "METHODS", "DeepDoseError", "DeepDoseInputError", "DoseInputs", "Nuclide",
    "compute_dose_rate", "compute_dose_rate_from_inputs", "get_nuclide", "list_nuclides", "prepare_inputs",
    "read_ct", "read_image", "read_pet", "write_image",
]
