"""Therapy dosimetry in the scene: several (CT, PET/SPECT, hours) time points → absorbed dose in Gy.

:func:`run_therapy_in_scene` reads the volume nodes (and a segmentation or label map of the structures in the
reference frame), runs :func:`DeepDoseLib.therapy.study.run_therapy_study` and builds:

* the absorbed-dose volume [Gy] on the reference time point's activity grid, marked as a SlicerRT dose volume
  (``DicomRtImport.DoseVolume``, unit name Gy), shown as a wash over the reference CT with a colour legend;
* the BED and EQD2 volumes [Gy] (not marked as physical dose);
* one table node of the structures (mass, mean ± u, D2/D50/D98, BED, EQD2, gEUD, EUBED, ... — the columns of
  ``structures.tsv``), a registration-quality table, and per structure a time-activity table (measured points)
  and a fitted-curve table with a plot chart holding both as series (points and line);
* everything under one subject-hierarchy folder. Input nodes are only read.

This is the console API as well: ``run_therapy_in_scene(slicer.mrmlScene, [(ct1, spect1, 4.0), ...],
TherapyOptions(nuclide="Lu177"), segmentation_node=seg)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import DeepDoseInputError
from ..progress import ProgressCallback
from ..therapy.outputs import STRUCTURE_COLUMNS, registration_table
from ..therapy.study import TherapyOptions, TherapyResult, TimePoint, run_therapy_study
from .display import DOSE_VOLUME_ATTRIBUTE, UNIT_ATTRIBUTE, show_color_legend, show_dose_overlay
from .hierarchy import place_in_folder, run_folders
from .logic import ATTRIBUTE_SLICERRT_UNIT_NAME
from .structures import _double_column, _string_column
from .volumes import image_from_volume_node, volume_node_from_image

ATTRIBUTE_THERAPY = "DeepDose.Therapy"
ATTRIBUTE_STRUCTURE = "DeepDose.Structure"


@dataclass
class TherapyNodes:
    """The nodes of one therapy run (all under ``folder_item``) and the computed :class:`TherapyResult`."""

    dose_node: object
    bed_node: object
    eqd2_node: object
    structures_table_node: object
    registration_table_node: object
    curve_table_nodes: List = field(default_factory=list)
    fit_table_nodes: List = field(default_factory=list)
    plot_series_nodes: List = field(default_factory=list)
    chart_nodes: List = field(default_factory=list)
    folder_item: int = 0
    result: Optional[TherapyResult] = None
    files: dict = field(default_factory=dict)

    def nodes(self) -> list:
        found = [self.dose_node, self.bed_node, self.eqd2_node, self.structures_table_node,
                 self.registration_table_node]
        found += self.curve_table_nodes + self.fit_table_nodes + self.plot_series_nodes + self.chart_nodes
        return [n for n in found if n is not None]


def _mark_dose(node, quantity: str, slicer_rt: bool) -> None:
    node.SetAttribute(UNIT_ATTRIBUTE, "Gy")
    node.SetAttribute(ATTRIBUTE_THERAPY, quantity)
    if slicer_rt:
        node.SetAttribute(DOSE_VOLUME_ATTRIBUTE, "1")
        node.SetAttribute(ATTRIBUTE_SLICERRT_UNIT_NAME, "Gy")
    try:
        import slicer

        units = slicer.vtkCodedEntry()
        units.SetValueSchemeMeaning("Gy", "UCUM", "Gy")
        node.SetVoxelValueUnits(units)
    except (ImportError, AttributeError):
        pass


def _table(scene, name: str, columns: Sequence[Tuple[str, list]]):
    node = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    table = node.GetTable()
    for title, values in columns:
        if values and isinstance(values[0], str):
            table.AddColumn(_string_column(title, values))
        else:
            table.AddColumn(_double_column(title, [float(v) for v in values]))
    node.Modified()
    return node


def _structure_table(scene, result: TherapyResult, name: str):
    columns = []
    for header, getter in STRUCTURE_COLUMNS:
        values = [getter(s) for s in result.structures]
        columns.append((header, [str(v) for v in values] if header in ("structure", "fit_model", "fit_parameters") else
                        [float(v) for v in values]))
    node = _table(scene, name, columns)
    for header, _ in STRUCTURE_COLUMNS:
        if header.endswith("_Gy"):
            node.SetColumnUnitLabel(header, "Gy")
    node.SetColumnUnitLabel("mass_g", "g")
    node.SetColumnUnitLabel("volume_mL", "mL")
    return node


def _therapy_folder(scene, reference_ct_node, name: str) -> int:
    """A run folder inside a subject-hierarchy *Study* whose dose unit is Gy: SlicerRT reads the unit of a dose
    volume from its Study ancestor (``DicomRtImport.DoseUnitName``). The reference CT's own study is used when
    it has one and no other dose unit; otherwise a study item "DeepDose therapy (Gy)" is created."""
    import slicer

    from .hierarchy import FOLDER_ATTRIBUTE, subject_hierarchy

    sh = subject_hierarchy(scene)
    study_level = slicer.vtkMRMLSubjectHierarchyConstants.GetDICOMLevelStudy()
    ct_item = sh.GetItemByDataNode(reference_ct_node) if reference_ct_node is not None else 0
    study = sh.GetItemAncestorAtLevel(ct_item, study_level) if ct_item else 0
    if not study or sh.GetItemAttribute(study, ATTRIBUTE_SLICERRT_UNIT_NAME) not in ("", "Gy"):
        study = sh.CreateStudyItem(sh.GetSceneItemID(), "DeepDose therapy (Gy)")
    sh.SetItemAttribute(study, ATTRIBUTE_SLICERRT_UNIT_NAME, "Gy")
    sh.SetItemAttribute(study, "DicomRtImport.DoseUnitValue", "1.0")
    folder = sh.CreateFolderItem(study, name)
    sh.SetItemAttribute(folder, FOLDER_ATTRIBUTE, "1")
    return folder


def _labels_from(scene, segmentation_node, label_node, reference_ct_node):
    if segmentation_node is not None:
        from .structures import segmentation_label_map

        return segmentation_label_map(scene, segmentation_node, reference_ct_node)
    if label_node is not None:
        names = {}
        display = label_node.GetDisplayNode()
        color = display.GetColorNode() if display is not None else None
        image = image_from_volume_node(label_node)
        import SimpleITK as sitk

        for value in np.unique(sitk.GetArrayViewFromImage(image)):
            if int(value) != 0:
                names[int(value)] = (color.GetColorName(int(value)) if color is not None else "") or f"label {value}"
        return image, names
    return None, {}


def time_point_hours_from_dicom(pet_node, administration_iso: Optional[str] = None) -> float:
    """Scan time [h after administration] of a PET/SPECT node loaded from DICOM (Slicer application only): the
    acquisition date/time of its first instance, administration from the header or ``administration_iso``."""
    import slicer

    uids = (pet_node.GetAttribute("DICOM.instanceUIDs") or "").split()
    database = getattr(slicer, "dicomDatabase", None)
    if not uids or database is None:
        raise DeepDoseInputError(f"{pet_node.GetName()} was not loaded from DICOM: type its time in hours.")
    from ..therapy.acquisition_time import hours_after_administration

    return hours_after_administration(database.fileForInstance(uids[0]), administration_iso)


def run_therapy_in_scene(scene, time_points: Sequence[Tuple[object, object, float]],
                         options: Optional[TherapyOptions] = None, *, segmentation_node=None, label_node=None,
                         folder_name: Optional[str] = None, output_directory=None,
                         progress: Optional[ProgressCallback] = None) -> TherapyNodes:
    """Absorbed dose [Gy], BED, EQD2 and per-structure tables/charts from (CT node, PET node, hours) triples.

    PET/SPECT nodes hold Bq/mL (count images: set ``activity_unit`` through ``options`` is not supported here;
    calibrate them first). Structures come from ``segmentation_node`` (exported on the reference CT's grid) or a
    label-map node; both in the reference frame (``options.reference_index``). ``output_directory``: also write
    the files of ``deepdose therapy`` there (images, tables, ``report.html``).
    """
    options = options or TherapyOptions()
    if not time_points:
        raise DeepDoseInputError("Add at least one time point (CT, PET/SPECT, hours after administration).")
    points = []
    for k, (ct_node, pet_node, hours) in enumerate(time_points):
        if ct_node is None or pet_node is None:
            raise DeepDoseInputError(f"Time point {k + 1}: choose both a CT and a PET/SPECT volume.")
        points.append(TimePoint(image_from_volume_node(ct_node), image_from_volume_node(pet_node), float(hours),
                                f"{pet_node.GetName()} ({float(hours):g} h)"))
    if not 0 <= options.reference_index < len(points):
        raise DeepDoseInputError(f"The reference time point {options.reference_index + 1} does not exist.")
    reference_ct = time_points[options.reference_index][0]
    labels, names = _labels_from(scene, segmentation_node, label_node, reference_ct)
    result = run_therapy_study(points, options, labels=labels, label_names=names, progress=progress)

    tag = f"{options.method.upper()} {options.nuclide}"
    folder = _therapy_folder(scene, reference_ct,
                             folder_name or f"DeepDose therapy {len(run_folders(scene)) + 1}: {tag}")
    dose_node = volume_node_from_image(scene, result.absorbed_dose_Gy, f"Absorbed dose (Gy, {tag})")
    _mark_dose(dose_node, "absorbed dose", slicer_rt=True)
    bed_node = volume_node_from_image(scene, result.bed_Gy, f"BED (Gy, {tag})")
    _mark_dose(bed_node, "BED", slicer_rt=False)
    eqd2_node = volume_node_from_image(scene, result.eqd2_Gy, f"EQD2 (Gy, {tag})")
    _mark_dose(eqd2_node, "EQD2", slicer_rt=False)
    dmax = float(np.nanmax(image_array(result.absorbed_dose_Gy)))
    if dmax > 0:
        show_dose_overlay(scene, dose_node, background_node=reference_ct, window_max=dmax, threshold_fraction=0.05)
        show_color_legend(dose_node, title="Absorbed dose (Gy)")
    structures_node = _structure_table(scene, result, f"Therapy structures ({tag})")
    reg_rows = registration_table(result)
    registration_node = _table(scene, f"Therapy registration ({tag})",
                               [(h, [r[i] for r in reg_rows[1:]]) for i, h in enumerate(reg_rows[0])])
    nodes = TherapyNodes(dose_node, bed_node, eqd2_node, structures_node, registration_node, folder_item=folder,
                         result=result)
    for s in result.structures:
        measured = _table(scene, f"{s.name} time-activity", [
            ("time_h", list(s.activity_fit.times_h)), ("activity_MBq", list(s.activity_fit.values)),
            ("mean_dose_rate_mGy_per_h", list(s.dose_rate_fit.values))])
        t = np.linspace(0.0, 1.5 * float(s.activity_fit.times_h[-1]), 121)
        fitted = _table(scene, f"{s.name} time-activity fit ({s.activity_fit.model})", [
            ("time_h", list(t)), ("activity_fit_MBq", list(s.activity_fit.evaluate(t))),
            ("dose_rate_fit_mGy_per_h", list(s.dose_rate_fit.evaluate(t)))])
        chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", f"{s.name} time-activity curve")
        chart.SetTitle(f"{s.name}: {s.mean_Gy:.3g} ± {s.u_mean_Gy:.2g} Gy ({s.activity_fit.model})")
        chart.SetXAxisTitle("Time after administration (h)")
        chart.SetYAxisTitle("Activity (MBq)")
        chart.SetLegendVisibility(True)
        for table, y, kind in ((measured, "activity_MBq", "measured"), (fitted, "activity_fit_MBq", "fit")):
            series = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", f"{s.name} {kind}")
            series.SetAndObserveTableNodeID(table.GetID())
            series.SetXColumnName("time_h")
            series.SetYColumnName(y)
            series.SetPlotType(series.PlotTypeScatter)
            if kind == "measured":
                series.SetLineStyle(series.LineStyleNone)
                series.SetMarkerStyle(series.MarkerStyleCircle)
            else:
                series.SetMarkerStyle(series.MarkerStyleNone)
                series.SetLineWidth(2)
            series.SetAttribute(ATTRIBUTE_STRUCTURE, s.name)
            chart.AddAndObservePlotSeriesNodeID(series.GetID())
            nodes.plot_series_nodes.append(series)
        for node in (measured, fitted, chart):
            node.SetAttribute(ATTRIBUTE_STRUCTURE, s.name)
        nodes.curve_table_nodes.append(measured)
        nodes.fit_table_nodes.append(fitted)
        nodes.chart_nodes.append(chart)
    for node in nodes.nodes():
        node.SetAttribute(ATTRIBUTE_THERAPY, node.GetAttribute(ATTRIBUTE_THERAPY) or "1")
        place_in_folder(scene, folder, node)
    if output_directory is not None:
        from ..therapy.outputs import write_therapy_outputs

        nodes.files = write_therapy_outputs(result, output_directory, report_inputs=[
            {"role": f"CT / PET {k + 1}", "path": f"{ct.GetName()} / {pet.GetName()}", "unit": "HU / Bq/mL"}
            for k, (ct, pet, _) in enumerate(time_points)])
    return nodes


def image_array(image) -> np.ndarray:
    import SimpleITK as sitk

    return sitk.GetArrayViewFromImage(image)
