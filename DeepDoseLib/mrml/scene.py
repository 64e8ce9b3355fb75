"""A usable MRML scene with or without the Slicer application.

Inside Slicer, :func:`get_scene` returns ``slicer.mrmlScene``. Elsewhere (pytest, scripts with the
PyPI ``slicer-core`` package) :func:`create_headless_scene` builds what the application would set
up, following ``qSlicerCoreApplication`` and trame-slicer's ``slicer_app.py``:

1. ``vtkMRMLScene`` with the default crosshair node;
2. ``vtkSlicerApplicationLogic`` attached to the scene (it creates the selection and interaction
   singletons), its ``vtkSlicerColorLogic`` adding the default colour tables (Grey, Rainbow,
   PET-Heat, ...), empty slice/view logic collections;
3. a ``vtkMRMLColorLogic``, a ``vtkSlicerVolumesLogic`` and a ``vtkSlicerSegmentationsModuleLogic``
   registered as module logics "Colors", "Volumes" and "Segmentations", and the node classes that
   Slicer's Colors module registers (``vtkMRMLColorLegendDisplayNode``);
4. the default slice orientation presets (Axial, Sagittal, Coronal);
5. one ``vtkMRMLSliceLogic`` per standard slice view (Red = axial, Yellow = sagittal,
   Green = coronal), which creates the ``vtkMRMLSliceNode`` and ``vtkMRMLSliceCompositeNode`` of
   that view, as the layout manager does in the application.

The logics are kept alive by the Python wrapper of the scene (attribute ``_deepdose_logics``);
call :func:`release_headless_scene` when done to break the scene <-> logic reference cycle.
"""
from __future__ import annotations

import os
import tempfile
from typing import Optional

import vtk

#: Standard slice views of the conventional layout: (layout name, orientation, label).
SLICE_VIEWS = (
    ("Red", "Axial", "R"),
    ("Yellow", "Sagittal", "Y"),
    ("Green", "Coronal", "G"),
)


def _slicer():
    import slicer  # the Slicer application or the PyPI slicer-core package

    return slicer


def in_slicer_application() -> bool:
    """True when running inside the Slicer application (``slicer.mrmlScene`` exists)."""
    try:
        slicer = _slicer()
    except ImportError:
        return False
    return getattr(slicer, "mrmlScene", None) is not None


def create_headless_scene(slice_views=SLICE_VIEWS):
    """Build a new ``vtkMRMLScene`` set up like the Slicer application's scene (no Qt, no views).

    Parameters
    ----------
    slice_views : sequence of (layout name, orientation, label)
        Slice views for which slice and slice composite nodes are created.

    Returns
    -------
    vtkMRMLScene
        Scene with default colour nodes, selection/interaction/crosshair singletons, slice
        orientation presets and one slice node + slice composite node per slice view.
    """
    slicer = _slicer()
    scene = slicer.vtkMRMLScene()

    crosshair = slicer.vtkMRMLCrosshairNode()
    crosshair.SetCrosshairName("default")
    scene.AddNode(crosshair)

    app_logic = slicer.vtkSlicerApplicationLogic()
    app_logic.SetMRMLScene(scene)
    app_logic.GetColorLogic().SetMRMLScene(scene)
    app_logic.GetColorLogic().AddDefaultColorNodes()
    app_logic.SetSliceLogics(vtk.vtkCollection())
    app_logic.SetViewLogics(vtk.vtkCollection())

    color_logic = slicer.vtkMRMLColorLogic()
    color_logic.SetMRMLApplicationLogic(app_logic)
    color_logic.SetMRMLScene(scene)
    app_logic.SetModuleLogic("Colors", color_logic)

    volumes_logic = slicer.vtkSlicerVolumesLogic()
    volumes_logic.SetMRMLScene(scene)
    volumes_logic.SetMRMLApplicationLogic(app_logic)
    app_logic.SetModuleLogic("Volumes", volumes_logic)

    segmentations_logic = slicer.vtkSlicerSegmentationsModuleLogic()
    segmentations_logic.SetMRMLScene(scene)
    segmentations_logic.SetMRMLApplicationLogic(app_logic)
    app_logic.SetModuleLogic("Segmentations", segmentations_logic)

    # In the application the Colors module registers the colour-legend display node (used by
    # vtkSlicerColorLogic.AddDefaultColorLegendDisplayNode); the MRML library alone does not.
    legend_class = getattr(slicer, "vtkMRMLColorLegendDisplayNode", None)
    if legend_class is not None and not scene.IsNodeClassRegistered("vtkMRMLColorLegendDisplayNode"):
        scene.RegisterNodeClass(legend_class())

    patient_right_is_screen_left = True
    slicer.vtkMRMLSliceNode.AddDefaultSliceOrientationPresets(scene, patient_right_is_screen_left)

    slice_logics = []
    for layout_name, orientation, label in slice_views:
        slice_logic = slicer.vtkMRMLSliceLogic()
        slice_logic.SetMRMLApplicationLogic(app_logic)
        slice_logic.SetMRMLScene(scene)
        slice_node = slice_logic.AddSliceNode(layout_name)
        slice_node.SetDefaultOrientation(orientation)
        slice_node.SetOrientation(orientation)
        slice_node.SetLayoutLabel(label)
        color_getter = getattr(slicer.vtkMRMLSliceNode, "Get%sColor" % layout_name, None)
        if color_getter is not None:
            slice_node.SetLayoutColor(color_getter())
        app_logic.GetSliceLogics().AddItem(slice_logic)
        slice_logics.append(slice_logic)

    # Keep the logics alive as long as the scene's Python wrapper (VTK keeps custom attributes of
    # wrapped objects while the C++ object lives).
    scene._deepdose_logics = {
        "application": app_logic,
        "colors": color_logic,
        "volumes": volumes_logic,
        "segmentations": segmentations_logic,
        "slices": slice_logics,
    }
    return scene


def release_headless_scene(scene) -> None:
    """Clear a scene made by :func:`create_headless_scene` and drop its logics (idempotent)."""
    logics = getattr(scene, "_deepdose_logics", None)
    scene.Clear(1)
    if not logics:
        return
    app_logic = logics["application"]
    if logics.get("remote_io") is not None:
        logics["data_io"].SetAndObserveDataIOManager(None)
        logics["data_io"].SetMRMLScene(None)
        logics["remote_io"].RemoveDataIOFromScene()
        logics["remote_io"].SetMRMLScene(None)
    if logics.get("cache_directory") is not None:
        logics["cache_directory"].cleanup()
    for logic in logics["slices"]:
        logic.SetMRMLScene(None)
    app_logic.GetSliceLogics().RemoveAllItems()
    logics["volumes"].SetMRMLScene(None)
    logics["colors"].SetMRMLScene(None)
    app_logic.GetColorLogic().SetMRMLScene(None)
    app_logic.SetMRMLScene(None)
    # The segmentations logic is not detached with SetMRMLScene(None), which warns about a missing
    # subject hierarchy; dropping the last reference removes its scene observers silently.
    scene._deepdose_logics = None


def get_scene():
    """Return ``slicer.mrmlScene`` inside the Slicer application, else a new headless scene."""
    if in_slicer_application():
        return _slicer().mrmlScene
    return create_headless_scene()


def slice_composite_nodes(scene) -> list:
    """All ``vtkMRMLSliceCompositeNode`` of ``scene`` (one per slice view)."""
    class_name = "vtkMRMLSliceCompositeNode"
    count = scene.GetNumberOfNodesByClass(class_name)
    return [scene.GetNthNodeByClass(i, class_name) for i in range(count)]


def application_logic(scene):
    """The ``vtkSlicerApplicationLogic`` serving ``scene`` (the application's inside Slicer), or None."""
    logics = getattr(scene, "_deepdose_logics", None)
    if logics:
        return logics["application"]
    if in_slicer_application() and scene is _slicer().mrmlScene:
        return _slicer().app.applicationLogic()
    return None


def slice_logic(scene, layout_name: str = "Red"):
    """The ``vtkMRMLSliceLogic`` of the slice view ``layout_name`` of ``scene`` (None if there is none)."""
    app_logic = application_logic(scene)
    if app_logic is None:
        return None
    return app_logic.GetSliceLogicByLayoutName(layout_name)


def enable_scene_bundle_io(scene, cache_directory: Optional[str] = None) -> None:
    """Give a headless scene what reading a ``.mrb`` bundle needs (the application has it already).

    ``vtkMRMLScene.ReadFromMRB`` unpacks the bundle into the remote-cache directory of the scene's
    data-IO manager; without the remote-IO and data-IO-manager logics there is none. The logics
    are kept with the scene (see :func:`create_headless_scene`); ``cache_directory`` defaults to a
    new temporary folder removed with the scene's logics.
    """
    logics = getattr(scene, "_deepdose_logics", None)
    if logics is None or logics.get("remote_io") is not None:
        return
    slicer = _slicer()
    if cache_directory is None:
        temporary = tempfile.TemporaryDirectory(prefix="deepdose_mrml_cache_")
        logics["cache_directory"] = temporary
        cache_directory = temporary.name
    remote_io = slicer.vtkMRMLRemoteIOLogic()
    remote_io.SetMRMLScene(scene)
    remote_io.SetMRMLApplicationLogic(logics["application"])
    remote_io.GetCacheManager().SetRemoteCacheDirectory(str(cache_directory))
    data_io = slicer.vtkDataIOManagerLogic()
    data_io.SetMRMLScene(scene)
    data_io.SetMRMLApplicationLogic(logics["application"])
    data_io.SetAndObserveDataIOManager(remote_io.GetDataIOManager())
    remote_io.AddDataIOToScene()
    logics["remote_io"] = remote_io
    logics["data_io"] = data_io


def save_scene_bundle(scene, path) -> None:
    """Write ``scene`` with all its data (volumes, models, tables, segmentations) as one ``.mrb`` file.

    Raises RuntimeError with MRML's messages when writing fails.
    """
    slicer = _slicer()
    messages = slicer.vtkMRMLMessageCollection()
    path = os.path.abspath(str(path))  # MRML bundles its files in a folder that must be a full path
    if not scene.WriteToMRB(path, None, messages):
        raise RuntimeError("Saving the scene to %s failed: %s" % (path, messages.GetAllMessagesAsString()))


def load_scene_bundle(scene, path, clear: bool = True) -> None:
    """Read a ``.mrb`` file into ``scene`` (cleared first unless ``clear`` is False).

    A headless scene gets the remote-IO logics it needs (:func:`enable_scene_bundle_io`); inside
    Slicer the application provides them. Raises RuntimeError with MRML's messages on failure.
    """
    slicer = _slicer()
    enable_scene_bundle_io(scene)
    messages = slicer.vtkMRMLMessageCollection()
    path = os.path.abspath(str(path))
    if not scene.ReadFromMRB(path, bool(clear), messages):
        raise RuntimeError("Loading the scene bundle %s failed: %s" % (path, messages.GetAllMessagesAsString()))
