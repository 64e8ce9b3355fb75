"""DeepDose: voxel dose-rate maps (mGy/h) from quantitative PET (Bq/mL) and CT (HU) in 3D Slicer.

Thin Slicer module (extension-wizard layout): the widget binds the parameter node, runs the
calculation out-of-process through the DeepDoseCLI module (progress bar, Cancel, responsive GUI)
and lets the logic build the outputs; the logic is an adapter over :mod:`DeepDoseLib.mrml`; all
dosimetry lives in DeepDoseLib. DeepDoseLib needs PyTorch, so it is imported lazily: the module
loads without torch and offers to install it.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import sys
from typing import Optional, Sequence

import vtk

import slicer
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleWidget,
)
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.util import VTKObservationMixin

from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode

import DeepDoseCLIRunner

try:
    from slicer.i18n import tr as _
    from slicer.i18n import translate
except ImportError:  # Slicer without i18n support

    def _(text):
        return text

    def translate(context, text):
        return text


def _bootstrapDeepDoseLibPath() -> None:
    """From a source checkout, put the repository root (parent of this folder) on ``sys.path``.

    Slicer only adds each module's own folder to ``sys.path``; an installed extension has
    DeepDoseLib beside the module in the scripted-modules folder, so nothing is done then.
    """
    if importlib.util.find_spec("DeepDoseLib") is not None:
        return
    repositoryRoot = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.isdir(os.path.join(repositoryRoot, "DeepDoseLib")) and repositoryRoot not in sys.path:
        sys.path.insert(0, repositoryRoot)


_bootstrapDeepDoseLibPath()

TORCH_MISSING_MESSAGE = _(
    "DeepDose needs PyTorch, which is not installed in Slicer's Python.\n"
    "Press 'Install PyTorch' (it uses the PyTorch extension when installed, otherwise pip), or install the "
    "PyTorch extension from the Extensions Manager, then restart Slicer."
)
#: Shown in the method list; methods of DeepDoseLib.PLANNED_METHODS are listed "(coming)" and cannot be chosen.
METHOD_TITLES = {
    "led": "LED: local energy deposition",
    "vsv": "VSV: voxel S-value convolution",
    "vsv_scaled": "VSV, density-scaled (lung, bone)",
    "mc": "MC: Monte Carlo (reference)",
    "deepdose": "Deep-dose: 3D U-Net",
    "mird": "MIRD: organ level (needs organs)",
}
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_ISODOSE_LEVELS = "10, 25, 50, 75, 90"


def importDeepDoseLib():
    """Import and return DeepDoseLib, raising ImportError with installation advice if torch is missing."""
    try:
        import DeepDoseLib
        import DeepDoseLib.mrml  # noqa: F401  (the MRML bridge used by the logic)
    except ImportError as error:
        missing = getattr(error, "name", "") or ""
        if missing.split(".")[0] == "torch" or "torch" in str(error):
            raise ImportError(TORCH_MISSING_MESSAGE) from error
        raise
    return DeepDoseLib


def pyTorchInstalled() -> bool:
    return importlib.util.find_spec("torch") is not None


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
        self.parent.contributors = ["DeepDose developers"]
        self.parent.helpText = _(
            """
<p>Computes a voxel <b>dose-rate map in mGy/h</b> from a quantitative PET volume and a CT volume.</p>
<ul>
<li><b>CT</b>: Hounsfield units (HU); it gives the tissue density.</li>
<li><b>PET</b>: activity concentration in <b>Bq/mL</b> (not SUV, not counts); the dose-rate map is
computed on the PET grid.</li>
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
result = logic.run(getNode("CT"), getNode("PET"), nuclide="Ga68", method="led",
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
    petVolume - PET activity concentration in Bq/mL.
    segmentation - optional organs/lesions for DVH and statistics.
    nuclide, method, device - DeepDoseLib.list_nuclides(), DeepDoseLib.METHODS, auto/cpu/cuda.
    includePhotons, clipNegative, decays, seed, vsvDensityCorrection - method options.
    modelFile - Deep-dose model (.pt/.pt2 with its .json card); empty: the bundled model of the nuclide.
    isodoseLevels - isodose levels in % of the maximum dose rate in tissue.
    outputVolume - dose-rate volume (mGy/h) of the latest run.
    """

    ctVolume: vtkMRMLScalarVolumeNode
    petVolume: vtkMRMLScalarVolumeNode
    segmentation: vtkMRMLSegmentationNode
    nuclide: str = "Ga68"
    method: str = "led"
    device: str = "auto"
    includePhotons: bool = False
    clipNegative: bool = False
    decays: int = 1000000
    seed: int = 0
    vsvDensityCorrection: bool = False
    modelFile: str = ""
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
        self._deepDoseLibError = None
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
        self._fillChoiceComboBoxes()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        # The choice combos are filled at run time from DeepDoseLib, so they are synced by hand
        # (the parameter-node QComboBox connector needs choices fixed at class definition).
        for comboBox in (self.ui.nuclideComboBox, self.ui.methodComboBox, self.ui.deviceComboBox):
            comboBox.connect("currentIndexChanged(int)", self.onChoiceChanged)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancelButton)
        self.ui.updateIsodoseButton.connect("clicked(bool)", self.onUpdateIsodoseButton)
        self.ui.installPyTorchButton.connect("clicked(bool)", self.onInstallPyTorchButton)

        self.initializeParameterNode()

    def _fillChoiceComboBoxes(self) -> None:
        try:
            DeepDoseLib = importDeepDoseLib()
        except ImportError as error:
            self._deepDoseLibError = str(error)
            self.ui.statusLabel.text = self._deepDoseLibError
            self.ui.installPyTorchButton.visible = not pyTorchInstalled()
            return
        self._deepDoseLibError = None
        self.ui.installPyTorchButton.visible = False
        methods = list(DeepDoseLib.METHODS) + list(DeepDoseLib.PLANNED_METHODS)
        for comboBox, keys, titles in (
            (self.ui.nuclideComboBox, DeepDoseLib.list_nuclides(), {}),
            (self.ui.methodComboBox, methods, METHOD_TITLES),
            (self.ui.deviceComboBox, DEVICES, {}),
        ):
            wasBlocked = comboBox.blockSignals(True)
            comboBox.clear()
            for key in keys:
                title = titles.get(key, key)
                if key in DeepDoseLib.PLANNED_METHODS:
                    title += _(" (coming)")
                comboBox.addItem(title, key)
            comboBox.blockSignals(wasBlocked)
        import qt

        for index, key in enumerate(methods):
            if key in DeepDoseLib.PLANNED_METHODS:
                # Listed but not selectable: Qt.UserRole - 1 is the "enabled" flag of the combo's item model.
                self.ui.methodComboBox.setItemData(index, 0, qt.Qt.UserRole - 1)
        self.ui.statusLabel.text = ""

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
        self.setParameterNode(self.logic.getParameterNode())

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
        self._updateChoiceComboBoxes()
        self._updateButtons()

    def _updateChoiceComboBoxes(self) -> None:
        if not self._parameterNode:
            return
        for comboBox, value in (
            (self.ui.nuclideComboBox, self._parameterNode.nuclide),
            (self.ui.methodComboBox, self._parameterNode.method),
            (self.ui.deviceComboBox, self._parameterNode.device),
        ):
            index = comboBox.findData(value)
            if index >= 0 and index != comboBox.currentIndex:
                wasBlocked = comboBox.blockSignals(True)
                comboBox.currentIndex = index
                comboBox.blockSignals(wasBlocked)

    def onChoiceChanged(self, index=None) -> None:
        if not self._parameterNode:
            return
        method = self.ui.methodComboBox.itemData(self.ui.methodComboBox.currentIndex)
        if method and method not in self.logic.availableMethods():
            slicer.util.warningDisplay(_("{method} is not available in this version of DeepDose yet.").format(
                method=METHOD_TITLES.get(method, method)))
            self._updateChoiceComboBoxes()  # back to the parameter node's method
            return
        for comboBox, name in ((self.ui.nuclideComboBox, "nuclide"), (self.ui.methodComboBox, "method"),
                               (self.ui.deviceComboBox, "device")):
            value = comboBox.itemData(comboBox.currentIndex)
            if value and value != getattr(self._parameterNode, name):
                setattr(self._parameterNode, name, value)

    def _updateButtons(self) -> None:
        parameters = self._parameterNode
        running = self._run is not None
        self.ui.cancelButton.enabled = running
        if self._deepDoseLibError:
            self.ui.applyButton.toolTip = self._deepDoseLibError
            self.ui.applyButton.enabled = False
        elif running:
            self.ui.applyButton.toolTip = _("A calculation is running: wait or press Cancel")
            self.ui.applyButton.enabled = False
        elif parameters and parameters.ctVolume and parameters.petVolume:
            self.ui.applyButton.toolTip = _("Compute the dose-rate map (mGy/h) on the PET grid in a separate process")
            self.ui.applyButton.enabled = True
        else:
            self.ui.applyButton.toolTip = _("Select a CT volume (HU) and a PET volume (Bq/mL)")
            self.ui.applyButton.enabled = False
        self.ui.updateIsodoseButton.enabled = bool(parameters and parameters.outputVolume and not running)
        decaysUsed = bool(parameters and parameters.method == "mc")
        self.ui.decaysSpinBox.enabled = decaysUsed
        self.ui.seedSpinBox.enabled = decaysUsed
        modelUsed = bool(parameters and parameters.method == "deepdose")
        self.ui.modelFilePathLineEdit.enabled = modelUsed
        self.ui.modelCardLabel.visible = modelUsed
        if modelUsed and not self._deepDoseLibError:
            self.ui.modelCardLabel.text = self.logic.modelCardSummary(parameters.modelFile, parameters.nuclide)

    def onInstallPyTorchButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Installing PyTorch failed."), waitCursor=True):
            if self.logic.installPyTorch():
                self._fillChoiceComboBoxes()
                self._onParameterNodeModified()

    def onApplyButton(self) -> None:
        parameters = self._parameterNode
        if self._deepDoseLibError or not self.logic.ensurePyTorch():
            return
        if parameters.method not in self.logic.cliMethods():
            self._runInProcess()
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to start the dose calculation."), waitCursor=True):
            levels = self.logic.parseIsodoseLevels(parameters.isodoseLevels)
            self._run = self.logic.startCLI(
                parameters.ctVolume, parameters.petVolume, nuclide=parameters.nuclide, method=parameters.method,
                segmentationNode=parameters.segmentation, includePhotons=parameters.includePhotons,
                clipNegative=parameters.clipNegative, decays=parameters.decays, seed=parameters.seed,
                vsvDensityCorrection=parameters.vsvDensityCorrection, device=parameters.device,
                modelFile=parameters.modelFile)
            self._run.isodoseLevelsPercent = levels
            self.addObserver(self._run.cliNode, self._run.cliNode.StatusModifiedEvent, self.onCLIStatusModified)
            if self.cliProgressBar is not None:
                self.cliProgressBar.setCommandLineModuleNode(self._run.cliNode)
                self.cliProgressBar.visible = True
            self.ui.statusLabel.text = _("Computing the dose rate in a separate process...")
        self._updateButtons()

    def _runInProcess(self) -> None:
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
                result = self.logic.run(
                    parameters.ctVolume, parameters.petVolume, nuclide=parameters.nuclide, method=parameters.method,
                    segmentationNode=parameters.segmentation, includePhotons=parameters.includePhotons,
                    clipNegative=parameters.clipNegative, decays=parameters.decays, seed=parameters.seed,
                    vsvDensityCorrection=parameters.vsvDensityCorrection, device=parameters.device,
                    modelFile=parameters.modelFile,
                    isodoseLevelsPercent=self.logic.parseIsodoseLevels(parameters.isodoseLevels), progress=progress)
                parameters.outputVolume = result.dose_node
                self.ui.statusLabel.text = _("Dose rate ready: maximum in tissue {value:.4g} mGy/h.").format(
                    value=result.reference_dose_rate)
                self.logic.showResult(result)
        finally:
            progressDialog.close()

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
                    self._parameterNode.outputVolume = result.dose_node
                    self.ui.statusLabel.text = _("Dose rate ready: maximum in tissue {value:.4g} mGy/h.").format(
                        value=result.reference_dose_rate)
                    self.logic.showResult(result)
            else:
                self.logic.discardCLI(run)
                if cliNode.GetStatus() == cliNode.Cancelled:
                    self.ui.statusLabel.text = _("Cancelled.")
                else:
                    message = self.logic.cliErrorMessage(cliNode)
                    self.ui.statusLabel.text = message
                    slicer.util.errorDisplay(message, windowTitle=_("DeepDose"))
        finally:
            self._updateButtons()

    def onUpdateIsodoseButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to update the isodose lines."), waitCursor=True):
            model = self.logic.updateIsodoseLevels(self._parameterNode.outputVolume, self._parameterNode.isodoseLevels)
            self.ui.statusLabel.text = _("Isodose lines updated: {name}").format(name=model.GetName())


#
# DeepDoseLogic
#


class DeepDoseLogic(ScriptedLoadableModuleLogic):
    """Adapter over :mod:`DeepDoseLib.mrml` on ``slicer.mrmlScene`` (no Qt here)."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return DeepDoseParameterNode(super().getParameterNode())

    @staticmethod
    def availableMethods() -> tuple:
        return tuple(importDeepDoseLib().METHODS)

    @staticmethod
    def parseIsodoseLevels(text: str) -> list:
        importDeepDoseLib()
        from DeepDoseLib.mrml import parse_levels_percent

        return parse_levels_percent(text or DEFAULT_ISODOSE_LEVELS)

    # -- console scripting: in-process, synchronous -------------------------------------------

    def run(
        self,
        ctNode,
        petNode,
        nuclide: str = "Ga68",
        method: str = "led",
        segmentationNode=None,
        includePhotons: bool = False,
        clipNegative: bool = False,
        decays: int = 1000000,
        seed: int = 0,
        vsvDensityCorrection: bool = False,
        device: str = "auto",
        isodoseLevelsPercent: Sequence[float] = (10.0, 25.0, 50.0, 75.0, 90.0),
        progress=None,
        modelFile: str = "",
    ):
        """Compute the dose-rate map of ``petNode`` (Bq/mL) with ``ctNode`` (HU) and build every output.

        Returns a ``DeepDoseLib.mrml.DosimetryResult``: ``dose_node`` (mGy/h), ``uncertainty_node``
        (MC), ``isodose_model_node``, ``dvh_table_nodes``, ``plot_series_nodes``, ``chart_node``,
        ``stats_table_node``, ``folder_item``. Raises ImportError (with installation advice) when
        PyTorch is missing and ValueError (DeepDoseInputError) for unusable inputs.
        """
        DeepDoseLib = importDeepDoseLib()
        from DeepDoseLib.dose import MethodOptions

        logging.info("DeepDose: computing %s dose rate for %s (%s)", method, nuclide,
                     petNode.GetName() if petNode else None)
        options = MethodOptions(include_photons=includePhotons, n_decays=int(decays), seed=int(seed),
                                density_correction=vsvDensityCorrection, model_path=modelFile or None)
        result = DeepDoseLib.mrml.run_dosimetry(
            slicer.mrmlScene, ctNode, petNode, nuclide, method, segmentation_node=segmentationNode,
            isodose_levels_percent=isodoseLevelsPercent, options=options, device=device,
            clip_negative=clipNegative, progress=progress)
        for note in result.notes:
            logging.info("DeepDose: %s", note)
        return result

    @staticmethod
    def modelCardSummary(modelFile: str, nuclide: str) -> str:
        """A few lines of the model card of the Deep-dose model a run would use (weights not loaded)."""
        importDeepDoseLib()
        from DeepDoseLib.deepdose.model_io import model_card_summary

        return model_card_summary(modelFile or None, nuclide)

    def updateIsodoseLevels(self, doseNode, levelsText: str):
        """Recompute the isodose lines of ``doseNode`` with levels in % (e.g. ``"10, 50, 90"``)."""
        importDeepDoseLib()
        from DeepDoseLib.mrml import find_isodose_model, parse_levels_percent, update_isodose_levels

        model = find_isodose_model(slicer.mrmlScene, doseNode) if doseNode is not None else None
        if model is None:
            raise ValueError(_("The dose-rate volume has no DeepDose isodose model."))
        return update_isodose_levels(slicer.mrmlScene, model, parse_levels_percent(levelsText))

    # -- GUI: out-of-process through the DeepDoseCLI module (DeepDoseCLIRunner) ------------------

    cliParameters = staticmethod(DeepDoseCLIRunner.cliParameters)
    cliMethods = staticmethod(DeepDoseCLIRunner.cliMethods)
    cliErrorMessage = staticmethod(DeepDoseCLIRunner.cliErrorMessage)

    def startCLI(self, ctNode, petNode, nuclide: str = "Ga68", method: str = "led", segmentationNode=None,
                 **options):
        """Start DeepDoseCLI asynchronously; returns a ``DeepDoseCLIRun`` (``cliNode``: progress, status, Cancel)."""
        return DeepDoseCLIRunner.startCLI(importDeepDoseLib(), slicer.mrmlScene, ctNode, petNode, nuclide, method,
                                          segmentationNode, **options)

    def finishCLI(self, run):
        """After the CLI completed: display the dose and build isodose, DVH and statistics nodes."""
        return DeepDoseCLIRunner.finishCLI(importDeepDoseLib(), slicer.mrmlScene, run)

    @staticmethod
    def discardCLI(run) -> None:
        """Remove the empty output nodes of a failed or cancelled run."""
        DeepDoseCLIRunner.discardCLI(slicer.mrmlScene, run)

    @staticmethod
    def showResult(result) -> None:
        """Show the DVH chart in the layout's plot view (when the application has one)."""
        if result.chart_node is None:
            return
        plotsLogic = getattr(getattr(slicer.modules, "plots", None), "logic", None)
        if plotsLogic is not None:
            plotsLogic().ShowChartInLayout(result.chart_node)

    # -- PyTorch -------------------------------------------------------------------------------

    def ensurePyTorch(self) -> bool:
        """True when torch is importable; otherwise offer to install it (never crash)."""
        if pyTorchInstalled():
            return True
        if not slicer.util.confirmOkCancelDisplay(TORCH_MISSING_MESSAGE + "\n\n" + _("Install PyTorch now?")):
            return False
        return self.installPyTorch()

    @staticmethod
    def installPyTorch() -> bool:
        """Install torch with SlicerPyTorch's PyTorchUtils when present, else ``slicer.util.pip_install``."""
        try:
            import PyTorchUtils
        except ImportError:
            PyTorchUtils = None
        if PyTorchUtils is not None:
            torchLogic = PyTorchUtils.PyTorchUtilsLogic()
            try:
                torch = torchLogic.installTorch(askConfirmation=False)
            except TypeError:  # older PyTorchUtils without the keyword
                torch = torchLogic.installTorch()
            installed = torch is not None
        else:
            slicer.util.pip_install("torch")
            importlib.invalidate_caches()
            installed = pyTorchInstalled()
        return installed


#
# DeepDoseTest (in DeepDoseSelfTest.py; imported here so that Slicer's test runners find it)
#

from DeepDoseSelfTest import DeepDoseTest  # noqa: E402,F401
