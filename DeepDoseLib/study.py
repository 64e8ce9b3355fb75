"""The study pipeline, written once: files or images → inputs → method → outputs (files, organ table, report).

Every front end runs a study through here: the ``deepdose dose`` and ``deepdose demo`` commands, the
Slicer CLI module, the batch tools and the Slicer logic. A study is a :class:`StudyRequest` (images in
their physical units, the method and its options), :func:`run_study` computes it, and
:func:`write_study_outputs` writes what the caller asked for into a :class:`StudyOutputs`.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import SimpleITK as sitk

from .dose import DoseResult, run_dose_method
from .errors import DeepDoseInputError
from .inputs import DoseInputs, check_labels, prepare_inputs
from .progress import CancelCallback, ProgressCallback, report_progress, sub_progress
from .tissue import HUDensityCalibration

__all__ = ["InputSource", "StudyOutputs", "StudyRequest", "StudyResult", "read_label_names", "read_study_files", "run_study",
           "write_study_outputs", "write_study_report"]

logger = logging.getLogger(__name__)
PathLike = Union[str, Path]


@dataclass
class StudyRequest:
    """One dose-rate calculation.

    Attributes
    ----------
    ct : SimpleITK.Image
        CT in HU (any grid overlapping the PET).
    pet : SimpleITK.Image
        Activity concentration in Bq/mL (its grid is the dose grid).
    nuclide : str
        Radionuclide, e.g. ``"Ga68"``.
    method : str
        A registered dose method (:mod:`DeepDoseLib.dose_methods`).
    options : object or None
        The method's options (its own dataclass, :data:`DeepDoseLib.dose.MethodOptions`, or None: defaults).
    labels, label_names : SimpleITK.Image, dict or None
        Organ label map on any grid and ``{label: name}``: organ table and MIRD.
    clip_negative : bool
        Set negative PET voxels to 0 instead of refusing them.
    density_calibration : HUDensityCalibration or None
        HU → g/cm³ table (None: Schneider 2000).
    device : str
        ``auto``, ``cpu`` or ``cuda``.
    notes : list of str
        What was assumed while reading the inputs (unit conversions...): shown with the result.
    sources : list of InputSource
        Where each input came from, for the report.
    """

    ct: sitk.Image
    pet: sitk.Image
    nuclide: str
    method: str = "led"
    options: Any = None
    labels: Optional[sitk.Image] = None
    label_names: Optional[Dict[int, str]] = None
    clip_negative: bool = False
    density_calibration: Optional[HUDensityCalibration] = None
    device: str = "auto"
    notes: List[str] = field(default_factory=list)
    sources: List["InputSource"] = field(default_factory=list)
    _checked: bool = field(default=False, repr=False, compare=False)

    def check(self) -> None:
        """Check what can be checked before any work (the label map against the dose grid); its notes join
        :attr:`notes`. Done once; :func:`read_study_files` and :func:`run_study` call it."""
        if self._checked:
            return
        if self.labels is not None:
            self.notes += check_labels(self.labels, self.pet, names=self.label_names)
        self._checked = True


@dataclass
class InputSource:
    """An input as listed in the report: its role (``"CT"``, ``"PET"``, ``"labels"``), where it came from
    (a path or a node name), its unit and what was noted while reading it."""

    role: str
    origin: str
    unit: str = ""
    notes: List[str] = field(default_factory=list)


@dataclass
class StudyResult:
    """What :func:`run_study` computed: the prepared inputs, the method's result and the organ rows."""

    request: StudyRequest
    inputs: DoseInputs
    dose: DoseResult
    organ_rows: Optional[list] = None
    seconds: float = 0.0

    @property
    def notes(self) -> List[str]:
        """Every note in order: reading, preparing the inputs, the method."""
        return list(self.request.notes) + list(self.inputs.notes) + list(self.dose.notes)


@dataclass
class StudyOutputs:
    """Which files to write (each None: not written).

    Attributes
    ----------
    dose_rate : path
        Dose-rate image [mGy/h] (.nii.gz, .nrrd, .mha).
    uncertainty : path or None
        Relative standard uncertainty image (methods with one, e.g. ``mc``).
    organ_table : path or None
        Organ statistics (.tsv/.csv; needs labels).
    dvh_table : path or None
        Cumulative DVH of each organ (.tsv/.csv; needs labels).
    report_dir : path or None
        Folder of the self-contained ``report.html``.
    fallback_mask : path or None
        uint8 0/1 image of the voxels where a learned method returned its physics baseline (``deepdose``:
        the density-scaled VSV); methods without a fallback write none (a warning).
    overwrite : bool
        Replace existing outputs (never an input).
    protected : list of paths
        Inputs that must never be written.
    """

    dose_rate: PathLike
    uncertainty: Optional[PathLike] = None
    organ_table: Optional[PathLike] = None
    dvh_table: Optional[PathLike] = None
    report_dir: Optional[PathLike] = None
    fallback_mask: Optional[PathLike] = None
    overwrite: bool = False
    protected: List[PathLike] = field(default_factory=list)

    #: How each output is named in messages (the ``deepdose dose`` flags; the Slicer CLI passes its own).
    flags: Dict[str, str] = field(default_factory=lambda: dict(
        dose_rate="--out", uncertainty="--uncertainty", organ_table="--organ-table", dvh_table="--dvh-table",
        report_dir="--report", fallback_mask="--fallback-mask"))

    def check(self, has_labels: bool) -> None:
        """Refuse what cannot be written — before any work, not after it: organ or DVH tables without a label
        map, and every rule of :func:`DeepDoseLib.output_paths.check_outputs` (an output that is an input, by file
        identity; two outputs on one path; an existing output without ``overwrite``; an unknown suffix; a
        folder that cannot be written)."""
        from .image_io import IMAGE_SUFFIXES
        from .output_paths import TABLE_SUFFIXES, Output, check_outputs

        if not has_labels and (self.organ_table is not None or self.dvh_table is not None):
            raise DeepDoseInputError("The organ and DVH tables need a label map (--labels LABELS).")
        report = None if self.report_dir is None else Path(self.report_dir) / "report.html"
        check_outputs([Output(self.flags["dose_rate"], _path(self.dose_rate), IMAGE_SUFFIXES),
                       Output(self.flags["uncertainty"], _path(self.uncertainty), IMAGE_SUFFIXES),
                       Output(self.flags.get("fallback_mask", "--fallback-mask"), _path(self.fallback_mask),
                              IMAGE_SUFFIXES),
                       Output(self.flags["organ_table"], _path(self.organ_table), TABLE_SUFFIXES),
                       Output(self.flags["dvh_table"], _path(self.dvh_table), TABLE_SUFFIXES),
                       Output(self.flags["report_dir"], report, (".html",))], self.protected, self.overwrite)


def _path(value: Optional[PathLike]) -> Optional[Path]:
    return None if value is None else Path(value)


def read_label_names(path: Optional[PathLike]) -> Dict[int, str]:
    """``{label: name}`` from a JSON object ``{"1": "liver", ...}`` (empty without a file)."""
    if path is None:
        return {}
    try:
        mapping = json.loads(Path(path).read_text())
        return {int(k): str(v) for k, v in mapping.items()}
    except (OSError, ValueError, AttributeError) as exc:
        raise DeepDoseInputError(f"label names {path}: expected a JSON object {{\"1\": \"liver\", ...}} ({exc}).")


def read_study_files(ct: PathLike, pet: PathLike, nuclide: str, *, pet_unit: str = "Bq/mL",
                     labels: Optional[PathLike] = None, label_names: Optional[PathLike] = None,
                     hu_density_table: Optional[PathLike] = None, **request) -> StudyRequest:
    """A :class:`StudyRequest` from files (NIfTI/NRRD/MHA or DICOM folders); ``request`` sets its other fields.

    The PET is converted to Bq/mL (``pet_unit`` for non-DICOM files; DICOM from its tags) and every
    conversion is kept in the request's notes.
    """
    from .image_io import read_ct, read_image, read_pet

    if label_names is not None and labels is None:
        raise DeepDoseInputError("Label names need a label map (--labels LABELS).")
    ct_image, pet_image = read_ct(ct), read_pet(pet, pet_unit=pet_unit)
    calibration = HUDensityCalibration.from_csv(hu_density_table) if hu_density_table is not None else None
    sources = [InputSource("CT", str(ct), "HU", ct_image.notes), InputSource("PET", str(pet), "Bq/mL", pet_image.notes)]
    label_image, names = None, None
    if labels is not None:
        label_image, names = read_image(labels), read_label_names(label_names)
        sources.append(InputSource("labels", str(labels), "label values", [str(label_names or "no names")]))
    study = StudyRequest(ct_image.image, pet_image.image, nuclide, labels=label_image, label_names=names,
                         density_calibration=calibration, notes=ct_image.notes + pet_image.notes, sources=sources,
                         **request)
    study.check()
    return study


def run_study(request: StudyRequest, *, progress: Optional[ProgressCallback] = None,
              cancel: Optional[CancelCallback] = None,
              before_method: Optional[Callable[[DoseInputs], None]] = None) -> StudyResult:
    """Prepare the inputs, run the method and, with labels, the organ statistics.

    ``before_method(inputs)`` is called on the prepared inputs before the method runs (e.g. the command
    line's Monte Carlo run-time estimate, which may refuse the run).
    """
    start = time.perf_counter()
    report_progress(progress, 0.0, "checking inputs and building the tissue model")
    request.check()
    inputs = prepare_inputs(request.ct, request.pet, density_calibration=request.density_calibration,
                            clip_negative=request.clip_negative)
    if before_method is not None:
        before_method(inputs)
    dose = run_dose_method(inputs, request.nuclide, request.method, request.options, device=request.device,
                           progress=sub_progress(progress, 0.02, 0.95), cancel=cancel, labels=request.labels,
                           label_names=request.label_names)
    rows = None
    if request.labels is not None:
        from .analysis.organs import organ_statistics

        report_progress(progress, 0.96, "organ statistics")
        rows = organ_statistics(dose.dose_rate, request.labels, _named_labels(request.label_names),
                                inputs.density_g_per_cm3, fallback=dose.fallback)
    report_progress(progress, 1.0, "done")
    return StudyResult(request, inputs, dose, rows, time.perf_counter() - start)


def _named_labels(names: Optional[Dict[int, str]]) -> Optional[Dict[int, str]]:
    """The label names without the background (label 0); None (every label present) when there are none."""
    return {v: n for v, n in (names or {}).items() if v != 0} or None


def missing_uncertainty_note(method: str, path: PathLike) -> str:
    """Why no uncertainty map was written to ``path``: the method has none, or (Deep-dose where its network did not
    run: a voxel size outside the model's range, a CT without tissue) it gave none for this input."""
    from .dose_methods import get_method

    if get_method(method).has_uncertainty:
        return f"method {method} gave no uncertainty map for this input (its notes say why); {path} not written"
    return f"method {method} has no statistical uncertainty; {path} not written"


def write_study_outputs(result: StudyResult, outputs: StudyOutputs, *, report_title: Optional[str] = None,
                        report_focus: Optional[int] = None, extra_report_notes: Sequence[str] = ()) -> List[Path]:
    """Write the requested outputs of a computed study; returns the paths written, in order."""
    from .image_io import write_image

    outputs.check(result.organ_rows is not None)
    written = [write_image(result.dose.dose_rate, outputs.dose_rate, overwrite=outputs.overwrite,
                           protected=outputs.protected)]
    if outputs.uncertainty is not None:
        if result.dose.relative_uncertainty is None:
            logger.warning(missing_uncertainty_note(result.dose.method, outputs.uncertainty))
        else:
            written.append(write_image(result.dose.relative_uncertainty, outputs.uncertainty,
                                       overwrite=outputs.overwrite, protected=outputs.protected))
    if outputs.fallback_mask is not None:
        if result.dose.fallback is None:
            logger.warning("method %s has no fallback to a physics baseline; %s not written", result.dose.method,
                           outputs.fallback_mask)
        else:
            written.append(write_image(result.dose.fallback, outputs.fallback_mask, overwrite=outputs.overwrite,
                                       protected=outputs.protected))
    if outputs.organ_table is not None:
        from .analysis.organs import write_organ_table

        written.append(write_organ_table(result.organ_rows, outputs.organ_table))
    if outputs.dvh_table is not None:
        from .analysis.dvh import dvhs_for_labels, write_dvh_table

        dvhs = dvhs_for_labels(result.dose.dose_rate, result.request.labels,
                               {r.label: r.name for r in result.organ_rows})
        if dvhs:
            written.append(write_dvh_table(dvhs, outputs.dvh_table))
    if outputs.report_dir is not None:
        written.append(write_study_report(result, outputs.report_dir, title=report_title, focus_label=report_focus,
                                          extra_notes=extra_report_notes))
    return written


def write_study_report(result: StudyResult, directory: PathLike, *, title: Optional[str] = None,
                       focus_label: Optional[int] = None, extra_notes: Sequence[str] = ()) -> Path:
    """The study's self-contained HTML report, ``directory/report.html``."""
    from .report import ReportInput, write_report

    request = result.request
    files = [ReportInput(s.role, s.origin, s.unit, list(s.notes)) for s in request.sources]
    options = dict(labels=request.labels, label_names=request.label_names,
                   density_g_per_cm3=result.inputs.density_g_per_cm3, organ_rows=result.organ_rows,
                   ct_HU=request.ct, nuclide=request.nuclide, method=result.dose.method,
                   include_photons=getattr(request.options, "include_photons", False), inputs=files,
                   notes=list(result.inputs.notes) + list(result.dose.notes) + list(extra_notes),
                   focus_label=focus_label)
    if title is not None:
        options["title"] = title
    return write_report(directory, result.dose.dose_rate, **options)

