"""Offscreen rendering of the Red slice view: CT, dose wash, isodose lines and colour legend (pixel test).

The view is a real slice view of the MRML library: the slice logic's blended CT + dose image and
the slice-view displayable managers (model slice intersections = isodose lines, colour legend),
rendered by VTK offscreen (EGL/OSMesa without a display). Each element is found as the pixels that
change when only that element is hidden, and their colours are checked. The PNG is saved to
Testing/artifacts/slice_view_dose_overlay.png (CI artefact; the README shows a copy).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="MRML tests need `slicer` (Slicer or pip slicer-core)")

import vtk  # noqa: E402

from DeepDoseLib.mrml import array_from_volume_node, dose_wash_rgb, slice_composite_nodes  # noqa: E402
from DeepDoseLib.mrml.rendering import ras_of_voxel  # noqa: E402
from DeepDoseLib.tissue import hu_to_density  # noqa: E402

ARTIFACT = Path(__file__).resolve().parents[1] / "artifacts" / "slice_view_dose_overlay.png"
#: Pixel colours are 8-bit: a rendered colour within 3/255 of a table colour is that colour.
COLOR_TOLERANCE = 3


def _to_8bit(rgb) -> np.ndarray:
    return np.round(np.asarray(rgb, dtype=float) * 255.0)


def _matches(pixels: np.ndarray, rgb8: np.ndarray) -> np.ndarray:
    return np.all(np.abs(pixels.astype(int) - rgb8.astype(int)) <= COLOR_TOLERANCE, axis=-1)


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.any(a != b, axis=-1)


@pytest.fixture(scope="module")
def renders(dosimetry_run):
    """Full view + the view with each element hidden; the scene is restored afterwards."""
    run = dosimetry_run
    result = run.result
    dose = array_from_volume_node(result.dose_node)
    density = hu_to_density(array_from_volume_node(run.ct).astype(np.float32))
    k, j, i = np.unravel_index(int(np.argmax(np.where(density >= 0.05, dose, -np.inf))), dose.shape)
    through_max = ras_of_voxel(result.dose_node, (i, j, k))  # axial slice through the maximum in tissue

    ct_display = run.ct.GetDisplayNode()
    saved_window = (ct_display.GetAutoWindowLevel(), ct_display.GetWindow(), ct_display.GetLevel())
    ct_display.AutoWindowLevelOff()
    ct_display.SetWindowLevel(400.0, 40.0)  # soft-tissue window, as a user would set it
    model_display = result.isodose_model_node.GetDisplayNode()
    legend = result.legend_display_node
    composites = slice_composite_nodes(run.scene)
    images = {}
    try:
        images["full"] = run.view.render(through_max, png_path=ARTIFACT)
        # Where the hottest tissue voxel lands in the image (XY: pixels from the bottom left).
        ras_to_xy = vtk.vtkMatrix4x4()
        ras_to_xy.DeepCopy(run.view.logic.GetSliceNode().GetXYToRAS())
        ras_to_xy.Invert()
        x, y = ras_to_xy.MultiplyPoint(tuple(through_max) + (1.0,))[:2]
        images["max_row_column"] = (images["full"].shape[0] - 1 - int(round(y)), int(round(x)))
        model_display.SetVisibility2D(False)
        images["no_isodose"] = run.view.render(through_max)
        model_display.SetVisibility2D(True)
        legend.SetVisibility(False)
        images["no_legend"] = run.view.render(through_max)
        legend.SetVisibility(True)
        for composite in composites:
            composite.SetForegroundOpacity(0.0)
        images["no_wash"] = run.view.render(through_max)
    finally:
        model_display.SetVisibility2D(True)
        legend.SetVisibility(True)
        for composite in composites:
            composite.SetForegroundOpacity(0.5)
        ct_display.SetAutoWindowLevel(saved_window[0])
        ct_display.SetWindowLevel(saved_window[1], saved_window[2])
    return images


def test_png_written(renders):
    assert ARTIFACT.is_file() and ARTIFACT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert renders["full"].shape == (480, 640, 3)


def test_ct_is_shown_in_grey(renders):
    ct_only = renders["no_wash"]
    body = ct_only.max(axis=-1) > 30
    assert body.mean() > 0.2  # the torso fills a good part of the fitted view
    chroma = ct_only.max(axis=-1).astype(int) - ct_only.min(axis=-1)
    grey = body & (chroma <= 2)
    # Mostly grey (the isodose lines and legend are the coloured rest), with soft-tissue contrast.
    assert grey.sum() > 0.8 * body.sum()
    assert ct_only[grey].std() > 20


def test_dose_wash_is_coloured(renders, dosimetry_run):
    wash = _changed(renders["full"], renders["no_wash"])
    assert wash.mean() > 0.05  # the wash covers organs above 5 % of the maximum
    full = renders["full"][wash].astype(int)
    assert np.mean(full.max(axis=-1) - full.min(axis=-1) > 40) > 0.9  # saturated, not grey
    # Low dose rates (most of the wash) are blue; the hottest tissue voxel, through which the
    # slice passes, shows the top of the scale (orange-red: red well above blue) at its place.
    assert (full[:, 2] > full[:, 0] + 40).sum() > 100
    row, column = renders["max_row_column"]
    around = renders["full"][row - 2:row + 3, column - 2:column + 3].reshape(-1, 3).astype(int)
    assert np.max(around[:, 0] - around[:, 2]) > 100, around


def test_isodose_lines_in_level_colours(renders, dosimetry_run):
    lines = _changed(renders["full"], renders["no_isodose"])
    assert lines.sum() > 200
    pixels = renders["full"][lines]
    level_colors = [_to_8bit(dose_wash_rgb(dosimetry_run.scene, p / 100.0)) for p in (10, 25, 50, 75, 90)]
    counts = [int(_matches(pixels, color).sum()) for color in level_colors]
    matched = np.any([_matches(pixels, color) for color in level_colors], axis=0)
    assert matched.mean() > 0.9, counts  # line pixels are drawn in the level colours
    assert sum(count >= 10 for count in counts) >= 4, counts  # distinct colours: one per level on this slice


def test_colour_legend_shows_the_wash(renders, dosimetry_run):
    legend = _changed(renders["full"], renders["no_legend"])
    assert legend.sum() > 500
    pixels = renders["full"][legend]
    wash_colours = np.unique([_to_8bit(dose_wash_rgb(dosimetry_run.scene, f)) for f in np.linspace(0, 1, 256)],
                             axis=0)
    in_wash_colours = np.zeros(int(legend.sum()), dtype=bool)
    for colour in wash_colours:
        in_wash_colours |= _matches(pixels, colour)
    colour_bar = np.zeros(legend.shape, dtype=bool)
    colour_bar[legend] = in_wash_colours
    rows, columns = np.nonzero(colour_bar)
    # The colour bar stands at the right edge (a few anti-aliased title pixels over the wash may
    # happen to match a wash colour elsewhere), vertical, about half the view high.
    assert np.mean(columns > 0.85 * legend.shape[1]) > 0.95
    bar_rows = rows[columns > 0.85 * legend.shape[1]]
    assert np.ptp(bar_rows) > 0.3 * legend.shape[0]
    title_rows = np.nonzero(legend & ~colour_bar)[0]
    assert title_rows.min() < bar_rows.min()  # the title (white text) above the bar
    for fraction in (0.0, 0.5, 1.0):  # bottom (dark blue), middle (green), top (red) of the scale
        assert _matches(pixels, _to_8bit(dose_wash_rgb(dosimetry_run.scene, fraction))).sum() > 10, fraction
