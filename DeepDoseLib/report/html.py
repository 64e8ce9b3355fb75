"""The dosimetry report: one self-contained ``report.html`` (inline CSS, PNG figures as base64, no script).

Content: case and software information, inputs with their units and the notes made while reading them,
the organ table (:func:`~DeepDoseLib.analysis.organs.organ_statistics`), cumulative DVHs, axial and coronal
slices through the maximum (or an organ's centre) with the CT in grey, the dose in colour, isodose lines and a
colour bar, and the method with its assumptions. Readable in any browser, without Slicer.

Two steps: :func:`.content.report_data` computes what the report shows (:class:`.content.ReportData`);
:func:`render_html` formats it (figures and HTML). :func:`render_report` and :func:`write_report` do both.
"""
from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Sequence, Union

import SimpleITK as sitk

from ..output_paths import atomic_write_text
from . import figures
from .content import COMMON_ASSUMPTIONS, REPORT_ISODOSE_PERCENTS, ReportData, ReportInput, report_data

__all__ = ["COMMON_ASSUMPTIONS", "REPORT_ISODOSE_PERCENTS", "ReportData", "ReportInput",
           "render_html", "render_report", "write_report"]


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _num(value: float, digits: int = 4) -> str:
    """``digits`` significant digits; whole numbers from 10^digits to 10^7 without exponent; NaN as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if value != 0 and (abs(value) >= 1e7 or abs(value) < 1e-3):
        return f"{value:.{digits - 1}e}"
    if abs(value) >= 10 ** digits:
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def _organ_table_html(rows, unit: str) -> str:
    """The organ table; every number cell carries its exact value in ``data-value`` (field in ``data-field``)."""
    if not rows:
        return "<p>No structure overlaps the dose grid.</p>"
    levels = list(rows[0].v_percent)
    mass = any(r.mean_weighting == "mass" for r in rows)
    columns = [("volume_mL", "Volume<br>[mL]"), ("mass_g", "Mass<br>[g]")]
    columns += [("mean_mass_weighted", f"Mean<br>mass-weighted<br>[{unit}]")] if mass else []
    columns += [("mean_voxel_weighted", f"Mean<br>voxel-weighted<br>[{unit}]"), ("median", f"Median<br>[{unit}]"),
                ("min", f"Min<br>[{unit}]"), ("max", f"Max<br>[{unit}]"), ("D98", f"D98<br>[{unit}]"),
                ("D50", f"D50<br>[{unit}]"), ("D2", f"D2<br>[{unit}]")]
    head = "".join(f"<th>{title}</th>" for _, title in columns)
    head += "".join(f"<th>V{level:g} {_e(unit)}<br>[%]</th>" for level in levels)
    fallback = any(getattr(r, "fallback_percent", None) is not None for r in rows)
    head += "<th>Fallback to baseline<br>[%]</th>" if fallback else ""
    body = []
    for r in rows:
        cells = [f'<td class="name">{_e(r.name)}</td>', f'<td data-field="label">{r.label}</td>']
        if r.structure_volume_mL > 0 and r.volume_mL < 0.99 * r.structure_volume_mL:
            cells[0] = (f'<td class="name">{_e(r.name)}<span class="flag" title="only part of the structure lies in '
                        f'the dose grid"> ({100 * r.volume_mL / r.structure_volume_mL:.0f} % in grid)</span></td>')
        for name, _ in columns:
            value = float(getattr(r, name))
            cells.append(f'<td data-field="{name}" data-value="{value!r}">{_num(value)}</td>')
        for level in levels:
            value = float(r.v_percent[level])
            cells.append(f'<td data-field="V{level:g}" data-value="{value!r}">{_num(value, 3)}</td>')
        if fallback:
            value = float("nan") if r.fallback_percent is None else float(r.fallback_percent)
            cells.append(f'<td data-field="fallback_percent" data-value="{value!r}">{_num(value, 3)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="data organs"><thead><tr><th>Structure</th><th>Label</th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def _png_width(png: bytes) -> int:
    """Pixel width from a PNG's IHDR chunk."""
    return int.from_bytes(png[16:20], "big")


def _key_value_table(items: Sequence) -> str:
    return '<table class="kv">' + "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in items) + "</table>"


_CSS = """
body{font-family:"Helvetica Neue",Arial,"DejaVu Sans",sans-serif;color:#1d2733;margin:0;background:#f3f5f8}
main{max-width:1180px;margin:0 auto;padding:24px 32px 48px;background:#fff;box-shadow:0 0 12px rgba(0,0,0,.08)}
header{border-bottom:3px solid #1f4e79;padding-bottom:10px;margin-bottom:18px}
h1{font-size:26px;margin:0 0 4px;color:#1f4e79}h2{font-size:19px;color:#1f4e79;border-bottom:1px solid #d5dde6;
padding-bottom:4px;margin-top:30px}.subtitle{color:#5a6b7d;font-size:14px}
table{border-collapse:collapse;font-size:13px}table.kv th{text-align:left;padding:3px 16px 3px 0;color:#5a6b7d;
font-weight:600;vertical-align:top}table.kv td{padding:3px 0}
table.data{width:100%;margin:8px 0}table.data th{background:#1f4e79;color:#fff;font-weight:600;padding:6px 8px;
text-align:right;font-size:12px;vertical-align:bottom}table.data th:first-child{text-align:left}
table.data td{padding:4px 8px;text-align:right;border-bottom:1px solid #e3e8ee;font-variant-numeric:tabular-nums}
table.data td.name,table.data td.text{text-align:left}table.data tbody tr:nth-child(even){background:#f6f8fb}
.flag{color:#a35d00;font-size:11px}.notes li{margin:2px 0;font-size:13px}.warn{color:#a33}
.figures{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}.figures figure{margin:0;min-width:300px}
figure img{max-width:100%;border:1px solid #d5dde6}.figures figure img{width:100%}figcaption{font-size:12px;color:#5a6b7d;margin-top:4px}
.method p,.method li{font-size:14px;line-height:1.45}footer{margin-top:36px;font-size:12px;color:#7a8897;
border-top:1px solid #d5dde6;padding-top:8px}code{font-size:12px;background:#f0f3f7;padding:1px 4px}
"""


def _nuclide_html(data: ReportData) -> str:
    n = data.nuclide
    if n is None:
        return _e(data.nuclide_name) if data.nuclide_name else ""
    return (f"{_e(n.symbol)} (T½ = {n.half_life_s / 3600:.4g} h; charged particles "
            f"{n.charged_energy_per_decay_MeV:.4f} MeV/decay, photons {n.photon_energy_per_decay_MeV:.4f} "
            "MeV/decay; ICRP-107)")


def _slice_figures_html(data: ReportData) -> str:
    """The axial and coronal slices side by side at one common scale: each figure's share of the row is
    proportional to its pixel width."""
    unit, quantity, percents = data.unit, data.quantity, data.isodose_percents
    parts = []
    for view in data.slices:
        png = figures.slice_png(data.ct_lps, data.dose_lps, data.origin_mm, data.spacing_mm, view.plane, view.index,
                                data.isodose_levels, unit=unit, quantity=quantity, vmax=data.maximum,
                                marker_mm=view.marker_mm,
                                title=f"{view.plane.capitalize()} slice through the {data.centre_what}, {view.position}")
        caption = (f"{view.plane.capitalize()} slice ({view.position}, LPS) through the {data.centre_what}: CT in grey "
                   f"(window {figures.CT_WINDOW_HU[0]:g} to {figures.CT_WINDOW_HU[1]:g} HU), {quantity} in colour from "
                   f"{float(data.isodose_levels[0]):.3g} {unit} ({percents[0]:g} % of the maximum {data.maximum:.4g} "
                   f"{unit} {data.maximum_where}) up, isodose lines at " + ", ".join(f"{p:g}" for p in percents)
                   + " % of that maximum. "
                   "Radiological convention: patient's right on the left.")
        parts.append(f'<figure style="flex:{_png_width(png)} 1 0px">'
                     f'<img alt="{view.plane} slice" src="{figures.png_data_uri(png)}">'
                     f"<figcaption>{_e(caption)}</figcaption></figure>")
    return "".join(parts)


def _dvh_figure_html(data: ReportData) -> str:
    if not data.dvh_curves:
        return ""
    png = figures.dvh_png(data.dvh_curves, unit=data.unit, quantity=data.quantity)
    return (f'<figure><img alt="cumulative DVH" src="{figures.png_data_uri(png)}">'
            f"<figcaption>Cumulative DVH per structure: % of the structure's volume receiving at least "
            f"the {data.quantity} on the horizontal axis (partial-volume weighted).</figcaption></figure>")


def _summary_html(data: ReportData, nuclide_text: str, date: str) -> str:
    unit, quantity = data.unit, data.quantity
    size = "×".join(str(s) for s in data.grid_size)
    beyond = (f"; {data.maximum_all_voxels:.4g} {_e(unit)} over all voxels"
              if data.maximum_all_voxels > data.maximum else "")
    info = [("DeepDose version", _e(data.version)), ("Date", _e(date)),
            ("Radionuclide", nuclide_text or "–"), ("Method", _e(data.method_title)),
            ("Quantity", f"{_e(quantity)} [{_e(unit)}]"),
            ("Dose grid", f"{size} voxels of {' × '.join(f'{s:.3g}' for s in data.grid_spacing_mm)} mm (x × y × z)"),
            (f"Maximum {quantity}", f"{data.maximum:.4g} {_e(unit)} {data.maximum_where} at "
             f"({', '.join(f'{v:.1f}' for v in data.maximum_mm)}) mm LPS" + beyond)]
    return _key_value_table(info)


def _inputs_html(inputs: Sequence[ReportInput]) -> str:
    if not inputs:
        return "<p>Inputs given in memory.</p>"
    rows = "".join(f'<tr><td class="text">{_e(x.role)}</td><td class="text"><code>{_e(x.path)}</code></td>'
                   f'<td class="text">{_e(x.unit)}</td><td class="text">{"<br>".join(_e(n) for n in x.notes)}'
                   "</td></tr>" for x in inputs)
    return (f'<table class="data"><thead><tr><th>Role</th><th style="text-align:left">File</th>'
            f'<th style="text-align:left">Unit</th><th style="text-align:left">Notes</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>")


def _notes_html(notes: Sequence[str]) -> str:
    if not notes:
        return "<p>No corrections or warnings.</p>"
    return ("<ul class=\"notes\">" + "".join(f'<li class="{"warn" if n.startswith("WARNING") else ""}">{_e(n)}</li>'
                                            for n in notes) + "</ul>")


def render_html(data: ReportData) -> str:
    """The report of ``data`` (:func:`.content.report_data`) as an HTML string: figures rendered, numbers formatted."""
    title, quantity, unit = data.title, data.quantity, data.unit
    if data.organ_rows is None:
        organ_section = "<p>No label map was given (<code>--labels LABELS --label-names names.json</code>).</p>"
    else:
        organ_section = _organ_table_html(data.organ_rows, unit)
    if data.fallback_note:  # the method's own note (no dosimetry here), with the column that breaks it down
        column = any(getattr(r, "fallback_percent", None) is not None for r in data.organ_rows or [])
        organ_section = (f'<p class="fallback">{_e(data.fallback_note)}.'
                         + (' The column "Fallback to baseline" gives the share of each structure\'s volume.'
                            if column else "") + "</p>" + organ_section)
    nuclide_text = _nuclide_html(data)
    date = data.generated.strftime("%Y-%m-%d %H:%M %Z")
    figures_html = _slice_figures_html(data)
    dvh_figure = _dvh_figure_html(data)
    method_html = "".join(f"<li>{_e(line)}</li>" for line in data.method_lines)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="DeepDose {_e(data.version)}"><title>{_e(title)}</title><style>{_CSS}</style></head>
<body><main>
<header><h1>{_e(title)}</h1><div class="subtitle">{_e(data.method_title)} · {nuclide_text or "–"}</div></header>
<section id="summary">{_summary_html(data, nuclide_text, date)}</section>
<section id="inputs"><h2>Inputs</h2>{_inputs_html(data.inputs)}<h3 style="font-size:15px">Processing notes</h3>{_notes_html(data.notes)}</section>
<section id="organs"><h2>Organ and structure statistics ({_e(quantity)}, {_e(unit)})</h2>{organ_section}</section>
<section id="images"><h2>Dose distribution</h2><div class="figures">{figures_html}</div></section>
<section id="dvh"><h2>Dose-volume histograms</h2>{dvh_figure or "<p>No structures: no DVH.</p>"}</section>
<section id="method" class="method"><h2>Method and assumptions</h2><p><b>{_e(data.method_title)}</b></p>
<ul>{method_html}</ul></section>
<footer>Generated by DeepDose {_e(data.version)} on {_e(date)}. Research software: verify
results independently before any clinical use.</footer>
</main></body></html>
"""


def render_report(dose: sitk.Image, **options) -> str:
    """The report as an HTML string: :func:`.content.report_data` (see there, or :func:`write_report`, for the
    options), then :func:`render_html`."""
    return render_html(report_data(dose, **options))


def write_report(directory: Union[str, Path], dose: sitk.Image, **options) -> Path:
    """Write ``directory/report.html`` (self-contained) and return its path.

    Parameters
    ----------
    directory : str or Path
        Output folder (created).
    dose : SimpleITK.Image
        Dose-rate map [mGy/h] (or dose [Gy], with ``unit="Gy"``, ``quantity="absorbed dose"``).
    **options
        Keyword arguments of :func:`.content.report_data`: ``ct_HU`` (SimpleITK image on any grid, resampled for
        display), ``nuclide``, ``method``, ``inputs`` (:class:`ReportInput` list), ``notes``, ``labels`` (label map
        on any grid) and ``label_names`` (label → name), ``density_g_per_cm3`` ((z, y, x) on the dose grid:
        mass-weighted means), ``organ_rows`` (precomputed :func:`organ_statistics` rows), ``focus_label`` (centre
        the slices on this label instead of the maximum), ``unit``, ``quantity``, ``isodose_percents``,
        ``include_photons``, ``extra_method_notes``, ``title``.

    Returns
    -------
    Path
        ``directory/report.html``.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.html"
    return atomic_write_text(path, render_report(dose, **options))
