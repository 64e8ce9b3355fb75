"""Checks of the Slicer module that need neither Slicer nor slicer-core (plain CI)."""
from __future__ import annotations

import ast
import os
import re
import struct
import xml.etree.ElementTree as ET

import pytest

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
MODULE_DIR = os.path.join(REPO_ROOT, "DeepDose")
MODULE_PY = os.path.join(MODULE_DIR, "DeepDose.py")
MODULE_UI = os.path.join(MODULE_DIR, "Resources", "UI", "DeepDose.ui")
MODULE_ICON = os.path.join(MODULE_DIR, "Resources", "Icons", "DeepDose.png")
MRML_DIR = os.path.join(REPO_ROOT, "DeepDoseLib", "mrml")

PY39_FILES = [MODULE_PY, os.path.join(MODULE_DIR, "DeepDoseCLIRunner.py"), os.path.join(MODULE_DIR, "DeepDoseModuleLogic.py"), os.path.join(MODULE_DIR, "DeepDoseSelfTest.py"),
              os.path.join(REPO_ROOT, "DeepDoseCLI", "DeepDoseCLI.py"),
              os.path.join(REPO_ROOT, "DeepDoseCLI", "examples", "batch_folder.py")] + sorted(
    os.path.join(MRML_DIR, name) for name in os.listdir(MRML_DIR) if name.endswith(".py")
)


def _read(path):
    with open(path, encoding="utf-8") as stream:
        return stream.read()


@pytest.mark.parametrize("path", PY39_FILES, ids=lambda p: os.path.relpath(p, REPO_ROOT))
def test_python39_syntax(path):
    """Slicer 5.8 ships Python 3.9: the module, the CLI, the batch example and the MRML bridge parse as 3.9."""
    tree = ast.parse(_read(path), filename=path, feature_version=(3, 9))
    has_future_annotations = any(
        isinstance(node, ast.ImportFrom)
        and node.module == "__future__"
        and any(alias.name == "annotations" for alias in node.names)
        for node in tree.body
    )
    assert has_future_annotations, "add `from __future__ import annotations` (PEP 604 hints on 3.9)"


def _parameter_node_fields():
    tree = ast.parse(_read(MODULE_PY), feature_version=(3, 9))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "DeepDoseParameterNode":
            decorators = [getattr(d, "id", getattr(d, "attr", None)) for d in node.decorator_list]
            assert "parameterNodeWrapper" in decorators
            return {
                item.target.id
                for item in node.body
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
            }
    raise AssertionError("DeepDoseParameterNode not found in DeepDose.py")


def _ui_widgets():
    root = ET.parse(MODULE_UI).getroot()
    return {widget.get("name"): widget for widget in root.iter("widget")}


def _ui_parameter_names():
    names = {}
    for name, widget in _ui_widgets().items():
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                names[prop.findtext("string")] = name
    return names


def test_module_classes_exist():
    tree = ast.parse(_read(MODULE_PY), feature_version=(3, 9))
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    for name in ("DeepDose", "DeepDoseParameterNode", "DeepDoseWidget"):
        assert name in classes, name
    # The self-test lives in DeepDoseSelfTest.py and is imported into the module's namespace, where
    # ScriptedLoadableModule.runTest and slicer_add_python_unittest look for <ModuleName>Test.
    imported = {(node.module, alias.name) for node in tree.body if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    assert ("DeepDoseSelfTest", "DeepDoseTest") in imported
    # The logic (no Qt, no parameterNodeWrapper: testable on slicer-core) is imported into the module's namespace.
    assert ("DeepDoseModuleLogic", "DeepDoseLogic") in imported
    logic_tree = ast.parse(_read(os.path.join(MODULE_DIR, "DeepDoseModuleLogic.py")), feature_version=(3, 9))
    classes["DeepDoseLogic"] = [n for n in logic_tree.body if isinstance(n, ast.ClassDef) and n.name == "DeepDoseLogic"][0]
    test_tree = ast.parse(_read(os.path.join(MODULE_DIR, "DeepDoseSelfTest.py")), feature_version=(3, 9))
    test_class = [n for n in test_tree.body if isinstance(n, ast.ClassDef) and n.name == "DeepDoseTest"][0]
    test_methods = {n.name for n in test_class.body if isinstance(n, ast.FunctionDef)}
    assert {"runTest", "test_DeepDose_logic_demo_case", "test_DeepDose_widget_apply"} <= test_methods
    logic_methods = {n.name: n for n in classes["DeepDoseLogic"].body if isinstance(n, ast.FunctionDef)}
    run_args = [a.arg for a in logic_methods["run"].args.args]
    # The documented console call: DeepDoseLogic().run(ctNode, petNode, nuclide=..., method=..., segmentationNode=...)
    assert run_args[:6] == ["self", "ctNode", "petNode", "nuclide", "method", "segmentationNode"]
    attributes = set(logic_methods) | {target.id for n in classes["DeepDoseLogic"].body if isinstance(n, ast.Assign)
                                       for target in n.targets if isinstance(target, ast.Name)}
    for name in ("startCLI", "finishCLI", "cliParameters", "ensurePyTorch", "installPyTorch", "updateIsodoseLevels"):
        assert name in attributes, name


def test_parameter_node_fields():
    assert _parameter_node_fields() >= {
        "ctVolume", "petVolume", "segmentation", "nuclide", "method", "device", "includePhotons", "clipNegative",
        "decays", "seed", "vsvDensityCorrection", "isodoseLevels", "outputVolume",
    }


def test_ui_is_well_formed_and_bound_to_parameter_node():
    root = ET.parse(MODULE_UI).getroot()
    assert root.tag == "ui"
    assert root.find("widget").get("class") == "qMRMLWidget"
    parameter_names = _ui_parameter_names()
    fields = _parameter_node_fields()
    unknown = set(parameter_names) - fields
    assert not unknown, "SlicerParameterName without a parameter-node field: %s" % sorted(unknown)
    assert {"ctVolume", "petVolume", "segmentation", "includePhotons", "clipNegative", "decays", "seed",
            "vsvDensityCorrection", "isodoseLevels", "outputVolume"} <= set(parameter_names)


def test_ui_node_selectors_get_the_scene():
    """Every qMRMLNodeComboBox receives the scene through mrmlSceneChanged (wizard pattern)."""
    root = ET.parse(MODULE_UI).getroot()
    combos = {w.get("name") for w in root.iter("widget") if w.get("class") == "qMRMLNodeComboBox"}
    connected = {
        c.findtext("receiver")
        for c in root.iter("connection")
        if c.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)"
        and c.findtext("slot") == "setMRMLScene(vtkMRMLScene*)"
    }
    assert combos and combos <= connected
    widgets = _ui_widgets()
    segmentation = {p.get("name"): p for p in widgets["segmentationSelector"].findall("property")}
    assert segmentation["noneEnabled"].findtext("bool") == "true"  # the segmentation is optional
    assert segmentation["nodeTypes"].find("stringlist").findtext("string") == "vtkMRMLSegmentationNode"


def test_ui_has_run_controls():
    """Apply and Cancel (out-of-process run), the PyTorch installer, isodose editing."""
    widgets = _ui_widgets()
    for name in ("applyButton", "cancelButton", "installPyTorchButton", "updateIsodoseButton",
                 "isodoseLevelsLineEdit", "decaysSpinBox", "seedSpinBox", "deviceComboBox", "progressPlaceholder"):
        assert name in widgets, name
    decays = {p.get("name"): p for p in widgets["decaysSpinBox"].findall("property")}
    assert int(decays["maximum"].findtext("number")) == 2000000000


def test_every_ui_widget_used_in_module_exists():
    used = set(re.findall(r"self\.ui\.(\w+)", _read(MODULE_PY)))
    assert used, "the widget should use self.ui.<name>"
    missing = used - set(_ui_widgets())
    assert not missing, "self.ui names missing from DeepDose.ui: %s" % sorted(missing)


def test_ui_states_units():
    text = " ".join(s.text or "" for s in ET.parse(MODULE_UI).getroot().iter("string"))
    assert "Bq/mL" in text and "mGy/h" in text


def test_icon_is_128_png():
    with open(MODULE_ICON, "rb") as stream:
        header = stream.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    assert (width, height) == (128, 128)


def test_cmake_lists_name_resources():
    cmake = _read(os.path.join(MODULE_DIR, "CMakeLists.txt"))
    assert "set(MODULE_NAME DeepDose)" in cmake
    for script in sorted(f for f in os.listdir(MODULE_DIR) if f.endswith(".py")):
        assert script.replace("DeepDose", "${MODULE_NAME}", 1) in cmake, script  # every script is installed
    assert "Resources/UI/${MODULE_NAME}.ui" in cmake and "Resources/Icons/${MODULE_NAME}.png" in cmake
    assert "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in cmake
    lib_cmake = _read(os.path.join(REPO_ROOT, "DeepDoseLib", "CMakeLists.txt"))
    assert "WITH_SUBDIR" in lib_cmake and "GLOB_RECURSE" in lib_cmake


def test_extension_cmake_lists_every_module_and_its_description():
    cmake = _read(os.path.join(REPO_ROOT, "CMakeLists.txt"))
    module_dirs = sorted(d for d in os.listdir(REPO_ROOT) if os.path.isfile(os.path.join(REPO_ROOT, d, "CMakeLists.txt")))
    assert module_dirs == ["DeepDose", "DeepDoseCLI", "DeepDoseLib"]
    for name in module_dirs:
        assert "add_subdirectory(%s)" % name in cmake, name
    settings = dict(re.findall(r'set\((EXTENSION_\w+) "([^"]*)"\)', cmake))
    assert settings["EXTENSION_CATEGORY"] == "Nuclear Medicine"
    assert "PyTorch" in settings["EXTENSION_DEPENDS"].split()
    assert settings["EXTENSION_HOMEPAGE"].startswith("https://")
    for key, folder in (("EXTENSION_ICONURL", "DeepDose/Resources/Icons/"),
                        ("EXTENSION_SCREENSHOTURLS", "DeepDose/Resources/Screenshots/")):
        for url in settings[key].split():
            relative = url.split("/main/", 1)[1]  # the URL points at a file committed in this repository
            assert relative.startswith(folder) and os.path.isfile(os.path.join(REPO_ROOT, relative)), url
    assert "research use only" in settings["EXTENSION_DESCRIPTION"].lower()
    cli_cmake = _read(os.path.join(REPO_ROOT, "DeepDoseCLI", "CMakeLists.txt"))
    assert "SlicerMacroBuildScriptedCLI" in cli_cmake and "DeepDoseCLI" in cli_cmake


def test_extensions_index_files():
    """LICENSE (Apache-2.0, as pyproject.toml), the catalog entry JSON, research-use statements, CLI sub-category."""
    import json

    license_text = _read(os.path.join(REPO_ROOT, "LICENSE"))
    assert "Apache License" in license_text and "Version 2.0" in license_text
    assert 'license = { text = "Apache-2.0" }' in _read(os.path.join(REPO_ROOT, "pyproject.toml"))
    entry = json.loads(_read(os.path.join(REPO_ROOT, "DeepDose.json")))
    assert entry["$schema"].endswith("slicer-extension-catalog-entry-schema-v1.0.1.json#")
    assert set(entry) == {"$schema", "build_dependencies", "build_subdirectory", "category", "scm_revision", "scm_url",
                          "tier"}
    assert entry["category"] == "Nuclear Medicine" and entry["build_dependencies"] == ["PyTorch"]
    cmake = _read(os.path.join(REPO_ROOT, "CMakeLists.txt"))
    homepage = dict(re.findall(r'set\((EXTENSION_\w+) "([^"]*)"\)', cmake))["EXTENSION_HOMEPAGE"]
    assert entry["scm_url"].rstrip(".git").rstrip("/") == homepage.split("#")[0].rstrip("/")
    xml = ET.parse(os.path.join(REPO_ROOT, "DeepDoseCLI", "DeepDoseCLI.xml")).getroot()
    assert xml.findtext("category") == "Nuclear Medicine.Advanced"  # clinicians see one entry: DeepDose
    assert xml.findtext("license") == "Apache-2.0" and xml.findtext("contributor")
    assert "research use only" in xml.findtext("description").lower()
    module = _read(MODULE_PY)
    assert "RESEARCH_USE_STATEMENT" in module and "Research use only" in module and "CONTRIBUTORS" in module
    assert "For research use only" in _read(MODULE_UI)


def test_panel_defaults_are_the_registry_defaults():
    """The parameter node's method options start at the values their methods declare (no drift between the
    panel, the command line and the Slicer CLI)."""
    from DeepDoseLib.dose_methods import registered_methods

    tree = ast.parse(_read(os.path.join(MODULE_DIR, "DeepDose.py")))
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "DeepDoseParameterNode")
    defaults = {item.target.id: item.value for item in node.body
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and item.value is not None}
    checked = 0
    for method in registered_methods():
        for spec in method.specs():
            if spec.slicer_name in defaults and not spec.is_path:
                assert ast.literal_eval(defaults[spec.slicer_name]) == spec.default, spec.slicer_name
                checked += 1
    assert checked >= 4  # includePhotons, decays, seed, vsvDensityCorrection
