"""Offscreen rendering of a slice view with Slicer's own displayable managers (no Qt, no display).

A ``qMRMLSliceView`` in the application is a VTK render window whose renderer shows the blended
slice image of the view's ``vtkMRMLSliceLogic`` (CT + dose wash, drawn by CTK's light-box manager)
and the actors of the slice-view displayable managers: model slice intersections (the isodose
lines) and colour legends. :func:`render_slice_view` assembles the same pieces from the MRML
library: the view's slice logic, a ``vtkMRMLDisplayableManagerGroup`` built by the slice-view
factory with ``vtkMRMLModelSliceDisplayableManager`` and ``vtkMRMLColorLegendDisplayableManager``,
and a 2D image actor fed by ``vtkMRMLSliceLogic.GetImageDataConnection()``. VTK renders offscreen
(EGL or OSMesa when there is no X display).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import vtk
from vtk.util import numpy_support

from .scene import application_logic, slice_logic

#: Slice-view displayable managers that draw isodose lines and the colour legend.
SLICE_VIEW_DISPLAYABLE_MANAGERS = (
    "vtkMRMLModelSliceDisplayableManager",
    "vtkMRMLColorLegendDisplayableManager",
)


def ras_of_voxel(volume_node, ijk: Sequence[float]) -> Tuple[float, float, float]:
    """RAS position (mm) of voxel index ``ijk`` = (i, j, k) of ``volume_node``."""
    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    ras = matrix.MultiplyPoint((float(ijk[0]), float(ijk[1]), float(ijk[2]), 1.0))
    return float(ras[0]), float(ras[1]), float(ras[2])


class OffscreenSliceView:
    """A slice view rendered offscreen: slice logic image + slice-view displayable managers.

    Create it **before** the nodes it should show, as the application creates its views first:
    some displayable managers (the colour legend's) only pick up nodes added while they observe
    the scene. Call :meth:`close` when done.
    """

    def __init__(self, scene, layout_name: str = "Red", size: Tuple[int, int] = (512, 512),
                 displayable_managers: Sequence[str] = SLICE_VIEW_DISPLAYABLE_MANAGERS):
        import slicer

        self.logic = slice_logic(scene, layout_name)
        app_logic = application_logic(scene)
        if self.logic is None or app_logic is None:
            raise RuntimeError("The scene has no slice view '%s' (use create_headless_scene())." % layout_name)
        self.size = (int(size[0]), int(size[1]))
        self.render_window = vtk.vtkRenderWindow()
        self.render_window.SetOffScreenRendering(1)
        self.render_window.SetSize(*self.size)
        self.render_window.SetMultiSamples(0)
        self.renderer = vtk.vtkRenderer()
        self.renderer.SetBackground(0.0, 0.0, 0.0)
        self.render_window.AddRenderer(self.renderer)
        self.interactor = vtk.vtkRenderWindowInteractor()  # displayable managers attach widgets to it
        self.interactor.SetRenderWindow(self.render_window)
        self.interactor.Initialize()

        factory = slicer.vtkMRMLSliceViewDisplayableManagerFactory.GetInstance()
        factory.SetMRMLApplicationLogic(app_logic)
        for name in displayable_managers:
            if not factory.IsDisplayableManagerRegistered(name):
                factory.RegisterDisplayableManager(name)
        self.group = slicer.vtkMRMLDisplayableManagerGroup()
        self.group.Initialize(factory, self.renderer)
        self.group.SetMRMLDisplayableNode(self.logic.GetSliceNode())

        # What CTK's light-box manager does in the application: the blended RGBA slice as a 2D image.
        self.image_mapper = vtk.vtkImageMapper()
        self.image_mapper.SetColorWindow(255.0)
        self.image_mapper.SetColorLevel(127.5)
        self.image_actor = vtk.vtkActor2D()
        self.image_actor.SetMapper(self.image_mapper)
        self.image_actor.GetProperty().SetDisplayLocationToBackground()
        self.renderer.AddViewProp(self.image_actor)

    def render(self, slice_point_ras: Optional[Sequence[float]] = None,
               png_path: Optional[Union[str, Path]] = None) -> np.ndarray:
        """Render; returns RGB uint8 (rows, columns, 3), row 0 at the top. Writes a PNG if asked.

        The field of view is fitted to the background volume; ``slice_point_ras`` (mm) moves the
        slice plane through that point (the view is not re-centred).
        """
        self.logic.ResizeSliceNode(*self.size)
        self.logic.FitSliceToBackground()
        if slice_point_ras is not None:
            self.logic.GetSliceNode().JumpSliceByOffsetting(*[float(v) for v in slice_point_ras])
        self.logic.UpdateImageData()
        # The slice logic rebuilds its blend pipeline when layers change: follow its current output
        # (the application's slice view observes the logic for the same reason).
        connection = self.logic.GetImageDataConnection()
        self.image_mapper.SetInputConnection(connection)
        self.image_actor.SetVisibility(connection is not None)
        self.render_window.Render()
        grabber = vtk.vtkWindowToImageFilter()
        grabber.SetInput(self.render_window)
        grabber.SetInputBufferTypeToRGB()
        grabber.ReadFrontBufferOff()
        grabber.Update()
        image = grabber.GetOutput()
        if png_path is not None:
            Path(png_path).parent.mkdir(parents=True, exist_ok=True)
            writer = vtk.vtkPNGWriter()
            writer.SetFileName(str(png_path))
            writer.SetInputData(image)
            writer.Write()
        columns, rows, _ = image.GetDimensions()
        pixels = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(rows, columns, -1)
        return np.ascontiguousarray(pixels[::-1, :, :3])  # VTK's row 0 is the bottom

    def close(self) -> None:
        """Detach the displayable managers from the scene and release the render window."""
        if self.group is None:
            return
        self.group.SetMRMLDisplayableNode(None)
        self.renderer.RemoveAllViewProps()
        self.render_window.Finalize()
        self.group = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
