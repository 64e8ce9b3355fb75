"""DeepDose/DeepDose.py's logic and self-test on the real MRML scene of slicer-core.

The logic lives in DeepDose/DeepDoseModuleLogic.py (no Qt, no parameterNodeWrapper), loaded by
:mod:`slicer_module_loader` with the real MRML, slicer.util and scene. The widget and the out-of-process
run need the application: ``DeepDoseTest.test_DeepDose_widget_apply`` runs inside Slicer (ctest /
Reload and Test) and is skipped here; the parameter-node/.ui binding is checked by
test_parameter_node_conformance.py.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import types
import unittest

import numpy as np
import pytest
import SimpleITK as sitk

slicer = pytest.importorskip("slicer", reason="MRML tests need `slicer` (Slicer or pip slicer-core)")

from DeepDoseLib.mrml import (  # noqa: E402
    ISODOSE_LEVEL_ARRAY,
    image_from_volume_node,
    segmentation_from_labels,
    volume_node_from_image,
)
from vtk.util import numpy_support  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))


@pytest.fixture
def module(monkeypatch, scene):
    """DeepDoseModuleLogic (the logic of DeepDose.py) on the real MRML of slicer-core."""
    from slicer_module_loader import load_module_logic

    return load_module_logic(monkeypatch, scene)


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
    fallback = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "fallback")
    parameters = module.DeepDoseLogic.cliParameters(*nodes, nuclide="Lu177", method="mc", includePhotons=True,
                                                    decays=2000, seed=4, device="cpu", labelsNode=labels,
                                                    fallbackNode=fallback,
                                                    modelFile="/models/deepdose_Lu177.pt", targetUncertainty="2%",
                                                    maxDecays=10000)
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
        elif typ == "file":
            assert isinstance(value, str) and value.endswith(tuple(xml[name].fileExtensions)), name
    assert parameters["petUnit"] == "Bq/mL" and parameters["decays"] == 2000
    assert "uncertaintyVolume" not in module.DeepDoseLogic.cliParameters(*nodes[:3])
    assert "fallbackVolume" not in module.DeepDoseLogic.cliParameters(*nodes[:3])


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
    import DeepDoseSelfTest

    self_test = DeepDoseSelfTest.DeepDoseTest("test_DeepDose_logic_demo_case")
    self_test.setUp()
    self_test.test_DeepDose_logic_demo_case()
    widget_test = DeepDoseSelfTest.DeepDoseTest("test_DeepDose_widget_apply")
    with pytest.raises(unittest.SkipTest):
        widget_test.test_DeepDose_widget_apply()
    # Without PyTorch the self-test skips (reviewers of the Extensions Index run it without the extension).
    monkeypatch.setattr(DeepDoseSelfTest, "torchMissing", lambda: True)
    result = unittest.TextTestRunner(stream=open(os.devnull, "w")).run(
        DeepDoseSelfTest.DeepDoseTest("test_DeepDose_logic_demo_case"))
    assert result.wasSuccessful() and len(result.skipped) == 1 and "PyTorch" in result.skipped[0][1]


class CLIRunner:
    """``slicer.cli.run`` as Slicer's CLI logic does it, synchronously and without Qt: input volumes to
    NRRD files (real MRML storage nodes), DeepDoseCLI.py in a separate Python process, output files
    read back into the output nodes, status and error text on a real vtkMRMLCommandLineModuleNode."""

    def __init__(self, scene, folder):
        import ctk_cli

        self.scene, self.folder, self.calls = scene, folder, []
        xml = os.path.join(REPO_ROOT, "DeepDoseCLI", "DeepDoseCLI.xml")
        self.description = {p.name: p for p in ctk_cli.CLIModule(xml).parameters()}

    def _storage(self, node, path):
        storage = self.scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
        storage.SetFileName(str(path))
        return storage

    def run(self, module, node, parameters, wait_for_completion=False):
        import subprocess

        self.calls.append(dict(parameters))
        positional, flags, outputs = {}, [], []
        for name, value in parameters.items():
            p = self.description[name]
            if p.typ == "image":
                path = self.folder / ("%s_%d.nrrd" % (name, len(self.calls)))
                if p.channel == "input":
                    assert self._storage(value, path).WriteData(value)
                else:
                    outputs.append((value, path))
                value = str(path)
            elif p.typ == "boolean":
                if value:
                    flags.append(p.longflag)
                continue
            if p.index is not None:
                positional[p.index] = str(value)
            else:
                flags += [p.longflag, str(value)]
        argv = [sys.executable, os.path.join(REPO_ROOT, "DeepDoseCLI", "DeepDoseCLI.py")] + flags + \
            [positional[i] for i in sorted(positional)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        cli_node = slicer.vtkMRMLCommandLineModuleNode()
        self.scene.AddNode(cli_node)
        cli_node.SetOutputText(proc.stdout)
        cli_node.SetErrorText(proc.stderr)
        if proc.returncode == 0:
            for output_node, path in outputs:
                if os.path.isfile(path):
                    assert self._storage(output_node, path).ReadData(output_node)
            cli_node.SetStatus(cli_node.Completed)
        else:
            cli_node.SetStatus(cli_node.CompletedWithErrors)
        return cli_node


@pytest.mark.slow
def test_gui_path_through_the_cli_process(module, scene, demo_case, monkeypatch, tmp_path):
    """startCLI -> DeepDoseCLI.py in its own process -> finishCLI builds the outputs; errors are reported."""
    pytest.importorskip("ctk_cli")
    runner = CLIRunner(scene, tmp_path)
    monkeypatch.setattr(slicer, "cli", types.SimpleNamespace(run=runner.run), raising=False)
    monkeypatch.setattr(slicer, "modules", types.SimpleNamespace(deepdosecli=types.SimpleNamespace(path="")),
                        raising=False)
    ct_node = volume_node_from_image(scene, demo_case.ct, "CT")
    pet_node = volume_node_from_image(scene, demo_case.pet, "PET")
    names = {v: n for v, n in demo_case.label_names.items() if n in ("liver", "spleen", "kidney_left_cortex")}
    segmentation = segmentation_from_labels(scene, demo_case.labels, names, "Organs")
    logic = module.DeepDoseLogic()
    assert "led" in logic.cliMethods() and "mird" in logic.cliMethods()

    run = logic.startCLI(ct_node, pet_node, nuclide="Ga68", method="mird", segmentationNode=segmentation,
                         decays=1000, device="cpu")
    assert run.cliNode.GetStatus() == run.cliNode.Completed, run.cliNode.GetErrorText()
    sent = runner.calls[-1]
    assert sent["labelsVolume"].IsA("vtkMRMLLabelMapVolumeNode") and sent["petUnit"] == "Bq/mL"
    run.isodoseLevelsPercent = [30.0, 60.0]
    result = logic.finishCLI(run)
    assert run.labelsNode is None and sent["labelsVolume"].GetScene() is None  # temporary organ map removed
    assert result.dose_node is run.doseNode and result.dose_node.GetAttribute("DeepDose.Method") == "mird"
    dose = image_from_volume_node(result.dose_node)
    assert dose.GetSize() == demo_case.pet.GetSize()
    np.testing.assert_allclose(dose.GetOrigin(), demo_case.pet.GetOrigin(), atol=1e-6)
    labels = sitk.GetArrayFromImage(demo_case.labels)
    dose_zyx = sitk.GetArrayFromImage(dose)
    for value in names:  # organ-level: one dose rate per organ, from the segments sent as labels
        organ = dose_zyx[labels == value]
        assert organ.max() > 0 and organ.min() == pytest.approx(organ.max(), rel=1e-6)
    assert len(result.dvh_table_nodes) == 3 and result.stats_table_node.GetNumberOfRows() == 3
    assert sorted(np.unique(numpy_support.vtk_to_numpy(
        result.isodose_model_node.GetPolyData().GetPointData().GetArray(ISODOSE_LEVEL_ARRAY))).tolist()) == [0, 1]

    # A PET the CLI refuses: the error line reaches the user and the empty output node is removed.
    bad = sitk.Image(demo_case.pet)
    bad[10, 10, 10] = float("nan")
    bad_node = volume_node_from_image(scene, bad, "bad PET")
    failed = logic.startCLI(ct_node, bad_node, nuclide="Ga68", method="led")
    assert failed.cliNode.GetStatus() == failed.cliNode.CompletedWithErrors
    message = logic.cliErrorMessage(failed.cliNode)
    assert message.startswith("DeepDose error:") and "NaN" in message
    logic.discardCLI(failed)
    assert failed.doseNode.GetScene() is None


def test_pytorch_is_installed_only_through_the_pytorch_extension(module, monkeypatch):
    """Without the PyTorch extension nothing is pip-installed: the user is told to install the extension;
    with it, its installer gets DeepDose's minimum torch version."""
    monkeypatch.delitem(sys.modules, "PyTorchUtils", raising=False)
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))

    class NoPyTorchUtils:  # makes `import PyTorchUtils` fail as in a Slicer without the extension
        def find_spec(self, name, path=None, target=None):
            if name == "PyTorchUtils":
                raise ImportError("No module named 'PyTorchUtils'")
            return None

    sys.meta_path.insert(0, NoPyTorchUtils())
    with pytest.raises(ImportError, match="PyTorch extension"):
        module.DeepDoseLogic.installPyTorch()
    sys.meta_path.pop(0)

    calls = []

    class PyTorchUtilsLogic:  # the SlicerPyTorch extension's API (PyTorchUtils.PyTorchUtilsLogic.installTorch)
        def installTorch(self, askConfirmation=False, forceComputationBackend=None, torchVersionRequirement=None):
            calls.append((askConfirmation, forceComputationBackend, torchVersionRequirement))
            return object()

    monkeypatch.setitem(sys.modules, "PyTorchUtils", types.SimpleNamespace(PyTorchUtilsLogic=PyTorchUtilsLogic))
    assert module.DeepDoseLogic.installPyTorch() is True
    assert calls == [(False, None, ">=2.0")] and module.TORCH_VERSION_REQUIREMENT == ">=2.0"


def test_apply_rule_and_method_options(module, scene):
    """Apply is enabled exactly when a run can start; options follow the chosen method."""
    ct = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "CT")
    pet = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "PET")
    organs = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Organs")
    state = module.DeepDoseLogic.applyState
    assert state(ct, pet, "deepdose", torchAvailable=True)[0] is True
    assert state(None, pet, "deepdose", torchAvailable=True) == (False, "Select a CT volume (HU) and a PET/SPECT volume")
    assert state(ct, None, "led", torchAvailable=True)[0] is False
    assert state(ct, pet, "led", running=True, torchAvailable=True)[0] is False
    assert state(ct, pet, "mird", torchAvailable=True)[0] is False
    assert state(ct, pet, "mird", segmentationNode=organs, torchAvailable=True)[0] is True
    enabled, reason = state(ct, pet, "led", torchAvailable=False)
    assert not enabled and "PyTorch extension" in reason
    assert state(ct, pet, "led", libraryError="broken", torchAvailable=True) == (False, "broken")

    options = module.DeepDoseLogic.enabledOptions
    assert options("mc") == {"includePhotons": False, "decays": True, "seed": True, "vsvDensityCorrection": False,
                             "modelFile": False}
    assert [name for name, on in options("deepdose").items() if on] == ["modelFile"]
    assert [name for name, on in options("led").items() if on] == ["includePhotons"]
    assert not any(options("vsv_scaled").values())
    assert module.DEVICE_TO_TORCH == {"automatic": "auto", "CPU": "cpu", "GPU": "cuda"}


def test_panel_opens_without_importing_torch(tmp_path):
    """The panel's logic module, its choice lists and the model card need no torch (checked in a fresh process)."""
    import subprocess

    script = (
        "import sys, types, unittest\n"
        "import slicer\n"
        "base = types.ModuleType('slicer.ScriptedLoadableModule')\n"
        "base.ScriptedLoadableModuleLogic = object\n"
        "base.ScriptedLoadableModuleTest = unittest.TestCase\n"
        "sys.modules['slicer.ScriptedLoadableModule'] = base\n"
        "sys.path.insert(0, %r)\n"
        "import DeepDoseModuleLogic as m\n"
        "summary = m.DeepDoseLogic.modelCardSummary(m.__dict__['modelPathOrNone']('.') or '', 'Ga68')\n"
        "assert 'Measured accuracy' in summary.text(), summary.text()\n"
        "assert m.NUCLIDE_CHOICES and m.applyState(None, None, 'deepdose', torchAvailable=True)[0] is False\n"
        "scene = slicer.vtkMRMLScene()\n"
        "pet = scene.AddNewNodeByClass('vtkMRMLScalarVolumeNode', 'PET')\n"
        "assert not m.DeepDoseLogic.describePetUnits(pet).fromDicom and m.enabledOptions('mc')['decays']\n"
        "pet.SetAttribute('DICOM.instanceUIDs', '1.2.3')\n"
        "assert m.DeepDoseLogic.describePetUnits(pet).fromDicom\n"
        "print('torch' in sys.modules)\n" % os.path.join(REPO_ROOT, "DeepDose"))
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_logic_prepares_the_pet_and_exports_rt_dose(module, scene, small_case, tmp_path):
    """The GUI path: declared unit -> Bq/mL copy for the run, reference to the user's PET, RT Dose export."""
    import pydicom

    ct_image, pet_image, _labels, _names = small_case
    ct = volume_node_from_image(scene, ct_image, "CT")
    pet = volume_node_from_image(scene, pet_image / 1000.0, "PET")
    logic = module.DeepDoseLogic()
    assert not logic.describePetUnits(pet).fromDicom
    prepared = logic.preparePet(pet, ct, petUnit="kBq/mL", fileForInstance={}.get)
    assert prepared.warnings == [] and prepared.temporary
    result = logic.run(ct, prepared.node, nuclide="Ga68", method="led", device="CPU")
    logic.finishPreparedPet(result, prepared)
    assert result.dose_node.GetNodeReference("DeepDosePET") is pet and prepared.node.GetScene() is None
    assert "Reference time" in logic.resultMessage(result, prepared)
    ds = pydicom.dcmread(logic.exportRTDose(result.dose_node, tmp_path / "dose.dcm", fileForInstance={}.get))
    assert ds.DoseUnits == "RELATIVE" and "DOSE RATE mGy/h" in ds.DoseComment


def test_parameter_node_of_an_older_scene_is_migrated(module, scene):
    """Saved values the wrapper would refuse (old device names, vanished choices, out-of-range ints) are fixed
    on a real vtkMRMLScriptedModuleNode before wrapping, so connectGui cannot raise on them."""
    node = scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode")
    for name, value in (("device", "cuda"), ("method", "vsv_dc"), ("nuclide", "Ga68"), ("decays", "-5"),
                        ("seed", "abc"), ("petUnit", "kBq/mL")):
        node.SetParameter(name, value)
    assert sorted(module.migrateParameterNode(node)) == ["decays", "device", "method", "seed"]
    assert node.GetParameter("device") == "GPU" and not node.HasParameter("method")
    assert node.GetParameter("nuclide") == "Ga68" and node.GetParameter("petUnit") == "kBq/mL"
    assert not node.HasParameter("decays") and not node.HasParameter("seed")
    assert module.migrateParameterNode(node) == []
    assert set(module.CHOICE_PARAMETERS["method"]) == set(module.METHOD_CHOICES)
