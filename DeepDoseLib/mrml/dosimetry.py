"""One dosimetry run in the scene: dose-rate volume + overlay + legend, isodose model, organ DVH and statistics.

:func:`run_dosimetry` computes in-process (console scripting, tests); :func:`build_dosimetry_outputs`
turns an already computed dose-rate node (e.g. written by the DeepDoseCLI module running
out-of-process) into the same set of outputs. Everything a run creates is grouped under one
subject-hierarchy folder; the CT, PET and segmentation nodes are only read (deep copies).

The 100 % of the isodose levels and the top of the dose wash is the **maximum dose rate in tissue**
(voxels of the CT resampled to the dose grid with density ≥ 0.05 g/cm³), as in the HTML report:
activity blurred into air gives per-gram-of-air dose rates that would dwarf every organ.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import numpy as np
import SimpleITK as sitk

from ..analysis.isodose import DEFAULT_ISODOSE_PERCENTS
from ..errors import DeepDoseInputError
from ..progress import CancelCallback, ProgressCallback, report_progress
from .display import DOSE_RATE_UNIT, set_dose_units, show_color_legend, show_dose_overlay
from .hierarchy import create_run_folder, dose_study_item, place_in_folder, run_folders
from .isodose import create_isodose_model
from .logic import dose_node_name, tag_dose_node
from .structures import (
    create_dvh_nodes,
    organ_statistics_rows,
    segment_masks,
    segmentation_label_map,
    statistics_table_node,
)
from .volumes import image_from_volume_node, volume_node_from_image

ATTRIBUTE_QUANTITY = "DeepDose.Quantity"
ATTRIBUTE_REFERENCE_DOSE = "DeepDose.ReferenceDoseRate"
REFERENCE_UNCERTAINTY = "DeepDoseUncertainty"
REFERENCE_FALLBACK = "DeepDoseFallback"
#: Dose rates below this fraction of the maximum in tissue are left transparent in the wash
#: (half the lowest default isodose level: the body's low background does not hide the CT).
WASH_THRESHOLD_FRACTION = 0.05


@dataclass
class DosimetryResult:
    """The nodes of one run (all under ``folder_item`` in the subject hierarchy).

    Attributes:
        dose_node: dose-rate volume (mGy/h) on the PET grid, shown as a wash with a colour legend.
        uncertainty_node: Monte Carlo relative standard uncertainty (fraction), else None.
        isodose_model_node: one model; its slice intersections are the isodose lines.
        dvh_table_nodes, plot_series_nodes: one per segment (empty without a segmentation).
        stats_table_node, chart_node: organ statistics table and DVH chart (None without segments).
        reference_dose_rate: the 100 % of the isodose levels (maximum in tissue, mGy/h).
        notes: what was assumed or corrected (from the dose calculation and the outputs).
        fallback_node: labelmap (1 = Deep-dose returned its density-scaled VSV baseline there) when some voxel
            fell back, else None.
        fallback_percent_of_tissue: % of the tissue voxels (≥ 0.05 g/cm³) of the dose grid in the fallback
            mask; None without a fallback mask (other methods), 0 when nothing fell back.
        fallback_text: one line for the panel's status: the method's note on where and how much it fell back
            (:func:`DeepDoseLib.deepdose_rule.fallback_note`), or the share above when that note is not at hand
            (e.g. a run in the CLI process); None without a fallback.
    """

    dose_node: object
    uncertainty_node: object
    isodose_model_node: object
    dvh_table_nodes: List = field(default_factory=list)
    stats_table_node: object = None
    chart_node: object = None
    folder_item: int = 0
    plot_series_nodes: List = field(default_factory=list)
    legend_display_node: object = None
    reference_dose_rate: float = float("nan")
    notes: List[str] = field(default_factory=list)
    fallback_node: object = None
    fallback_percent_of_tissue: Optional[float] = None
    fallback_text: Optional[str] = None

    def nodes(self) -> list:
        """Every data node the run created (for scripts that want to save or remove them)."""
        found = [self.dose_node, self.uncertainty_node, self.fallback_node, self.isodose_model_node]
        if self.isodose_model_node is not None and self.isodose_model_node.GetDisplayNode() is not None:
            found.append(self.isodose_model_node.GetDisplayNode().GetColorNode())
        found += list(self.dvh_table_nodes) + list(self.plot_series_nodes) + [self.chart_node, self.stats_table_node]
        return [node for node in found if node is not None]


def density_on_dose_grid(ct_image: sitk.Image, dose_image: sitk.Image) -> np.ndarray:
    """Mass density (g/cm³, (z, y, x) float32) of the CT resampled linearly onto the dose grid."""
    from ..geometry import resample_to_grid
    from ..tissue import HU_OUTSIDE_CT, hu_to_density

    ct = resample_to_grid(sitk.Cast(ct_image, sitk.sitkFloat32), dose_image, default_value=HU_OUTSIDE_CT)
    return hu_to_density(sitk.GetArrayFromImage(ct))


def tissue_maximum(dose_rate: np.ndarray, density_g_per_cm3: Optional[np.ndarray]) -> float:
    """Largest dose rate among voxels of tissue (:func:`DeepDoseLib.tissue.tissue_maximum_index`); 0 without any."""
    from ..tissue import tissue_maximum_index

    return tissue_maximum_index(dose_rate, density_g_per_cm3)[0]


def fallback_node_name(dose_node) -> str:
    """Name of the labelmap of the voxels where Deep-dose fell back to its physics baseline."""
    return "%s fallback (Deep-dose → baseline)" % dose_node.GetName()


def _fallback_outputs(scene, fallback_node, dose_image: sitk.Image, density: np.ndarray, notes: Sequence[str]):
    """(node or None, % of the tissue, status text) of a fallback mask node; an all-zero mask node is removed."""
    from ..deepdose_rule import FALLBACK_NOTE_PREFIX, fallback_note
    from ..tissue import tissue_mask

    if fallback_node is None or fallback_node.GetImageData() is None:
        if fallback_node is not None and fallback_node.GetScene() is not None:
            scene.RemoveNode(fallback_node)
        return None, None, None
    mask = sitk.GetArrayFromImage(image_from_volume_node(fallback_node)) != 0
    if mask.shape != density.shape:
        raise DeepDoseInputError("The fallback mask %s does not lie on the dose grid %s." % (mask.shape, density.shape))
    tissue = tissue_mask(density)
    percent = 100.0 * float((mask & tissue).sum()) / max(1, int(tissue.sum()))
    if not mask.any():
        scene.RemoveNode(fallback_node)
        return None, 0.0, None
    text = fallback_note(notes) or ("%s in %d voxels (%.1f %% of the tissue)"
                                    % (FALLBACK_NOTE_PREFIX, int(mask.sum()), percent))
    return fallback_node, percent, text


def _run_folder_name(scene, dose_node) -> str:
    method = (dose_node.GetAttribute("DeepDose.Method") or "").upper()
    nuclide = dose_node.GetAttribute("DeepDose.Nuclide") or ""
    label = " ".join(part for part in (method, nuclide) if part) or dose_node.GetName()
    return "DeepDose run %d: %s" % (len(run_folders(scene)) + 1, label)


def build_dosimetry_outputs(
    scene,
    dose_node,
    ct_node,
    segmentation_node=None,
    uncertainty_node=None,
    isodose_levels_percent: Sequence[float] = DEFAULT_ISODOSE_PERCENTS,
    pet_node=None,
    method: Optional[str] = None,
    nuclide: Optional[str] = None,
    include_photons: bool = False,
    clip_negative: bool = False,
    folder_name: Optional[str] = None,
    progress: Optional[ProgressCallback] = None,
    notes: Sequence[str] = (),
    fallback_node=None,
) -> DosimetryResult:
    """Display ``dose_node`` (mGy/h) and build its isodose, DVH and statistics nodes in one folder.

    ``method``/``nuclide`` (when given) are recorded on the dose node, as :func:`run_dosimetry` does.
    The dose node is modified (display, attributes, folder); the CT, PET and segmentation are not.
    ``fallback_node``: labelmap on the dose grid, 1 where Deep-dose returned its physics baseline (e.g. the
    CLI's ``fallbackVolume``); kept in the run folder when some voxel fell back, removed from the scene when
    it is empty; its share of the tissue and a status line go into the result.
    """
    if dose_node is None or ct_node is None:
        raise DeepDoseInputError("A dose-rate volume (mGy/h) and its CT (HU) are required.")
    notes = list(notes)
    if method is not None and nuclide is not None:
        tag_dose_node(dose_node, ct_node, pet_node, method, nuclide, include_photons, clip_negative)
    set_dose_units(dose_node)
    report_progress(progress, 0.80, "building the outputs: dose wash, isodose lines")
    dose_image = image_from_volume_node(dose_node)
    density = density_on_dose_grid(image_from_volume_node(ct_node), dose_image)
    dose_array = sitk.GetArrayViewFromImage(dose_image)
    reference = tissue_maximum(dose_array, density)
    if not reference > 0:
        raise DeepDoseInputError(
            "The dose-rate map is zero in every tissue voxel: check that the PET holds activity (Bq/mL) "
            "inside the CT's body."
        )
    dose_node.SetAttribute(ATTRIBUTE_REFERENCE_DOSE, repr(reference))
    all_max = float(np.nanmax(dose_array))
    if all_max > 1.5 * reference:
        notes.append("maximum dose rate %.4g mGy/h lies outside tissue (density < 0.05 g/cm³); the isodose "
                     "levels and colour scale use the maximum in tissue, %.4g mGy/h" % (all_max, reference))

    show_dose_overlay(scene, dose_node, background_node=ct_node, window_max=reference,
                      threshold_fraction=WASH_THRESHOLD_FRACTION)
    legend = show_color_legend(dose_node)
    # The run folder goes in the PET's patient/study, whose attributes give SlicerRT the dose unit.
    study = dose_study_item(scene, pet_node if pet_node is not None else ct_node, DOSE_RATE_UNIT)
    folder = create_run_folder(scene, folder_name or _run_folder_name(scene, dose_node), parent_item=study)
    place_in_folder(scene, folder, dose_node)
    if uncertainty_node is not None:
        place_in_folder(scene, folder, uncertainty_node)
        dose_node.SetNodeReferenceID(REFERENCE_UNCERTAINTY, uncertainty_node.GetID())
    fallback_node, fallback_percent, fallback_text = _fallback_outputs(scene, fallback_node, dose_image, density,
                                                                       notes)
    if fallback_node is not None:
        from ..dose import FALLBACK_QUANTITY

        fallback_node.SetAttribute(ATTRIBUTE_QUANTITY, FALLBACK_QUANTITY)
        fallback_node.SetAttribute("DeepDose.Unit", "1")
        place_in_folder(scene, folder, fallback_node)
        dose_node.SetNodeReferenceID(REFERENCE_FALLBACK, fallback_node.GetID())

    isodose = create_isodose_model(scene, dose_node, reference, isodose_levels_percent,
                                   name="%s isodose" % dose_node.GetName())
    place_in_folder(scene, folder, isodose)
    place_in_folder(scene, folder, isodose.GetDisplayNode().GetColorNode())

    result = DosimetryResult(dose_node, uncertainty_node, isodose, folder_item=folder,
                             legend_display_node=legend, reference_dose_rate=reference, notes=notes,
                             fallback_node=fallback_node, fallback_percent_of_tissue=fallback_percent,
                             fallback_text=fallback_text)
    if segmentation_node is not None:
        report_progress(progress, 0.88, "organ DVH and statistics")
        masks = segment_masks(scene, segmentation_node)
        if not masks:
            result.notes.append("the segmentation '%s' has no non-empty segment: no DVH" % segmentation_node.GetName())
        else:
            dvh = create_dvh_nodes(scene, dose_node, dose_image, masks, DOSE_RATE_UNIT, segmentation_node)
            fallback = None if fallback_node is None else \
                sitk.GetArrayFromImage(image_from_volume_node(fallback_node)) != 0
            if fallback is None and fallback_percent is not None:  # a Deep-dose run where nothing fell back
                fallback = np.zeros(density.shape, bool)
            rows = organ_statistics_rows(dose_image, masks, density_g_per_cm3=density, fallback=fallback)
            stats = statistics_table_node(scene, rows, "%s organ statistics" % dose_node.GetName())
            for node in dvh.tables + dvh.series + [dvh.chart, stats]:
                place_in_folder(scene, folder, node)
            result.dvh_table_nodes, result.plot_series_nodes = dvh.tables, dvh.series
            result.chart_node, result.stats_table_node = dvh.chart, stats
    report_progress(progress, 1.0, "Dose-rate map ready: %s" % dose_node.GetName())
    return result


def run_dosimetry(
    scene,
    ct_node,
    pet_node,
    nuclide: str,
    method: str = "led",
    segmentation_node=None,
    isodose_levels_percent: Sequence[float] = DEFAULT_ISODOSE_PERCENTS,
    options=None,
    device: str = "auto",
    clip_negative: bool = False,
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelCallback] = None,
) -> DosimetryResult:
    """Compute the dose-rate map of ``pet_node`` (Bq/mL) with ``ct_node`` (HU) and build every output.

    Parameters
    ----------
    scene : vtkMRMLScene
    ct_node, pet_node : vtkMRMLScalarVolumeNode
        CT in HU and PET activity concentration in Bq/mL (not SUV); read, never modified.
    nuclide, method : str
        A nuclide of ``DeepDoseLib.list_nuclides()`` and a method of ``DeepDoseLib.METHODS``.
    segmentation_node : vtkMRMLSegmentationNode, optional
        Organs/lesions: one DVH table + plot series per segment, a chart and a statistics table;
        for ``method="mird"`` also the organs of the organ-level calculation (a label map of all
        segments on the PET grid, unless ``options.labels`` is given).
    isodose_levels_percent : sequence of float
        Isodose levels in % of the maximum dose rate in tissue.
    options : DeepDoseLib.dose.MethodOptions, optional
        Method options (photons for LED, decays and seed for MC, density correction for VSV).
    device : str
        "auto", "cpu" or "cuda".

    Returns
    -------
    DosimetryResult
        The created nodes, grouped under one subject-hierarchy folder.
    """
    from ..progress import sub_progress
    from ..study import InputSource, StudyRequest, run_study

    if ct_node is None or pet_node is None:
        raise DeepDoseInputError("Both a CT volume (HU) and a PET volume (Bq/mL) are required.")
    labels = getattr(options, "labels", None)
    names = getattr(options, "label_names", None)
    if method == "mird" and labels is None:
        # The organ-level method needs organs: the segments, as one label map on the PET grid.
        if segmentation_node is None:
            raise DeepDoseInputError("The MIRD organ-level method needs organs: give a segmentation.")
        labels, names = segmentation_label_map(scene, segmentation_node, pet_node)
    request = StudyRequest(image_from_volume_node(ct_node), image_from_volume_node(pet_node), nuclide, method, options,
                           labels=labels if method == "mird" else None, label_names=names,
                           clip_negative=clip_negative, device=device,
                           sources=[InputSource("CT", ct_node.GetName(), "HU"),
                                    InputSource("PET", pet_node.GetName(), "Bq/mL")])
    study = run_study(request, progress=sub_progress(progress, 0.0, 0.8), cancel=cancel)
    inputs, result = study.inputs, study.dose
    dose_node = volume_node_from_image(scene, result.dose_rate, dose_node_name(pet_node, method, result.nuclide))
    uncertainty_node = None
    if result.relative_uncertainty is not None:
        uncertainty_node = volume_node_from_image(
            scene, result.relative_uncertainty, "%s uncertainty (%s, fraction)" % (dose_node.GetName(), method.upper()))
        uncertainty_node.SetAttribute(ATTRIBUTE_QUANTITY, "relative standard uncertainty of the dose rate")
        uncertainty_node.SetAttribute("DeepDose.Unit", "1")
    fallback_node = None
    if result.fallback is not None:  # kept only when some voxel fell back (build_dosimetry_outputs)
        fallback_node = volume_node_from_image(scene, result.fallback, fallback_node_name(dose_node), labelmap=True)
    return build_dosimetry_outputs(
        scene, dose_node, ct_node, segmentation_node, uncertainty_node, isodose_levels_percent,
        pet_node=pet_node, method=method, nuclide=result.nuclide,
        include_photons=bool(getattr(options, "include_photons", False)),
        clip_negative=clip_negative, progress=progress, notes=inputs.notes + result.notes,
        fallback_node=fallback_node,
    )
