"""The one Python API behind every entry point: PET + CT → dose-rate map [mGy/h].

Flow: inputs (units and geometry checked, :mod:`.inputs`) → tissue model (density, material) → method
(one of the registered :mod:`.dose_methods`) → image on the dose grid (the PET grid unless another
reference grid is given).
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np
import SimpleITK as sitk

from ._version import __version__
from .devices import resolve_device
from .dose_methods import RunContext, get_method, registered_methods
from .inputs import DoseInputs, check_activity, prepare_inputs
from .nuclides import Nuclide, get_nuclide
from .progress import CancelCallback, ProgressCallback, report_progress, sub_progress
from .tissue import HU_OUTSIDE_CT, TISSUE_MIN_DENSITY_g_per_cm3, HUDensityCalibration

__all__ = ["DoseInputs", "DoseResult", "MethodOptions", "check_activity", "compute_dose_rate",
           "compute_dose_rate_from_inputs", "method_options", "prepare_inputs", "resolve_device", "run_dose_method"]

logger = logging.getLogger(__name__)

#: ``DeepDose.quantity`` of the fallback mask image (:attr:`DoseResult.fallback`).
FALLBACK_QUANTITY = "fallback to the physics baseline (1)"

#: Former names, kept for scripts written against DeepDose ≤ 0.x.
LOW_DENSITY_g_per_cm3 = TISSUE_MIN_DENSITY_g_per_cm3


def _all_options_type() -> type:
    """One flat dataclass with every registered method's options (each method reads its own fields).

    Built from the registry, so it cannot drift from the methods' declarations; two methods that share
    an option (``kernel_decays``) share one field.
    """
    fields: Dict[str, tuple] = {}
    for method in registered_methods():
        for f in dataclasses.fields(method.Options):
            fields.setdefault(f.name, (f.name, f.type, dataclasses.field(default=f.default, metadata=f.metadata)))
    fields["labels"] = ("labels", Any, dataclasses.field(default=None))
    fields["label_names"] = ("label_names", Optional[dict], dataclasses.field(default=None))
    cls = dataclasses.make_dataclass("MethodOptions", list(fields.values()))
    cls.__module__ = __name__
    cls.__doc__ = ("Options of all dose methods in one object (each method reads its own; see "
                   ":mod:`DeepDoseLib.dose_methods`), plus the study's organ ``labels`` and ``label_names``.")
    return cls


#: Every method's options in one object, for scripts and front ends that hold options for any method.
MethodOptions = _all_options_type()


def method_options(method: str, options: Any = None):
    """The checked options object of ``method`` from ``options``: None (defaults), the method's own
    options dataclass, or any object with attributes of the same names (e.g. :data:`MethodOptions`)."""
    spec = get_method(method)
    if options is None:
        own = spec.Options()
    elif isinstance(options, spec.Options):
        own = options
    else:
        names = [f.name for f in dataclasses.fields(spec.Options)]
        own = spec.Options(**{n: getattr(options, n) for n in names if hasattr(options, n)})
    return spec.checked(own)


@dataclass
class DoseResult:
    """A dose-rate map [mGy/h] with what produced it.

    Attributes
    ----------
    dose_rate : SimpleITK.Image
        Dose rate [mGy/h] (float32) on the dose grid.
    method, nuclide : str
        The method key and the radionuclide.
    seconds : float
        Run time of the method [s].
    relative_uncertainty : SimpleITK.Image or None
        Relative standard uncertainty [fraction] on the dose grid (methods with one: ``mc``, ``deepdose``).
    notes : list of str
    fallback : SimpleITK.Image or None
        uint8 0/1 on the dose grid: 1 where a learned method returned its physics baseline (Deep-dose → the
        density-scaled VSV); metadata ``DeepDose.quantity`` = :data:`FALLBACK_QUANTITY`. None for methods
        without a fallback.
    """

    dose_rate: sitk.Image
    method: str
    nuclide: str
    seconds: float
    relative_uncertainty: Optional[sitk.Image] = None
    notes: List[str] = field(default_factory=list)
    fallback: Optional[sitk.Image] = None


def run_dose_method(inputs: DoseInputs, nuclide: Nuclide | str, method: str = "led", options: Any = None, *,
                    device: str = "auto", progress: Optional[ProgressCallback] = None,
                    cancel: Optional[CancelCallback] = None, labels: Optional[sitk.Image] = None,
                    label_names: Optional[dict] = None) -> DoseResult:
    """Run one registered method on prepared inputs; the dose rate lies on ``inputs.grid``.

    ``options``: see :func:`method_options`. ``labels``/``label_names`` (an organ label map on any grid)
    default to ``options.labels``/``options.label_names`` when the options carry them.
    """
    nuc = get_nuclide(nuclide) if isinstance(nuclide, str) else nuclide
    spec = get_method(method)
    own = method_options(method, options)
    context = RunContext(resolve_device(device), sub_progress(progress, 0.05, 0.95), cancel,
                         labels if labels is not None else getattr(options, "labels", None),
                         label_names if label_names is not None else getattr(options, "label_names", None))
    start = time.perf_counter()
    report_progress(progress, 0.05, f"{method.upper()} dose rate for {nuc.name} on {context.device}")
    output = spec.run(inputs, nuc, own, context)
    image = inputs.to_image(np.asarray(output.dose_rate_mGy_per_h).astype(np.float32))
    for key, value in {"DeepDose.quantity": "dose rate", "DeepDose.units": "mGy/h", "DeepDose.method": method,
                       "DeepDose.nuclide": nuc.name, "DeepDose.version": __version__}.items():
        image.SetMetaData(key, value)
    uncertainty = None
    if output.relative_uncertainty is not None:
        uncertainty = inputs.to_image(output.relative_uncertainty)
        uncertainty.SetMetaData("DeepDose.quantity", "relative standard uncertainty of the dose rate")
    fallback = None
    if output.fallback is not None:
        fallback = inputs.to_image(np.asarray(output.fallback, bool).astype(np.uint8))
        fallback.SetMetaData("DeepDose.quantity", FALLBACK_QUANTITY)
        fallback.SetMetaData("DeepDose.method", method)
    report_progress(progress, 1.0, "done")
    return DoseResult(image, method, nuc.name, time.perf_counter() - start, uncertainty, list(output.notes), fallback)


def compute_dose_rate_from_inputs(inputs: DoseInputs, nuclide: Nuclide | str, method: str = "led", *,
                                  include_photons: bool = False, device: str = "auto",
                                  options: Any = None,
                                  progress: Optional[ProgressCallback] = None) -> sitk.Image:
    """Run one method on prepared inputs; returns the dose-rate image [mGy/h] on ``inputs.grid``."""
    opts = options if options is not None else MethodOptions(include_photons=include_photons)
    return run_dose_method(inputs, nuclide, method, opts, device=device, progress=progress).dose_rate


def compute_dose_rate(ct_image: sitk.Image, pet_image: sitk.Image, nuclide: Nuclide | str, method: str = "led", *,
                      include_photons: bool = False, clip_negative: bool = False, grid: Optional[sitk.Image] = None,
                      density_calibration: Optional[HUDensityCalibration] = None,
                      max_activity_fraction_outside_ct: float = 0.01, device: str = "auto",
                      options: Any = None,
                      progress: Optional[ProgressCallback] = None) -> sitk.Image:
    """Dose-rate map [mGy/h] from a CT [HU] and a PET [Bq/mL] (SimpleITK images, LPS).

    The result lies on the PET grid (or ``grid``), is float32, and refers to the same time as the
    activity (e.g. the scan start for decay-corrected PET). Input images are never modified.
    """
    nuc = get_nuclide(nuclide) if isinstance(nuclide, str) else nuclide
    report_progress(progress, 0.0, "checking inputs and building the tissue model")
    inputs = prepare_inputs(ct_image, pet_image, grid=grid, density_calibration=density_calibration,
                            clip_negative=clip_negative,
                            max_activity_fraction_outside_ct=max_activity_fraction_outside_ct)
    for note in inputs.notes:
        logger.warning(note) if note.startswith("WARNING") else logger.info(note)
    return compute_dose_rate_from_inputs(inputs, nuc, method, include_photons=include_photons,
                                         device=device, options=options, progress=progress)
