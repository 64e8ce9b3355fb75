"""The therapy section of the module panel (DeepDose/TherapyPanel.py): parses as Python 3.9, builds its widgets and
calls the MRML logic, and computes nothing itself (checked on its source: Qt is not available in CI)."""
from __future__ import annotations

import ast
import os

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
PANEL = os.path.join(REPO_ROOT, "DeepDose", "TherapyPanel.py")


def _tree():
    with open(PANEL, encoding="utf-8") as stream:
        return ast.parse(stream.read(), filename=PANEL, feature_version=(3, 9))


def test_panel_parses_as_python39_with_future_annotations():
    tree = _tree()
    assert any(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in tree.body)


def test_panel_holds_no_dosimetry():
    # Only these DeepDoseLib names may be imported: the logic entry point, option dataclasses and choice lists.
    allowed = {"DeepDoseLib.mrml.therapy": {"run_therapy_in_scene", "time_point_hours_from_dicom"},
               "DeepDoseLib.therapy.study": {"TherapyOptions"},
               "DeepDoseLib.therapy.registration": {"RegistrationSettings"},
               "DeepDoseLib.therapy.kinetics": {"FIT_CHOICES"}, "DeepDoseLib.dose_methods": {"method_names"},
               "DeepDoseLib.nuclides": {"list_nuclides"}}
    imported = {}
    for node in ast.walk(_tree()):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("DeepDoseLib"):
            imported.setdefault(node.module, set()).update(alias.name for alias in node.names)
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert alias.name.split(".")[0] not in ("numpy", "SimpleITK", "torch", "DeepDoseLib"), alias.name
    for module, names in imported.items():
        assert module in allowed and names <= allowed[module], (module, names)
    assert "run_therapy_in_scene" in imported["DeepDoseLib.mrml.therapy"]


def test_panel_has_the_time_point_table_and_the_compute_button():
    source = open(PANEL, encoding="utf-8").read()
    for needle in ("qt.QTableWidget(0, 3)", "Compute absorbed dose", "Read times from DICOM", "tryWithErrorDisplay"):
        assert needle in source
