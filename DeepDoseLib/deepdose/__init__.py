"""Deep-dose: a 3D U-Net that maps activity, density and the plain VSV dose to the Monte Carlo dose rate.

Modules: :mod:`.unet` (the model, exactly linear in activity), :mod:`.patches` (sampling and
augmentation), :mod:`.training` (``deepdose train``), :mod:`.model_io` (TorchScript/torch.export files
with a hashed model card), :mod:`.inference` (patch-wise whole-volume inference), :mod:`.evaluation`
(errors against MC), :mod:`.data` (training cases). The dose method ``deepdose`` of
:func:`DeepDoseLib.dose.run_dose_method` uses :func:`.inference.deepdose_dose_rate`.
"""
from __future__ import annotations

from .inference import DeepDoseCancelled, deepdose_dose_rate
from .model_io import LoadedModel, export_model, load_model, resolve_model
from .unet import DeepDoseUNet

__all__ = ["DeepDoseCancelled", "DeepDoseUNet", "LoadedModel", "deepdose_dose_rate", "export_model", "load_model",
           "resolve_model"]
