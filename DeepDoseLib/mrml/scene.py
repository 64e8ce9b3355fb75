"""A usable MRML scene with or without the Slicer application.

Inside Slicer, :func:`get_scene` returns ``slicer.mrmlScene``. Elsewhere (pytest, scripts with the
PyPI ``slicer-core`` package) :func:`create_headless_scene` builds what the application would set
up, following ``qSlicerCoreApplication`` and trame-slicer's ``slicer_app.py``:

1. ``vtkMRMLScene`` with the default crosshair node;
2. ``vtkSlicerApplicationLogic`` attached to the scene (it creates the selection and interaction
   singletons), its ``vtkSlicerColorLogic`` adding the default colour tables (Grey, Rainbow,
   PET-Heat, ...), empty slice/view logic collections;
3. a ``vtkMRMLColorLogic`` and a ``vtkSlicerVolumesLogic`` registered as module logics
   "Colors" and "Volumes";
4. the default slice orientation presets (Axial, Sagittal, Coronal);
5. one ``vtkMRMLSliceLogic`` per standard slice view (Red = axial, Yellow = sagittal,
   Green = coronal), which creates the ``vtkMRMLSliceNode`` and ``vtkMRMLSliceCompositeNode`` of
   that view, as the layout manager does in the application.

The logics are kept alive by the Python wrapper of the scene (attribute ``_deepdose_logics``);
call :func:`release_headless_scene` when done to break the scene <-> logic reference cycle.
"""
from __future__ import annotations

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
    for slice_logic in logics["slices"]:
        slice_logic.SetMRMLScene(None)
    app_logic.GetSliceLogics().RemoveAllItems()
    logics["volumes"].SetMRMLScene(None)
    logics["colors"].SetMRMLScene(None)
    app_logic.GetColorLogic().SetMRMLScene(None)
    app_logic.SetMRMLScene(None)
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
