"""Load DeepDose/DeepDoseModuleLogic.py (the module's logic and panel rules) on slicer-core.

slicer-core has real MRML but no Qt, so ``slicer.ScriptedLoadableModule`` (a Qt-based module base
class) is absent. Only that base class is provided here, as the plain Python object it is for a logic
(``ScriptedLoadableModuleLogic`` holds no state the DeepDose logic uses); ``slicer.util``,
``parameterNodeWrapper`` and every MRML class are the real ones. DeepDose.py itself (the widget and
the parameter node) needs the application and is checked by the conformance test instead.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import types
import unittest

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
MODULE_DIR = os.path.join(REPO_ROOT, "DeepDose")


def load_module_logic(monkeypatch, scene):
    """Import DeepDoseModuleLogic.py (and DeepDoseSelfTest.py) with ``slicer.mrmlScene`` = ``scene``."""
    import slicer

    if "slicer.ScriptedLoadableModule" not in sys.modules and not hasattr(slicer, "app"):
        base = types.ModuleType("slicer.ScriptedLoadableModule")

        class ScriptedLoadableModuleLogic:
            def __init__(self, parent=None):
                self.moduleName = type(self).__name__[:-len("Logic")]

        class ScriptedLoadableModuleTest(unittest.TestCase):
            def delayDisplay(self, message, msec=0):
                pass

        base.ScriptedLoadableModuleLogic = ScriptedLoadableModuleLogic
        base.ScriptedLoadableModuleTest = ScriptedLoadableModuleTest
        monkeypatch.setitem(sys.modules, "slicer.ScriptedLoadableModule", base)
    monkeypatch.setattr(slicer, "mrmlScene", scene, raising=False)
    monkeypatch.syspath_prepend(MODULE_DIR)  # Slicer puts each module's folder on sys.path
    for name in ("DeepDoseModuleLogic", "DeepDoseCLIRunner", "DeepDoseSelfTest"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    spec = importlib.util.spec_from_file_location("DeepDoseModuleLogic", os.path.join(MODULE_DIR, "DeepDoseModuleLogic.py"))
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "DeepDoseModuleLogic", module)
    spec.loader.exec_module(module)
    return module
