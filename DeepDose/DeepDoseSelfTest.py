"""DeepDoseTest: the self-test of the DeepDose module (Reload and Test, ctest, and pytest for the logic).

``test_DeepDose_logic_demo_case`` runs the console logic on the demo case; ``test_DeepDose_widget_apply``
drives the real widget (inputs, Apply, wait for the DeepDoseCLI process, outputs) and needs the
Slicer application. The module imports this class into ``DeepDose`` so Slicer's runners find it.
"""
from __future__ import annotations

import importlib.util

import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleTest

import DeepDoseModuleLogic as DeepDose  # the logic and panel rules (DeepDose.py imports this file itself)


def torchMissing() -> bool:
    """True when PyTorch cannot be imported (checked without importing it)."""
    return importlib.util.find_spec("torch") is None


class DeepDoseTest(ScriptedLoadableModuleTest):
    """Runs in Slicer (Developer mode > Reload and Test, or ctest) and, for the logic, under pytest."""

    def setUp(self):
        # PyTorch is optional for installing the extension: without it the self-test skips (it does not error).
        if torchMissing():
            self.skipTest("PyTorch is not installed (install it with the PyTorch extension); DeepDose's dose "
                          "engines need it")
        slicer.mrmlScene.Clear()

    def runTest(self):
        import unittest

        for name in ("test_DeepDose_logic_demo_case", "test_DeepDose_widget_apply"):
            try:
                self.setUp()
                getattr(self, name)()
            except unittest.SkipTest as reason:
                self.delayDisplay("%s skipped: %s" % (name, reason))

    def _loadDemoCase(self):
        DeepDose.importDeepDoseLib()
        from DeepDoseLib.mrml import load_demo_case

        return load_demo_case(slicer.mrmlScene)

    def test_DeepDose_logic_demo_case(self):
        import numpy as np
        from DeepDoseLib.mrml import ISODOSE_LEVEL_ARRAY, folder_nodes, image_from_volume_node
        from vtk.util import numpy_support

        self.delayDisplay("Loading the demo case")
        demo = self._loadDemoCase()
        self.delayDisplay("Computing the dose rate (LED, in-process)")
        result = DeepDose.DeepDoseLogic().run(demo["ct"], demo["pet"], nuclide=demo["nuclide"], method="led",
                                              segmentationNode=demo["segmentation"])

        doseNode = result.dose_node
        self.assertEqual(doseNode.GetAttribute("DicomRtImport.DoseVolume"), "1")
        self.assertEqual(doseNode.GetAttribute("DeepDose.Unit"), "mGy/h")
        dose, pet = image_from_volume_node(doseNode), image_from_volume_node(demo["pet"])
        self.assertEqual(dose.GetSize(), pet.GetSize())
        np.testing.assert_allclose(dose.GetOrigin(), pet.GetOrigin(), atol=1e-6)
        np.testing.assert_allclose(dose.GetSpacing(), pet.GetSpacing(), atol=1e-6)
        levels = numpy_support.vtk_to_numpy(
            result.isodose_model_node.GetPolyData().GetPointData().GetArray(ISODOSE_LEVEL_ARRAY))
        self.assertEqual(sorted(set(levels.tolist())), [0, 1, 2, 3, 4])
        segments = demo["segmentation"].GetSegmentation().GetNumberOfSegments()
        self.assertEqual(len(result.dvh_table_nodes), segments)
        self.assertEqual(result.chart_node.GetNumberOfPlotSeriesNodes(), segments)
        self.assertEqual(result.stats_table_node.GetNumberOfRows(), segments)
        inFolder = folder_nodes(slicer.mrmlScene, result.folder_item)
        for node in [doseNode, result.isodose_model_node, result.chart_node, result.stats_table_node]:
            self.assertIn(node, inFolder)
        self.delayDisplay("Logic test passed")

    def test_DeepDose_widget_apply(self):
        """Drive the real widget: set inputs, click Apply, wait for the CLI, check the outputs."""
        if getattr(slicer, "app", None) is None or not hasattr(slicer.modules, "deepdosecli") \
                or not hasattr(slicer.modules, "deepdose"):
            self.skipTest("needs the Slicer application with the DeepDose and DeepDoseCLI modules")
        import time

        import qt

        demo = self._loadDemoCase()
        slicer.util.selectModule("DeepDose")
        widget = slicer.modules.deepdose.widgetRepresentation().self()
        parameters = widget._parameterNode
        parameters.ctVolume, parameters.petVolume = demo["ct"], demo["pet"]
        parameters.segmentation = demo["segmentation"]
        parameters.nuclide, parameters.method = demo["nuclide"], "led"
        self.assertTrue(widget.ui.applyButton.enabled)
        widget.ui.applyButton.click()
        self.assertTrue(widget.ui.cancelButton.enabled)
        deadline = time.time() + 300
        while widget._run is not None and time.time() < deadline:
            slicer.app.processEvents(qt.QEventLoop.AllEvents, 100)
        self.assertIsNone(widget._run, "the CLI did not finish in 300 s")
        doseNode = parameters.outputVolume
        self.assertIsNotNone(doseNode, widget.ui.statusLabel.text)
        self.assertEqual(doseNode.GetAttribute("DicomRtImport.DoseVolume"), "1")
        self.assertEqual(doseNode.GetImageData().GetDimensions(), demo["pet"].GetImageData().GetDimensions())
        self.assertIsNotNone(slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLPlotChartNode"))
        self.delayDisplay("Widget test passed")
