"""The *Therapy dosimetry* section of the DeepDose module panel (absorbed dose in Gy from several time points).

Builds its Qt widgets in code (a collapsible section: time-point table of CT / PET-SPECT / hours, the options,
*Compute absorbed dose*) and calls :func:`DeepDoseLib.mrml.therapy.run_therapy_in_scene`; it holds no dosimetry.
Added to the module panel by two lines in ``DeepDoseWidget.setup``::

    from TherapyPanel import TherapyPanel
    self.therapyPanel = TherapyPanel(self.layout)
"""
from __future__ import annotations

import ctk
import qt
import slicer

try:
    from slicer.i18n import tr as _
except ImportError:  # Slicer < 5.4
    def _(text):
        return text

COLUMN_CT, COLUMN_PET, COLUMN_HOURS = 0, 1, 2


class TherapyPanel:
    """The section and its callbacks; ``parentLayout`` is the module panel's layout."""

    def __init__(self, parentLayout) -> None:
        self.section = ctk.ctkCollapsibleButton()
        self.section.text = _("Therapy dosimetry (absorbed dose in Gy)")
        self.section.collapsed = True
        parentLayout.addWidget(self.section)
        form = qt.QFormLayout(self.section)

        self.table = qt.QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels([_("CT"), _("PET/SPECT (Bq/mL)"), _("Hours after administration")])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.toolTip = _("One row per scan: its CT, its activity map and its time after administration.")
        form.addRow(self.table)

        buttons = qt.QHBoxLayout()
        self.addButton = qt.QPushButton(_("Add time point"))
        self.removeButton = qt.QPushButton(_("Remove selected"))
        self.dicomTimesButton = qt.QPushButton(_("Read times from DICOM"))
        self.dicomTimesButton.toolTip = _("Acquisition date/time of each PET/SPECT loaded from DICOM, minus the "
                                          "administration time (from the header, or the field below).")
        for button in (self.addButton, self.removeButton, self.dicomTimesButton):
            buttons.addWidget(button)
        form.addRow(buttons)
        self.administrationEdit = qt.QLineEdit()
        self.administrationEdit.placeholderText = _("administration time, e.g. 2024-03-01T09:30 (if not in DICOM)")
        form.addRow(_("Administration:"), self.administrationEdit)

        self.segmentationSelector = slicer.qMRMLNodeComboBox()
        self.segmentationSelector.nodeTypes = ["vtkMRMLSegmentationNode"]
        self.segmentationSelector.noneEnabled = True
        self.segmentationSelector.addEnabled = False
        self.segmentationSelector.setMRMLScene(slicer.mrmlScene)
        self.segmentationSelector.toolTip = _("Structures in the reference frame (kidneys, marrow, lesions...).")
        form.addRow(_("Structures:"), self.segmentationSelector)

        self.nuclideCombo = qt.QComboBox()
        self.methodCombo = qt.QComboBox()
        self.fitCombo = qt.QComboBox()
        form.addRow(_("Nuclide:"), self.nuclideCombo)
        form.addRow(_("Dose-rate method:"), self.methodCombo)
        form.addRow(_("Time integration:"), self.fitCombo)
        self.referenceSpin = qt.QSpinBox()
        self.referenceSpin.minimum = 1
        self.referenceSpin.maximum = 1
        self.referenceSpin.toolTip = _("Time point whose CT is the reference frame (registration target).")
        form.addRow(_("Reference time point:"), self.referenceSpin)
        self.registerCheck = qt.QCheckBox(_("rigid"))
        self.registerCheck.checked = True
        self.deformableCheck = qt.QCheckBox(_("then deformable (B-spline)"))
        registration = qt.QHBoxLayout()
        registration.addWidget(self.registerCheck)
        registration.addWidget(self.deformableCheck)
        form.addRow(_("Registration:"), registration)
        self.calibrationUncertaintySpin = qt.QDoubleSpinBox()
        self.calibrationUncertaintySpin.setRange(0.0, 50.0)
        self.calibrationUncertaintySpin.setDecimals(1)
        self.calibrationUncertaintySpin.suffix = " %"
        self.calibrationUncertaintySpin.toolTip = _("Relative standard uncertainty of the activity calibration.")
        form.addRow(_("Calibration uncertainty:"), self.calibrationUncertaintySpin)

        self.computeButton = qt.QPushButton(_("Compute absorbed dose"))
        self.computeButton.toolTip = _("Dose rate per time point, registration, time integration, BED/EQD2 and "
                                       "uncertainty per structure.")
        form.addRow(self.computeButton)
        self.statusLabel = qt.QLabel("")
        self.statusLabel.wordWrap = True
        form.addRow(self.statusLabel)

        self._fillChoices()
        self.addButton.connect("clicked(bool)", lambda checked=False: self.addRow())
        self.removeButton.connect("clicked(bool)", self.onRemove)
        self.dicomTimesButton.connect("clicked(bool)", self.onReadDicomTimes)
        self.computeButton.connect("clicked(bool)", self.onCompute)
        self.addRow()

    # ------------------------------------------------------------------ widgets
    def _fillChoices(self) -> None:
        try:
            from DeepDoseLib.dose_methods import method_names
            from DeepDoseLib.nuclides import list_nuclides
            from DeepDoseLib.therapy.kinetics import FIT_CHOICES
        except ImportError as error:  # torch missing: the main panel explains how to install it
            self.statusLabel.text = str(error)
            self.computeButton.enabled = False
            return
        self.nuclideCombo.addItems(list(list_nuclides()))
        self.nuclideCombo.currentText = "Lu177"
        methods = method_names()
        self.methodCombo.addItems(list(methods))
        self.methodCombo.currentText = "deepdose" if "deepdose" in methods else methods[0]
        self.fitCombo.addItems(list(FIT_CHOICES))

    def _volumeSelector(self):
        selector = slicer.qMRMLNodeComboBox()
        selector.nodeTypes = ["vtkMRMLScalarVolumeNode"]
        selector.noneEnabled = True
        selector.addEnabled = False
        selector.removeEnabled = False
        selector.setMRMLScene(slicer.mrmlScene)
        return selector

    def addRow(self, ctNode=None, petNode=None, hours: float = 0.0) -> int:
        row = self.table.rowCount
        self.table.insertRow(row)
        ct, pet = self._volumeSelector(), self._volumeSelector()
        ct.setCurrentNode(ctNode)
        pet.setCurrentNode(petNode)
        spin = qt.QDoubleSpinBox()
        spin.setRange(0.0, 10000.0)
        spin.setDecimals(2)
        spin.suffix = " h"
        spin.value = hours
        self.table.setCellWidget(row, COLUMN_CT, ct)
        self.table.setCellWidget(row, COLUMN_PET, pet)
        self.table.setCellWidget(row, COLUMN_HOURS, spin)
        self.referenceSpin.maximum = self.table.rowCount
        return row

    def onRemove(self) -> None:
        rows = sorted({index.row() for index in self.table.selectedIndexes()}, reverse=True)
        for row in rows or [self.table.rowCount - 1]:
            if row >= 0:
                self.table.removeRow(row)
        self.referenceSpin.maximum = max(1, self.table.rowCount)

    def timePoints(self) -> list:
        """(CT node, PET node, hours) per row, as typed."""
        return [(self.table.cellWidget(r, COLUMN_CT).currentNode(), self.table.cellWidget(r, COLUMN_PET).currentNode(),
                 float(self.table.cellWidget(r, COLUMN_HOURS).value)) for r in range(self.table.rowCount)]

    # ------------------------------------------------------------------ actions
    def onReadDicomTimes(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not read the scan times from DICOM."), waitCursor=True):
            from DeepDoseLib.mrml.therapy import time_point_hours_from_dicom

            for r in range(self.table.rowCount):
                pet = self.table.cellWidget(r, COLUMN_PET).currentNode()
                if pet is not None:
                    hours = time_point_hours_from_dicom(pet, self.administrationEdit.text.strip() or None)
                    self.table.cellWidget(r, COLUMN_HOURS).value = hours

    def options(self):
        """The study options from the widgets (no computation)."""
        from DeepDoseLib.therapy.registration import RegistrationSettings
        from DeepDoseLib.therapy.study import TherapyOptions

        return TherapyOptions(
            nuclide=self.nuclideCombo.currentText, method=self.methodCombo.currentText, fit=self.fitCombo.currentText,
            reference_index=int(self.referenceSpin.value) - 1, register=bool(self.registerCheck.checked),
            registration=RegistrationSettings(deformable=bool(self.deformableCheck.checked)),
            calibration_relative_uncertainty=(self.calibrationUncertaintySpin.value / 100.0
                                              if self.calibrationUncertaintySpin.value > 0 else None))

    def onCompute(self) -> None:
        progressDialog = slicer.util.createProgressDialog(windowTitle=_("DeepDose therapy"),
                                                          labelText=_("Computing the absorbed dose..."), maximum=100)

        def progress(fraction: float, message: str) -> None:
            progressDialog.value = int(round(100 * max(0.0, min(1.0, fraction))))
            progressDialog.labelText = message
            slicer.app.processEvents()

        try:
            with slicer.util.tryWithErrorDisplay(_("Therapy dosimetry failed."), waitCursor=True):
                from DeepDoseLib.mrml.therapy import run_therapy_in_scene

                nodes = run_therapy_in_scene(slicer.mrmlScene, self.timePoints(), self.options(),
                                             segmentation_node=self.segmentationSelector.currentNode(),
                                             progress=progress)
                self._show(nodes)
        finally:
            progressDialog.close()

    def _show(self, nodes) -> None:
        seconds = nodes.result.seconds.get("total", float("nan"))
        self.statusLabel.text = _("Absorbed dose ready: {name} ({seconds:.1f} s). {count} structure(s) in the "
                                  "table.").format(name=nodes.dose_node.GetName(), seconds=seconds,
                                                   count=len(nodes.result.structures))
        slicer.util.setSliceViewerLayers(foreground=nodes.dose_node, foregroundOpacity=0.5)
        layoutManager = slicer.app.layoutManager()
        if layoutManager is not None and nodes.chart_nodes:
            layoutManager.setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpPlotTableView)
            slicer.modules.plots.logic().ShowChartInLayout(nodes.chart_nodes[0])
            slicer.app.applicationLogic().GetSelectionNode().SetActiveTableID(nodes.structures_table_node.GetID())
            slicer.app.applicationLogic().PropagateTableSelection()
