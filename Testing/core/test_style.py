"""House rules that keep the layers apart (STYLE.md): checked on the source, not by convention."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE_FILES = [p for p in (ROOT / "DeepDoseLib").rglob("*.py") if "mrml" not in p.relative_to(ROOT).parts]
SLICER_FACING = sorted((ROOT / "DeepDoseLib").rglob("*.py")) + sorted((ROOT / "DeepDose").rglob("*.py")) + \
    sorted((ROOT / "DeepDoseCLI").rglob("*.py"))
FORBIDDEN = {"slicer", "vtk", "qt", "ctk", "vtkmodules", "PythonQt", "mrml"}


def imported_top_level_modules(path: Path) -> set:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_never_imports_slicer_vtk_or_qt(path):
    assert not imported_top_level_modules(path) & FORBIDDEN


@pytest.mark.parametrize("path", SLICER_FACING, ids=lambda p: str(p.relative_to(ROOT)))
def test_python39_syntax(path):
    """Slicer 5.8 ships Python 3.9: no match statements, no parenthesised context managers, etc."""
    source = path.read_text()
    ast.parse(source, feature_version=(3, 9))
    annotations = [n.annotation for n in ast.walk(ast.parse(source))
                   if isinstance(n, (ast.arg, ast.AnnAssign)) and n.annotation is not None]
    annotations += [n.returns for n in ast.walk(ast.parse(source))
                    if isinstance(n, ast.FunctionDef) and n.returns is not None]
    pep604 = any(isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.BitOr)
                 for a in annotations for sub in ast.walk(a))
    if pep604:  # `X | None` in annotations only works on 3.9 with postponed evaluation
        assert "from __future__ import annotations" in source, f"{path}: PEP 604 annotation without __future__"


def test_core_package_imports_without_slicer():
    import subprocess
    import sys

    code = ("import sys, DeepDoseLib, DeepDoseLib.cli, DeepDoseLib.demo, DeepDoseLib.dicom_pet;"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('slicer', 'vtk', 'qt', 'vtkmodules')];"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
