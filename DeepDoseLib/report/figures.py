"""Figures of the dosimetry report as PNG bytes (matplotlib, Agg canvas; no pyplot, no global backend).

Slices are shown in radiological convention: the images are first reoriented to LPS (:func:`to_lps_arrays`),
so an axial slice has the patient's right on the left and anterior at the top, and a coronal slice has the
patient's right on the left and superior at the top. Axes are in mm (LPS). Arrays are (z, y, x).
"""
from __future__ import annotations

import base64
import io
from typing import List, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

#: CT window (level 40 HU, width 400 HU: soft tissue) shown in grey under the dose.
CT_WINDOW_HU = (-160.0, 240.0)
DOSE_COLORMAP = "turbo"
DPI = 110


def png_data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` for embedding a PNG in HTML."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def to_lps_arrays(*images: sitk.Image) -> Tuple[List[np.ndarray], Tuple[float, float, float], Tuple[float, ...]]:
    """Reorient images (one grid) so that index axes run to L, P, S → ((z, y, x) arrays, origin, spacing (x, y, z))."""
    oriented = [sitk.DICOMOrient(im, "LPS") for im in images]
    return ([sitk.GetArrayFromImage(im).astype(np.float32) for im in oriented], oriented[0].GetOrigin(),
            oriented[0].GetSpacing())


def _figure(width_in: float, height_in: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()


def slice_png(ct_HU: Optional[np.ndarray], dose: np.ndarray, origin_mm: Sequence[float], spacing_mm: Sequence[float],
              plane: str, index: int, levels: Sequence, *, unit: str = "mGy/h", quantity: str = "dose rate",
              vmax: Optional[float] = None, title: str = "", marker_mm: Optional[Tuple[float, float]] = None) -> bytes:
    """One axial or coronal slice: CT in grey (soft-tissue window), dose in colour, isodose lines, colour bar.

    Args:
        ct_HU, dose: LPS-oriented (z, y, x) arrays on one grid (:func:`to_lps_arrays`); ``ct_HU`` may be None.
        origin_mm, spacing_mm: of that grid, (x, y, z).
        plane: ``"axial"`` (index along z) or ``"coronal"`` (index along y).
        levels: ascending isodose levels (:class:`~DeepDoseLib.analysis.isodose.IsodoseLevel`, legend from
            their labels); the colour wash starts at the lowest one.
        marker_mm: in-plane position to mark (x, y for axial; x, z for coronal), e.g. the slice centre.
    """
    from ..analysis.isodose import isodose_contours_2d
    from matplotlib import colormaps
    from matplotlib import patheffects
    from matplotlib.lines import Line2D

    if plane == "axial":
        dose2d, ct2d = dose[index], None if ct_HU is None else ct_HU[index]
        col0, row0, dcol, drow = origin_mm[0], origin_mm[1], spacing_mm[0], spacing_mm[1]
        row_letters, row_name = ("A", "P"), "y (A→P) [mm]"
    elif plane == "coronal":
        dose2d, ct2d = dose[:, index, :], None if ct_HU is None else ct_HU[:, index, :]
        col0, row0, dcol, drow = origin_mm[0], origin_mm[2], spacing_mm[0], spacing_mm[2]
        row_letters, row_name = ("I", "S"), "z (I→S) [mm]"
    else:
        raise ValueError(f"plane must be 'axial' or 'coronal', not {plane!r}")
    rows, cols = dose2d.shape
    x = (col0 - dcol / 2, col0 + (cols - 0.5) * dcol)
    y = (row0 - drow / 2, row0 + (rows - 0.5) * drow)
    # axial: row 0 (anterior) at the top; coronal: row 0 (inferior) at the bottom
    extent = (x[0], x[1], y[1], y[0]) if plane == "axial" else (x[0], x[1], y[0], y[1])
    origin = "upper" if plane == "axial" else "lower"
    vmax = float(vmax if vmax is not None else max(float(dose.max()), 1e-30))
    cmap = colormaps[DOSE_COLORMAP]

    # layout in inches: the image keeps its physical aspect; title above, axis labels and legend below
    ratio = (y[1] - y[0]) / (x[1] - x[0])
    width_in = min(5.0, 7.5 / ratio)  # tall images (a whole-body coronal) get narrower, never distorted
    height_in = width_in * ratio
    left, right, top, bottom = 0.8, 1.25, 0.35, 1.35 if width_in >= 4 else 1.6
    fig_w, fig_h = left + width_in + right, top + height_in + bottom
    fig = _figure(fig_w, fig_h)
    ax = fig.add_axes((left / fig_w, bottom / fig_h, width_in / fig_w, height_in / fig_h))
    cax = fig.add_axes(((left + width_in + 0.2) / fig_w, bottom / fig_h, 0.16 / fig_w, height_in / fig_h))
    ax.set_facecolor("black")
    if ct2d is not None:
        ax.imshow(ct2d, cmap="gray", vmin=CT_WINDOW_HU[0], vmax=CT_WINDOW_HU[1], extent=extent, origin=origin,
                  interpolation="bilinear")
    floor = min(float(v) for v in levels) if len(levels) else 0.0
    wash = np.ma.masked_less(dose2d, floor)
    image = ax.imshow(wash, cmap=cmap, vmin=0.0, vmax=vmax, alpha=0.55, extent=extent, origin=origin,
                      interpolation="nearest")
    handles = []
    if len(levels):
        lines = isodose_contours_2d(dose2d, levels, (dcol, drow), (col0, row0))
        outline = [patheffects.withStroke(linewidth=2.6, foreground="black")]
        for level in levels:
            colour = cmap(min(float(level) / vmax, 1.0))
            for line in lines[float(level)]:
                if line.shape[0] >= 2:
                    ax.plot(line[:, 0], line[:, 1], color=colour, linewidth=1.4, path_effects=outline)
            name = getattr(level, "label", f"{float(level):.3g} {unit}")
            handles.append(Line2D([], [], color=colour, linewidth=2.0, path_effects=outline, label=name))
    if marker_mm is not None:
        ax.plot([marker_mm[0]], [marker_mm[1]], marker="+", markersize=12, markeredgewidth=1.8, color="white")
        handles.append(Line2D([], [], marker="+", linestyle="none", markersize=10, markeredgewidth=1.8,
                              color="black", label="slice centre"))
    ax.set_xlim(x[0], x[1])
    ax.set_ylim((y[1], y[0]) if plane == "axial" else (y[0], y[1]))
    ax.set_aspect("auto")  # the axes box already has the image's physical aspect
    ax.set_xlabel("x (R→L) [mm]")
    ax.set_ylabel(row_name)
    ax.tick_params(labelsize=8)
    text = dict(color="white", fontsize=11, fontweight="bold", ha="center", va="center",
                path_effects=[patheffects.withStroke(linewidth=2, foreground="black")])
    ax.text(0.03, 0.5, "R", transform=ax.transAxes, **text)
    ax.text(0.97, 0.5, "L", transform=ax.transAxes, **text)
    top, bottom = (row_letters[0], row_letters[1]) if plane == "axial" else (row_letters[1], row_letters[0])
    ax.text(0.5, 0.96, top, transform=ax.transAxes, **text)
    ax.text(0.5, 0.04, bottom, transform=ax.transAxes, **text)
    bar = fig.colorbar(image, cax=cax)
    bar.solids.set_alpha(1.0)
    bar.set_label(f"{quantity} [{unit}]", fontsize=9)
    bar.ax.tick_params(labelsize=8)
    for level in levels:
        bar.ax.axhline(float(level), color="black", linewidth=0.8)
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 3 if width_in >= 4 else 2), fontsize=8, frameon=False,
                   title="isodose lines (% of the maximum)", title_fontsize=8,
                   bbox_to_anchor=((left + width_in / 2) / fig_w, 0.02))
    return _png(fig)


def dvh_png(curves: Sequence[Tuple[str, np.ndarray, np.ndarray]], *, unit: str = "mGy/h",
            quantity: str = "dose rate") -> bytes:
    """Cumulative DVHs: ``curves`` of (structure name, dose bins [unit], volume receiving ≥ dose [%])."""
    from matplotlib import colormaps

    columns = 1 if len(curves) <= 20 else 2
    rows = -(-len(curves) // columns)
    axes_w, axes_h, left, bottom, top = 5.8, max(3.6, 0.19 * rows), 0.85, 0.6, 0.35
    fig_w, fig_h = left + axes_w + 0.3 + 2.2 * columns, bottom + axes_h + top
    fig = _figure(fig_w, fig_h)
    ax = fig.add_axes((left / fig_w, bottom / fig_h, axes_w / fig_w, axes_h / fig_h))
    palette = colormaps["tab10"]  # 10 distinct colours × 4 line styles
    styles = ["-", "--", "-.", ":"]
    dmax = 0.0
    for i, (name, dose_bins, volume_percent) in enumerate(curves):
        dose_bins, volume_percent = np.asarray(dose_bins, float), np.asarray(volume_percent, float)
        if dose_bins.size == 0:
            continue
        positive = volume_percent > 0
        dmax = max(dmax, float(dose_bins[positive].max()) if positive.any() else 0.0)
        ax.plot(dose_bins, volume_percent, color=palette(i % 10), linestyle=styles[(i // 10) % 4], linewidth=1.6,
                label=name)
    ax.set_xlim(0, dmax * 1.03 if dmax > 0 else 1.0)
    ax.set_ylim(0, 102)
    ax.set_xlabel(f"{quantity} [{unit}]")
    ax.set_ylabel("volume receiving at least this [%]")
    ax.set_title("Cumulative dose-volume histograms", fontsize=10, loc="left")
    ax.grid(True, color="#dddddd", linewidth=0.6)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0 + 0.25 / axes_w, 1.0), fontsize=8, frameon=False, ncol=columns,
              handlelength=2.6, labelspacing=0.35)
    return _png(fig)
