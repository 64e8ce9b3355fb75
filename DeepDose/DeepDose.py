"""DeepDose: voxel dose-rate maps (mGy/h) from quantitative PET/SPECT (Bq/mL) and CT (HU) in 3D Slicer.

Thin Slicer module (extension-wizard layout): the widget binds the parameter node (every input widget
through ``parameterNodeWrapper``), runs the calculation out-of-process through the DeepDoseCLI module
(progress bar, Cancel, responsive GUI) and lets the logic build the outputs. The logic and the panel
rules live in DeepDoseModuleLogic.py (no Qt); all dosimetry lives in DeepDoseLib. Opening the panel
imports neither torch nor DeepDoseLib's dose engines.

Research use only: DeepDose is not a medical device and has not been cleared for clinical use.
Contributors: the DeepDose developers (see CONTRIBUTORS in the repository README).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Optional

import vtk

import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModule, ScriptedLoadableModuleWidget
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.util import VTKObservationMixin

from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode

from DeepDoseModuleLogic import (  # noqa: F401  (DeepDoseLogic etc. re-exported for scripts and Slicer's runners)
    DEFAULT_ISODOSE_LEVELS,
    DEVICE_CHOICES,
    METHOD_CHOICES,
    METHOD_GUIDANCE,
    METHOD_TITLES,
    NUCLIDE_CHOICES,
    PET_UNIT_CHOICES,
    TORCH_MISSING_MESSAGE,
    DeepDoseLogic,
    importDeepDoseLib,
    migrateParameterNode,
    pyTorchInstalled,
)

try:
    from slicer.i18n import tr as _
    from slicer.i18n import translate
except ImportError:  # Slicer without i18n support

    def _(text):
        return text

    def translate(context, text):
        return text

#: Shown in the module, the CLI XML and the extension description.
RESEARCH_USE_STATEMENT = ("For research use only. DeepDose is not a medical device; its dose estimates must not be "
                          "the sole basis of a clinical decision.")
CONTRIBUTORS = ["DeepDose developers"]


def loadDemoCaseSample(source=None):
    """SampleData loader: generate the embedded demo PET/CT locally (no download) and load it."""
    with slicer.util.tryWithErrorDisplay(_("Could not create the DeepDose demo case."), waitCursor=True):
        importDeepDoseLib()
        from DeepDoseLib.mrml import load_demo_case

        nodes = load_demo_case(slicer.mrmlScene)
        slicer.util.setSliceViewerLayers(background=nodes["ct"], foreground=nodes["pet"], foregroundOpacity=0.0,
                                         fit=True)
        return [nodes["ct"], nodes["pet"], nodes["segmentation"]]


def registerSampleData() -> None:
    """Register the demo case with the SampleData module (category DeepDose), where it exists."""
    try:
        import SampleData
    except ImportError:
        return
    register = getattr(getattr(SampleData, "SampleDataLogic", None), "registerCustomSampleDataSource", None)
    if register is None:
        return
    iconsPath = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Resources", "Icons")
    try:
        register(category="DeepDose", sampleName="DeepDoseDemoPETCT", uris=[], fileNames=[], nodeNames=[],
                 thumbnailFileName=os.path.join(iconsPath, "DeepDose.png"), customDownloader=loadDemoCaseSample)
    except (TypeError, ValueError) as error:  # an older SampleData without this signature
        logging.warning("DeepDose: could not register the demo case with SampleData: %s", error)


#
# DeepDose
#


class DeepDose(ScriptedLoadableModule):
    """Module description shown in Slicer (title, category, help, acknowledgement)."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("DeepDose")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Nuclear Medicine")]
        self.parent.dependencies = []
        self.parent.contributors = list(CONTRIBUTORS)
        self.parent.helpText = _(
            """
<p>Computes a voxel <b>dose-rate map in mGy/h</b> from a quantitative PET or SPECT volume and a CT volume.</p>
<p><b>Research use only</b>: DeepDose is not a medical device; its estimates must not be the sole basis of a
clinical decision.</p>
<ul>
<li><b>CT</b>: Hounsfield units (HU); it gives the tissue density.</li>
<li><b>PET/SPECT</b>: a DICOM PET is converted to Bq/mL from its own tags (Units, decay correction, times;
refused, with the tag named, when they are missing); for other files choose the unit (Bq/mL, kBq/mL, MBq/mL)
and, for SPECT, a calibration factor. The dose-rate map is computed on the PET grid.</li>
<li><b>Organs, lesions</b> (optional segmentation): one cumulative DVH per segment and an organ statistics table.</li>
<li><b>Method</b>: LED = local energy deposition, VSV = voxel S-value convolution, MC = Monte Carlo reference
(with its relative uncertainty), MIRD = organ-level dose rates (the segments are the organs), Deep-dose = 3D U-Net.
Methods that the DeepDoseCLI of this installation does not offer run inside Slicer with a progress dialog.</li>
</ul>
<p>Apply runs the DeepDoseCLI module in a separate process (progress bar, Cancel). Each run makes a folder
in the Data module: the dose rate as a wash over the CT with a colour legend (marked as a dose volume for
SlicerRT), isodose lines (levels in % of the maximum in tissue, editable), DVH tables, a DVH chart and the
organ statistics. Sample data: <i>Sample Data &gt; DeepDose &gt; DeepDoseDemoPETCT</i>.</p>
<p>Scripting from the Python console (in-process, synchronous):</p>
<pre>
import DeepDose
logic = DeepDose.DeepDoseLogic()
result = logic.run(getNode("CT"), getNode("PET"), nuclide="Ga68", method="deepdose",
                   segmentationNode=getNode("Segmentation"))
print(result.dose_node.GetName(), result.reference_dose_rate, "mGy/h")
print([t.GetName() for t in result.dvh_table_nodes])
</pre>
"""
        )
        self.parent.acknowledgementText = _(
            """
The deep-learning approach follows Lee M.S. et al., "Deep-dose: a voxel dose estimation method
using deep convolutional neural network for personalized internal dosimetry",
Scientific Reports 9, 10308 (2019). The module layout follows the 3D Slicer extension wizard.
"""
        )
        app = getattr(slicer, "app", None)
        if app is not None and hasattr(app, "connect"):
            app.connect("startupCompleted()", registerSampleData)


#
# DeepDoseParameterNode
#


@parameterNodeWrapper
class DeepDoseParameterNode:
    """
    ctVolume - CT in HU.
    petVolume - PET/SPECT: DICOM converted from its tags, otherwise in petUnit x spectCalibrationFactor.
    segmentation - optional organs/lesions for DVH and statistics.
    nuclide, method, device - Choice annotations bind the combo boxes (DeepDoseModuleLogic lists the choices).
    petUnit - unit of a non-DICOM PET/SPECT volume (Bq/mL, kBq/mL, MBq/mL).
    spectCalibrationFactor - multiplies a non-DICOM volume's values before the unit (1: none).
    includePhotons, clipNegative, decays, seed, vsvDensityCorrection - method options.
    modelFile - Deep-dose TorchScript model (.pt with its .json card); Path() (reads back as ".") means the bundled model.
    isodoseLevels - isodose levels in % of the maximum dose rate in tissue.
    outputVolume - dose-rate volume (mGy/h) of the latest run.
    """

    ctVolume: vtkMRMLScalarVolumeNode
    petVolume: vtkMRMLScalarVolumeNode
    segmentation: vtkMRMLSegmentationNode
    nuclide: Annotated[str, Choice(NUCLIDE_CHOICES)] = "Ga68"
    method: Annotated[str, Choice(METHOD_CHOICES)] = "deepdose"
    device: Annotated[str, Choice(DEVICE_CHOICES)] = "automatic"
    petUnit: Annotated[str, Choice(PET_UNIT_CHOICES)] = "Bq/mL"
    spectCalibrationFactor: Annotated[float, WithinRange(1.0e-6, 1.0e6)] = 1.0
    includePhotons: bool = False
    clipNegative: bool = False
    # defaults of the method options are the registry's (DeepDoseLib.dose_methods; checked by a test)
    decays: Annotated[int, WithinRange(1000, 2000000000)] = 10000000
    seed: Annotated[int, WithinRange(0, 2147483647)] = 0
    vsvDensityCorrection: bool = False
    modelFile: Path = Path()
    isodoseLevels: str = DEFAULT_ISODOSE_LEVELS
    outputVolume: vtkMRMLScalarVolumeNode


#
# DeepDoseWidget
#


class DeepDoseWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Binds the GUI to the parameter node, runs the CLI and calls the logic; no computation here."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._run = None  # the running CLI job (DeepDoseCLIRun)
        self.cliProgressBar = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/DeepDose.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = DeepDoseLogic()
        if hasattr(slicer, "qSlicerCLIProgressBar"):
            self.cliProgressBar = slicer.qSlicerCLIProgressBar()
            self.ui.progressPlaceholder.layout().addWidget(self.cliProgressBar)
            self.cliProgressBar.visible = False
        self.ui.researchUseLabel.text = RESEARCH_USE_STATEMENT

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancelButton)
        self.ui.updateIsodoseButton.connect("clicked(bool)", self.onUpdateIsodoseButton)
        self.ui.exportRTDoseButton.connect("clicked(bool)", self.onExportRTDoseButton)
        self.ui.installPyTorchButton.connect("clicked(bool)", self.onInstallPyTorchButton)

        self.initializeParameterNode()

        from TherapyPanel import TherapyPanel  # absorbed dose in Gy over time points (its own section)

        self.therapyPanel = TherapyPanel(self.layout)

    def cleanup(self) -> None:
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        node = self.logic.getParameterNode()
        migrateParameterNode(node)  # values of an older DeepDose that the wrapper would refuse
        self.setParameterNode(DeepDoseParameterNode(node))

    def setParameterNode(self, inputParameterNode: Optional[DeepDoseParameterNode]) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
            self._onParameterNodeModified()

    def _onParameterNodeModified(self, caller=None, event=None) -> None:
        self._updatePanel()
        self._updateButtons()

    def _updatePanel(self) -> None:
        """Method guidance and options, model card, PET unit controls (from the logic's rules)."""
        parameters = self._parameterNode
        if not parameters:
            return
        method = parameters.method
        self.ui.methodGuidanceLabel.text = "%s: %s" % (METHOD_TITLES.get(method, method),
                                                       self.logic.methodGuidance(method))
        enabled = self.logic.enabledOptions(method)
        for name, widgets in (("includePhotons", ("includePhotonsCheckBox", "includePhotonsLabel")),
                              ("decays", ("decaysSpinBox", "decaysLabel")), ("seed", ("seedSpinBox", "seedLabel")),
                              ("vsvDensityCorrection", ("vsvDensityCorrectionCheckBox", "vsvDensityCorrectionLabel")),
                              ("modelFile", ("modelFilePathLineEdit", "modelFileLabel"))):
            for widgetName in widgets:
                getattr(self.ui, widgetName).enabled = enabled[name]
        modelUsed = enabled["modelFile"]
        self.ui.modelCardCollapsibleButton.visible = modelUsed
        if modelUsed:
            summary = self.logic.modelCardSummary(parameters.modelFile, parameters.nuclide)
            self.ui.modelCardLabel.text = summary.text()
            self.ui.modelDetailsLabel.text = "\n".join(summary.details)
        petInfo = self.logic.describePetUnits(parameters.petVolume)
        self.ui.petUnitComboBox.enabled = not petInfo.fromDicom
        self.ui.spectCalibrationFactorSpinBox.enabled = not petInfo.fromDicom
        self.ui.petUnitsLabel.text = petInfo.text

    def _updateButtons(self) -> None:
        parameters = self._parameterNode
        running = self._run is not None
        self.ui.cancelButton.enabled = running
        enabled, reason = self.logic.applyState(
            parameters.ctVolume if parameters else None, parameters.petVolume if parameters else None,
            parameters.method if parameters else "", running=running,
            segmentationNode=parameters.segmentation if parameters else None)
        self.ui.applyButton.enabled = enabled
        self.ui.applyButton.toolTip = reason
        self.ui.installPyTorchButton.visible = not pyTorchInstalled()
        haveDose = bool(parameters and parameters.outputVolume and not running)
        self.ui.updateIsodoseButton.enabled = haveDose
        self.ui.exportRTDoseButton.enabled = haveDose

    def onInstallPyTorchButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Installing PyTorch failed."), waitCursor=True):
            self.logic.installPyTorch()
        self._onParameterNodeModified()

    def _runOptions(self) -> dict:
        parameters = self._parameterNode
        return dict(includePhotons=parameters.includePhotons, clipNegative=parameters.clipNegative,
                    decays=parameters.decays, seed=parameters.seed,
                    vsvDensityCorrection=parameters.vsvDensityCorrection, device=parameters.device,
                    modelFile=parameters.modelFile)

    def onApplyButton(self) -> None:
        parameters = self._parameterNode
        if not self.logic.ensurePyTorch(confirm=slicer.util.confirmOkCancelDisplay):
            return
        pet = None
        try:
            with slicer.util.tryWithErrorDisplay(_("Failed to start the dose calculation."), waitCursor=True):
                levels = self.logic.parseIsodoseLevels(parameters.isodoseLevels)
                # DICOM: converted from its own tags or refused naming the tag; otherwise the chosen unit.
                pet = self.logic.preparePet(parameters.petVolume, parameters.ctVolume, petUnit=parameters.petUnit,
                                            calibrationFactor=parameters.spectCalibrationFactor)
                self.ui.statusLabel.text = pet.summary()
                for warning in pet.warnings:
                    if not slicer.util.confirmOkCancelDisplay(warning + "\n\n" + _("Compute anyway?")):
                        return
                if parameters.method not in self.logic.cliMethods():
                    self._runInProcess(pet, levels)
                    return
                self._run = self.logic.startCLI(parameters.ctVolume, pet.node, nuclide=parameters.nuclide,
                                                method=parameters.method, segmentationNode=parameters.segmentation,
                                                **self._runOptions())
                self._run.isodoseLevelsPercent = levels
                self._run.preparedPet = pet
                self.addObserver(self._run.cliNode, self._run.cliNode.StatusModifiedEvent, self.onCLIStatusModified)
                if self.cliProgressBar is not None:
                    self.cliProgressBar.setCommandLineModuleNode(self._run.cliNode)
                    self.cliProgressBar.visible = True
                self.ui.statusLabel.text = _("Computing the dose rate in a separate process...")
        finally:
            if self._run is None or self._run.preparedPet is not pet:
                self.logic.discardPreparedPet(pet)  # not handed to a running job: remove a temporary copy
            self._updateButtons()

    def _showResult(self, result, pet) -> None:
        self._parameterNode.outputVolume = result.dose_node
        self.ui.statusLabel.text = self.logic.resultMessage(result, pet)
        self.logic.showResult(result)

    def _runInProcess(self, pet, levels) -> None:
        """Methods the installed DeepDoseCLI does not offer run here, with a modal progress dialog."""
        parameters = self._parameterNode
        progressDialog = slicer.util.createProgressDialog(
            windowTitle=_("DeepDose"), labelText=_("Computing the dose rate (in Slicer's process)..."), maximum=100)

        def progress(fraction: float, message: str) -> None:
            progressDialog.value = int(round(100 * max(0.0, min(1.0, fraction))))
            progressDialog.labelText = message
            slicer.app.processEvents()

        try:
            with slicer.util.tryWithErrorDisplay(_("Failed to compute the dose-rate map."), waitCursor=True):
                result = self.logic.run(parameters.ctVolume, pet.node, nuclide=parameters.nuclide,
                                        method=parameters.method, segmentationNode=parameters.segmentation,
                                        isodoseLevelsPercent=levels, progress=progress, **self._runOptions())
                self.logic.finishPreparedPet(result, pet)
                self._showResult(result, pet)
        finally:
            progressDialog.close()
            self.logic.discardPreparedPet(pet)

    def onCancelButton(self) -> None:
        if self._run is not None:
            self._run.cliNode.Cancel()
            self.ui.statusLabel.text = _("Cancelling...")

    def onCLIStatusModified(self, cliNode, event=None) -> None:
        if self._run is None or cliNode is not self._run.cliNode or cliNode.IsBusy():
            return
        run, self._run = self._run, None
        self.removeObserver(cliNode, cliNode.StatusModifiedEvent, self.onCLIStatusModified)
        try:
            if cliNode.GetStatus() == cliNode.Completed:
                with slicer.util.tryWithErrorDisplay(_("The dose-rate map was computed but its outputs could not be built."),
                                                     waitCursor=True):
                    result = self.logic.finishCLI(run)
                    self.logic.finishPreparedPet(result, run.preparedPet)
                    self._showResult(result, run.preparedPet)
            else:
                self.logic.discardCLI(run)
                if cliNode.GetStatus() == cliNode.Cancelled:
                    self.ui.statusLabel.text = _("Cancelled.")
                else:
                    message = self.logic.cliErrorMessage(cliNode)
                    self.ui.statusLabel.text = message
                    slicer.util.errorDisplay(message, windowTitle=_("DeepDose"))
        finally:
            self.logic.discardPreparedPet(run.preparedPet)
            self._updateButtons()

    def onUpdateIsodoseButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to update the isodose lines."), waitCursor=True):
            model = self.logic.updateIsodoseLevels(self._parameterNode.outputVolume, self._parameterNode.isodoseLevels)
            self.ui.statusLabel.text = _("Isodose lines updated: {name}").format(name=model.GetName())

    def onExportRTDoseButton(self) -> None:
        doseNode = self._parameterNode.outputVolume
        import qt

        directory = slicer.app.defaultScenePath

        path = qt.QFileDialog.getSaveFileName(slicer.util.mainWindow(), _("Export RT Dose"),
                                              os.path.join(directory, doseNode.GetName() + ".dcm"),
                                              _("DICOM RT Dose (*.dcm)"))
        if not path:
            return
        with slicer.util.tryWithErrorDisplay(_("RT Dose export failed."), waitCursor=True):
            written = self.logic.exportRTDose(doseNode, path)
            self.ui.statusLabel.text = _("RT Dose written: {path}").format(path=written)


#
# DeepDoseTest (in DeepDoseSelfTest.py; imported here so that Slicer's test runners find it)
#

from DeepDoseSelfTest import DeepDoseTest  # noqa: E402,F401
