"""Fixtures for the MRML bridge tests: one suite for CI (slicer-core) and inside Slicer.

``scene`` is ``slicer.mrmlScene`` when the tests run inside the Slicer application (cleared after
each test) and a fresh headless scene (:func:`DeepDoseLib.mrml.create_headless_scene`) otherwise;
``demo_case`` comes from Testing/conftest.py. Tests that need MRML skip with a clear reason when
``slicer`` (the application or the PyPI ``slicer-core`` package) cannot be imported; the static
checks of the Slicer module still run.
"""
from __future__ import annotations

import importlib.util

import pytest

SLICER_MISSING_REASON = (
    "MRML tests need `slicer` (run inside Slicer, or `pip install slicer-core`, Python >= 3.10)"
)
try:
    HAVE_SLICER = importlib.util.find_spec("slicer") is not None
except (ImportError, ValueError):
    HAVE_SLICER = False


def pytest_report_header(config):
    if HAVE_SLICER:
        return "DeepDose MRML tests: slicer importable"
    return "DeepDose MRML tests: SKIPPED, " + SLICER_MISSING_REASON


def require_slicer():
    """Import and return ``slicer`` or skip the calling module/test with a clear reason."""
    return pytest.importorskip("slicer", reason=SLICER_MISSING_REASON)


@pytest.fixture
def scene():
    """An MRML scene with default colour tables and Red/Yellow/Green slice composite nodes."""
    slicer = require_slicer()
    from DeepDoseLib.mrml.scene import create_headless_scene, in_slicer_application, release_headless_scene

    if in_slicer_application():
        app_scene = slicer.mrmlScene
        app_scene.Clear(0)
        yield app_scene
        app_scene.Clear(0)
        return
    headless = create_headless_scene()
    yield headless
    release_headless_scene(headless)

