"""DeepDose/DeepDose.py's logic and self-test on the real MRML scene of slicer-core.

slicer-core has no Qt, so the Qt-only parts of Slicer's Python package (ScriptedLoadableModule,
parameterNodeWrapper) are replaced by minimal stand-ins; MRML itself is real. The widget and the
out-of-process run need the application: ``DeepDoseTest.test_DeepDose_widget_apply`` runs inside
Slicer (ctest / Reload and Test) and is skipped here.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import types
import unittest

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="MRML tests need `slicer` (Slicer or pip slicer-core)")

from DeepDoseLib.mrml import ISODOSE_LEVEL_ARRAY, segmentation_from_labels, volume_node_from_image  # noqa: E402
from vtk.util import numpy_support  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))


def load_module_with_stubbed_application(monkeypatch, scene):
    """Import DeepDose/DeepDose.py with stand-ins for the Qt-only parts of Slicer."""
    stub = types.ModuleType("slicer.ScriptedLoadableModule")

    class ScriptedLoadableModule:
        def __init__(self, parent):
            self.parent = parent

    class ScriptedLoadableModuleLogic:
        def getParameterNode(self):
            return scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode")

    class ScriptedLoadableModuleWidget:
        def __init__(self, parent=None):
            self.parent = parent

    class ScriptedLoadableModuleTest(unittest.TestCase):
        def delayDisplay(self, message, msec=0):
            pass

    for cls in (ScriptedLoadableModule, ScriptedLoadableModuleLogic, ScriptedLoadableModuleWidget,
                ScriptedLoadableModuleTest):
        setattr(stub, cls.__name__, cls)
    wrapper_stub = types.ModuleType("slicer.parameterNodeWrapper")
    wrapper_stub.parameterNodeWrapper = lambda cls: cls
    monkeypatch.setitem(sys.modules, "slicer.ScriptedLoadableModule", stub)
    monkeypatch.setitem(sys.modules, "slicer.parameterNodeWrapper", wrapper_stub)
    monkeypatch.setattr(slicer, "mrmlScene", scene, raising=False)

    path = os.path.join(REPO_ROOT, "DeepDose", "DeepDose.py")
    spec = importlib.util.spec_from_file_location("DeepDose_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def module(monkeypatch, scene):
    return load_module_with_stubbed_application(monkeypatch, scene)


def test_console_logic_run_returns_the_created_nodes(module, scene, demo_case):
    ct_node = volume_node_from_image(scene, demo_case.ct, "CT")
    pet_node = volume_node_from_image(scene, demo_case.pet, "PET")
    names = {v: n for v, n in demo_case.label_names.items() if n in ("liver", "spleen")}
    segmentation = segmentation_from_labels(scene, demo_case.labels, names, "Organs")
    result = module.DeepDoseLogic().run(ct_node, pet_node, nuclide="Lu177", method="led", segmentationNode=segmentation,
                                        includePhotons=True, isodoseLevelsPercent=(20, 80))
    assert result.dose_node.GetAttribute("DeepDose.Nuclide") == "Lu177"
    assert result.dose_node.GetAttribute("DeepDose.IncludePhotons") == "1"
    levels = numpy_support.vtk_to_numpy(
        result.isodose_model_node.GetPolyData().GetPointData().GetArray(ISODOSE_LEVEL_ARRAY))
    assert sorted(np.unique(levels).tolist()) == [0, 1]
    assert [t.GetAttribute("DeepDose.SegmentName") for t in result.dvh_table_nodes] == ["liver", "spleen"]
    assert result.stats_table_node.GetNumberOfRows() == 2 and result.chart_node is not None

    model = module.DeepDoseLogic().updateIsodoseLevels(result.dose_node, "10; 50, 90")
    assert model is result.isodose_model_node
    assert module.DeepDoseLogic.parseIsodoseLevels("") == [10.0, 25.0, 50.0, 75.0, 90.0]


def test_cli_parameters_match_the_cli_xml(module, scene):
    """Every parameter the GUI sends to DeepDoseCLI exists in DeepDoseCLI.xml with a matching type."""
    ctk_cli = pytest.importorskip("ctk_cli")
    xml = {p.name: p for p in ctk_cli.CLIModule(os.path.join(REPO_ROOT, "DeepDoseCLI", "DeepDoseCLI.xml")).parameters()}
    nodes = [scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name) for name in ("ct", "pet", "dose", "sigma")]
    labels = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "organs")
    parameters = module.DeepDoseLogic.cliParameters(*nodes, nuclide="Lu177", method="mc", includePhotons=True,
                                                    decays=2000, seed=4, device="cpu", labelsNode=labels)
    assert set(parameters) == set(xml)  # the GUI sets every option of the CLI
    assert set(module.DeepDoseLogic.cliMethods()) == set(xml["method"].elements)
    for name, value in parameters.items():
        typ = xml[name].typ
        if typ == "image":
            assert value.IsA("vtkMRMLVolumeNode"), name
        elif typ == "boolean":
            assert isinstance(value, bool), name
        elif typ == "integer":
            assert isinstance(value, int), name
        elif typ == "string-enumeration":
            assert value in xml[name].elements, name
    assert parameters["petUnit"] == "Bq/mL" and parameters["decays"] == 2000
    assert "uncertaintyVolume" not in module.DeepDoseLogic.cliParameters(*nodes[:3])


def test_cli_error_message_picks_the_deepdose_line(module):
    class FakeCLINode:  # only the two getters the message needs (not an MRML stand-in for a test of MRML)
        def GetErrorText(self):
            return "Traceback ...\nDeepDose error: The PET contains 3 NaN voxel(s)\n"

        def GetStatusString(self):
            return "Completed with errors"

    assert module.DeepDoseLogic.cliErrorMessage(FakeCLINode()) == "DeepDose error: The PET contains 3 NaN voxel(s)"


def test_self_test_logic_on_the_demo_case(module, monkeypatch, demo_files):
    import DeepDoseLib.demo

    # The self-test loads the demo case as the SampleData entry does; reuse the session's files.
    monkeypatch.setattr(DeepDoseLib.demo, "ensure_demo_case_files", lambda directory=None: demo_files)
    self_test = module.DeepDoseTest("test_DeepDose_logic_demo_case")
    self_test.setUp()
    self_test.test_DeepDose_logic_demo_case()
    widget_test = module.DeepDoseTest("test_DeepDose_widget_apply")
    with pytest.raises(unittest.SkipTest):
        widget_test.test_DeepDose_widget_apply()
