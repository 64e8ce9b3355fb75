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
from testing_modules import load_testing_module

# Test modules in other folders do ``from conftest import REPO_ROOT, sha256_of_tree``; when this folder
# is collected first (``pytest Testing/mrml Testing/cli``) "conftest" resolves to this file, so the
# shared helpers of Testing/conftest.py are available here too.
_ROOT_CONFTEST = load_testing_module("conftest.py", "deepdose_root_conftest")
for _name in ("REPO_ROOT", "SHARED_DATA", "sha256_of_tree", "run_deepdose", "filter_progress_fractions"):
    globals()[_name] = getattr(_ROOT_CONFTEST, _name)

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



#: Structures of the demo case given to the MRML outputs as segments (organs + a lesion inside the liver).
DVH_STRUCTURES = ("liver", "spleen", "kidney_left_cortex", "urinary_bladder", "lesion_01_liver")


def volume_snapshot(node) -> dict:
    """Everything a computation could accidentally change on an input volume node."""
    from DeepDoseLib.mrml import array_from_volume_node, volume_geometry

    display = node.GetDisplayNode()
    return {
        "array": array_from_volume_node(node).tobytes(),
        "geometry": volume_geometry(node),
        "name": node.GetName(),
        "attributes": {name: node.GetAttribute(name) for name in node.GetAttributeNames() or ()},
        "image_mtime": node.GetImageData().GetMTime(),
        "display": (display.GetWindow(), display.GetLevel(), display.GetColorNodeID()) if display else None,
    }


def segmentation_snapshot(node) -> dict:
    """Segment IDs, names, colours and voxel counts of a segmentation node."""
    import numpy as np
    import vtk
    from vtk.util import numpy_support

    segmentation = node.GetSegmentation()
    ids = vtk.vtkStringArray()
    segmentation.GetSegmentIDs(ids)
    snapshot = {"name": node.GetName(), "segments": []}
    for i in range(ids.GetNumberOfValues()):
        segment = segmentation.GetSegment(ids.GetValue(i))
        labelmap = segment.GetRepresentation(segmentation.GetSourceRepresentationName())
        scalars = labelmap.GetPointData().GetScalars()
        count = int(np.count_nonzero(numpy_support.vtk_to_numpy(scalars) == segment.GetLabelValue()))
        snapshot["segments"].append((ids.GetValue(i), segment.GetName(), tuple(segment.GetColor()), count))
    return snapshot


class DosimetryRun:
    """One run_dosimetry on the demo case (LED, with segments), shared by the MRML output tests."""


@pytest.fixture(scope="session")
def dosimetry_run(demo_case):
    """The demo case through :func:`DeepDoseLib.mrml.run_dosimetry` in its own headless scene.

    An offscreen Red slice view is created first, as in the application (the colour-legend
    displayable manager only follows legends added after it). Tests must leave the scene as found.
    """
    require_slicer()
    from DeepDoseLib.mrml import create_headless_scene, release_headless_scene, run_dosimetry
    from DeepDoseLib.mrml import segmentation_from_labels, volume_node_from_image
    from DeepDoseLib.mrml.rendering import OffscreenSliceView

    run = DosimetryRun()
    run.scene = create_headless_scene()
    run.view = OffscreenSliceView(run.scene, "Red", (640, 480))
    run.ct = volume_node_from_image(run.scene, demo_case.ct, "CT")
    run.pet = volume_node_from_image(run.scene, demo_case.pet, "PET")
    run.labels = {value: name for value, name in demo_case.label_names.items() if name in DVH_STRUCTURES}
    run.segmentation = segmentation_from_labels(run.scene, demo_case.labels, run.labels, "Organs")
    run.before = [volume_snapshot(run.ct), volume_snapshot(run.pet), segmentation_snapshot(run.segmentation)]
    run.result = run_dosimetry(run.scene, run.ct, run.pet, demo_case.nuclide, "led",
                               segmentation_node=run.segmentation)
    run.after = [volume_snapshot(run.ct), volume_snapshot(run.pet), segmentation_snapshot(run.segmentation)]
    yield run
    run.view.close()
    release_headless_scene(run.scene)


@pytest.fixture(scope="session")
def dicom_factory():
    """Testing/core/dicom_factory.py (synthetic PET DICOM series written with pydicom), as a module."""
    return load_testing_module("core/dicom_factory.py", "deepdose_dicom_factory")


@pytest.fixture(scope="session")
def small_case(demo_case):
    """The demo case cropped to 24 slices around the liver (fast LED runs)."""
    size = list(demo_case.pet.GetSize())
    z0 = max(0, size[2] // 2 - 12)
    crop = lambda image: image[:, :, z0:z0 + 24]  # noqa: E731
    return crop(demo_case.ct), crop(demo_case.pet), crop(demo_case.labels), demo_case.label_names
