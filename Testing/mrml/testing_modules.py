"""Helper modules of the other Testing folders, loaded by path: this folder also runs alone (and inside Slicer),
where Testing/ and Testing/core are not on ``sys.path``."""
from __future__ import annotations

import importlib.util
from pathlib import Path

TESTING_DIR = Path(__file__).resolve().parents[1]


def load_testing_module(relative_path: str, name: str):
    """The module at ``Testing/<relative_path>``, imported under ``name``."""
    spec = importlib.util.spec_from_file_location(name, TESTING_DIR / relative_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
