"""DeepDose: voxel dose-rate maps (mGy/h) from quantitative PET (Bq/mL) and CT (HU) in 3D Slicer.

Thin Slicer module (extension-wizard layout): the widget binds the parameter node and calls the
logic; the logic is an adapter over :mod:`DeepDoseLib.mrml`; all dosimetry lives in DeepDoseLib.
DeepDoseLib needs PyTorch, so it is imported lazily: the module loads without torch and tells the
user how to install it.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import sys
from typing import Optional

import vtk

import slicer
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.util import VTKObservationMixin

from slicer import vtkMRMLScalarVolumeNode

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
    "Install it with the PyTorch extension (Extensions Manager > 'PyTorch', then the 'PyTorch Utils' "
    "module > Install PyTorch), or from the Python console:\n"
    "    slicer.util.pip_install('torch')\n"
    "and restart Slicer."
)


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
<li><b>Nuclide</b>: the radionuclide of the tracer (e.g. Ga68, F18, Lu177).</li>
<li><b>Method</b>: <i>led</i> = local energy deposition of the emitted charged-particle energy.</li>
</ul>
<p>The output is shown as a dose wash over the CT, marked as a dose volume for SlicerRT
(Isodose, Dose Volume Histogram).</p>
<p>Scripting from the Python console:</p>
<pre>
import DeepDose
logic = DeepDose.DeepDoseLogic()
dose = logic.run(getNode("CT"), getNode("PET"), nuclide="Ga68", method="led")
print(dose.GetName(), slicer.util.arrayFromVolume(dose).max(), "mGy/h")
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


#
# DeepDoseParameterNode
#


@parameterNodeWrapper
class DeepDoseParameterNode:
    """
    ctVolume - CT in HU.
    petVolume - PET activity concentration in Bq/mL.
    nuclide - radionuclide name (DeepDoseLib.list_nuclides()).
    method - dose method (DeepDoseLib.METHODS).
    includePhotons - also deposit photon energy locally (upper bound).
    outputVolume - dose-rate volume in mGy/h (created when empty).
    """

    ctVolume: vtkMRMLScalarVolumeNode
    petVolume: vtkMRMLScalarVolumeNode
    nuclide: str = "Ga68"
    method: str = "led"
    includePhotons: bool = False
    outputVolume: vtkMRMLScalarVolumeNode


#
# DeepDoseWidget
#


class DeepDoseWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Binds the GUI to the parameter node and calls the logic; no computation here."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._deepDoseLibError = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/DeepDose.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = DeepDoseLogic()
        self._fillChoiceComboBoxes()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        # Nuclide and method combos are filled at run time from DeepDoseLib, so they are synced by
        # hand (the parameter-node QComboBox connector needs choices fixed at class definition).
        self.ui.nuclideComboBox.connect("currentIndexChanged(int)", self.onChoiceChanged)
        self.ui.methodComboBox.connect("currentIndexChanged(int)", self.onChoiceChanged)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)

        self.initializeParameterNode()

    def _fillChoiceComboBoxes(self) -> None:
        try:
            DeepDoseLib = importDeepDoseLib()
        except ImportError as error:
            self._deepDoseLibError = str(error)
            self.ui.statusLabel.text = self._deepDoseLibError
            return
        self._deepDoseLibError = None
        for comboBox, items in (
            (self.ui.nuclideComboBox, DeepDoseLib.list_nuclides()),
            (self.ui.methodComboBox, DeepDoseLib.METHODS),
        ):
            wasBlocked = comboBox.blockSignals(True)
            comboBox.clear()
            for item in items:
                comboBox.addItem(item)
            comboBox.blockSignals(wasBlocked)
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
        self._checkCanApply()

    def _updateChoiceComboBoxes(self) -> None:
        if not self._parameterNode:
            return
        for comboBox, value in (
            (self.ui.nuclideComboBox, self._parameterNode.nuclide),
            (self.ui.methodComboBox, self._parameterNode.method),
        ):
            index = comboBox.findText(value)
            if index >= 0 and index != comboBox.currentIndex:
                wasBlocked = comboBox.blockSignals(True)
                comboBox.currentIndex = index
                comboBox.blockSignals(wasBlocked)

    def onChoiceChanged(self, index=None) -> None:
        if not self._parameterNode:
            return
        nuclide = self.ui.nuclideComboBox.currentText
        method = self.ui.methodComboBox.currentText
        if nuclide and nuclide != self._parameterNode.nuclide:
            self._parameterNode.nuclide = nuclide
        if method and method != self._parameterNode.method:
            self._parameterNode.method = method

    def _checkCanApply(self) -> None:
        parameters = self._parameterNode
        if self._deepDoseLibError:
            self.ui.applyButton.toolTip = self._deepDoseLibError
            self.ui.applyButton.enabled = False
        elif parameters and parameters.ctVolume and parameters.petVolume:
            self.ui.applyButton.toolTip = _("Compute the dose-rate map (mGy/h) on the PET grid")
            self.ui.applyButton.enabled = True
        else:
            self.ui.applyButton.toolTip = _("Select a CT volume (HU) and a PET volume (Bq/mL)")
            self.ui.applyButton.enabled = False

    def onApplyButton(self) -> None:
        parameters = self._parameterNode
        progressDialog = slicer.util.createProgressDialog(
            windowTitle=_("DeepDose"), labelText=_("Computing dose rate..."), maximum=100
        )

        def progress(fraction: float, message: str) -> None:
            progressDialog.value = int(round(100 * max(0.0, min(1.0, fraction))))
            progressDialog.labelText = message
            slicer.util.showStatusMessage("DeepDose: " + message)
            slicer.app.processEvents()

        try:
            with slicer.util.tryWithErrorDisplay(_("Failed to compute the dose-rate map."), waitCursor=True):
                outputNode = self.logic.run(
                    parameters.ctVolume,
                    parameters.petVolume,
                    nuclide=parameters.nuclide,
                    method=parameters.method,
                    includePhotons=parameters.includePhotons,
                    outputNode=parameters.outputVolume,
                    progress=progress,
                )
                parameters.outputVolume = outputNode
                slicer.util.showStatusMessage(_("DeepDose: dose-rate map ready (mGy/h)"), 3000)
        finally:
            progressDialog.close()


#
# DeepDoseLogic
#


class DeepDoseLogic(ScriptedLoadableModuleLogic):
    """Adapter over :func:`DeepDoseLib.mrml.compute_dose_rate_node` on ``slicer.mrmlScene``."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return DeepDoseParameterNode(super().getParameterNode())

    def run(
        self,
        ctNode,
        petNode,
        nuclide: str = "Ga68",
        method: str = "led",
        includePhotons: bool = False,
        outputNode=None,
        progress=None,
    ):
        """Compute the dose-rate map of ``petNode`` (Bq/mL) with ``ctNode`` (HU).

        Returns the output vtkMRMLScalarVolumeNode (mGy/h, PET grid), shown as a dose wash over the
        CT. ``outputNode`` is overwritten when given; ``progress(fraction, message)`` is optional.
        Raises ImportError (with installation advice) when PyTorch is missing and ValueError
        (DeepDoseInputError) for unusable inputs.
        """
        DeepDoseLib = importDeepDoseLib()
        logging.info(
            "DeepDose: computing %s dose rate for %s (%s)",
            method, nuclide, petNode.GetName() if petNode else None,
        )
        return DeepDoseLib.mrml.compute_dose_rate_node(
            slicer.mrmlScene,
            ctNode,
            petNode,
            nuclide,
            method=method,
            include_photons=includePhotons,
            output_node=outputNode,
            progress=progress,
        )


#
# DeepDoseTest
#


class DeepDoseTest(ScriptedLoadableModuleTest):
    """Runs in Slicer (Developer mode > Reload and Test, or ctest): demo case through the logic."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_DeepDose_demo_case()

    def test_DeepDose_demo_case(self):
        import numpy as np

        DeepDoseLib = importDeepDoseLib()
        from DeepDoseLib.demo import make_demo_case
        from DeepDoseLib.mrml import image_from_volume_node, volume_node_from_image

        self.delayDisplay("Building the demo case")
        case = make_demo_case()
        ctNode = volume_node_from_image(slicer.mrmlScene, case.ct, "DemoCT")
        petNode = volume_node_from_image(slicer.mrmlScene, case.pet, "DemoPET")

        self.delayDisplay("Computing the dose rate")
        doseNode = DeepDoseLogic().run(ctNode, petNode, nuclide=case.nuclide, method="led")

        self.assertIsNotNone(doseNode)
        self.assertEqual(doseNode.GetAttribute("DicomRtImport.DoseVolume"), "1")
        self.assertEqual(doseNode.GetAttribute("DeepDose.Unit"), "mGy/h")
        dose = image_from_volume_node(doseNode)
        self.assertEqual(dose.GetSize(), case.pet.GetSize())
        np.testing.assert_allclose(dose.GetOrigin(), case.pet.GetOrigin(), atol=1e-6)
        np.testing.assert_allclose(dose.GetSpacing(), case.pet.GetSpacing(), atol=1e-6)
        np.testing.assert_allclose(dose.GetDirection(), case.pet.GetDirection(), atol=1e-9)
        self.assertGreater(float(slicer.util.arrayFromVolume(doseNode).max()), 0.0)
        self.assertIn(case.nuclide, DeepDoseLib.list_nuclides())

        redComposite = slicer.mrmlScene.GetNodeByID("vtkMRMLSliceCompositeNodeRed")
        if redComposite is not None:  # absent when Slicer runs without a main window
            self.assertEqual(redComposite.GetForegroundVolumeID(), doseNode.GetID())
        self.delayDisplay("Test passed")
