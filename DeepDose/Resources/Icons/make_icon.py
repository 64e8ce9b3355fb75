"""Generate DeepDose.png (128x128 RGBA): a dose wash (blue -> red) under a radiation trefoil.

Not part of the module; run once with any Python that has numpy and vtk:
    python DeepDose/Resources/Icons/make_icon.py
"""
from __future__ import annotations

import os

import numpy as np
import vtk
from vtk.util import numpy_support

SIZE = 128
# Same stops as the dose-wash colour table of DeepDoseLib.mrml.display (low -> high dose).
WASH = [(0.00, (0, 0, 128)), (0.15, (0, 0, 255)), (0.35, (0, 255, 255)), (0.50, (0, 255, 0)),
        (0.65, (255, 255, 0)), (0.85, (255, 128, 0)), (1.00, (255, 0, 0))]


def wash_colour(t: np.ndarray) -> np.ndarray:
    """RGB (0..255) of the dose wash at fractions ``t`` (0 = low dose, 1 = maximum)."""
    positions = [p for p, _ in WASH]
    return np.stack([np.interp(t, positions, [c[i] for _, c in WASH]) for i in range(3)], axis=-1)


def make_icon() -> np.ndarray:
    """(SIZE, SIZE, 4) uint8 RGBA, row 0 at the top."""
    y, x = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    cx = cy = SIZE / 2.0
    r = np.hypot(x - cx, y - cy) / (SIZE / 2.0)          # 0 at centre, 1 at the edge
    theta = np.degrees(np.arctan2(cy - y, x - cx)) % 360.0  # counter-clockwise from +x

    dose = np.exp(-(r / 0.55) ** 2)                      # Gaussian "hot spot"
    rgba = np.zeros((SIZE, SIZE, 4), dtype=float)
    rgba[..., :3] = wash_colour(dose)
    rgba[..., 3] = np.clip((1.0 - r) / 0.06, 0, 1) * 255  # round, anti-aliased edge

    # Radiation trefoil: central disc + three 60-degree blades centred at 30, 150 and 270 degrees.
    blade = (theta % 120.0) < 60.0
    trefoil = (r < 0.16) | (blade & (r > 0.24) & (r < 0.72))
    edge_dark = (r > 0.93) & (r < 1.0)
    rgba[trefoil, :3] = (20, 20, 30)
    rgba[edge_dark, :3] = rgba[edge_dark, :3] * 0.55
    return np.clip(rgba, 0, 255).astype(np.uint8)


def write_png(rgba: np.ndarray, path: str) -> None:
    """Write with vtkPNGWriter (VTK image rows go bottom-up, hence the flip)."""
    image = vtk.vtkImageData()
    image.SetDimensions(rgba.shape[1], rgba.shape[0], 1)
    flat = np.ascontiguousarray(rgba[::-1]).reshape(-1, 4)
    array = numpy_support.numpy_to_vtk(flat, deep=True, array_type=vtk.VTK_UNSIGNED_CHAR)
    array.SetNumberOfComponents(4)
    image.GetPointData().SetScalars(array)
    writer = vtk.vtkPNGWriter()
    writer.SetFileName(path)
    writer.SetInputData(image)
    writer.Write()


if __name__ == "__main__":
    output = os.path.join(os.path.dirname(os.path.abspath(__file__)), "DeepDose.png")
    write_png(make_icon(), output)
    print("wrote", output)
