"""The dosimetry report: one self-contained ``report.html`` (inline CSS, PNG figures as base64, no script).

Content: case and software information, inputs with their units and the notes made while reading them,
the organ table (:func:`~DeepDoseLib.analysis.organs.organ_statistics`), cumulative DVHs, axial and coronal
slices through the maximum (or an organ's centre) with the CT in grey, the dose in colour, isodose lines and a
colour bar, and the method with its assumptions. Readable in any browser, without Slicer.
"""
from __future__ import annotations

import datetime
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import SimpleITK as sitk

from .._version import __version__
from ..errors import DeepDoseInputError
from ..output_paths import atomic_write_text
from . import figures

#: Isodose levels shown on the slices, % of the map's maximum.
REPORT_ISODOSE_PERCENTS = (10.0, 25.0, 50.0, 75.0, 90.0)

#: Method descriptions: what was computed and what it assumes.
METHOD_TEXT = {
    "led": ("Local energy deposition (LED)",
            ["The kinetic energy of every charged particle emitted per decay (β⁻, β⁺, conversion and Auger electrons, "
             "α; ICRP Publication 107) is absorbed in the voxel where the decay happens: dose rate [mGy/h] = "
             "A [Bq/mL] × E [MeV] × 1.602×10⁻¹³ J/MeV / (ρ [g/cm³] × 10⁻³ kg/g) × 3600 s/h × 1000 mGy/Gy.",
             "Assumes particle ranges short compared with the voxel (good for Lu-177, whose mean β range in tissue is "
             "well below 1 mm; it blurs less than reality for Y-90 or Ga-68 positrons) and no cross-fire between "
             "voxels. Photons escape (ignored) unless photon energy is deposited locally too (an upper bound).",
             "Density from the CT (HU → g/cm³, Schneider et al. 2000), resampled linearly onto the PET grid; "
             "dose-grid voxels outside the CT are water."]),
    "vsv": ("Voxel S-value convolution (VSV)",
            ["The activity map is convolved with a dose-point kernel tabulated for one medium; an optional "
             "density correction scales each voxel by kernel density / local density.",
             "Assumes a homogeneous medium around each source (interfaces such as lung or bone are approximate)."]),
    "mc": ("Monte Carlo (DeepDose reference engine)",
           ["Decays sampled from the activity map, particles transported through the CT-derived materials and "
            "densities; energy scored per voxel. The statistical uncertainty is reported per voxel."]),
    "mird": ("MIRD organ-level S-values",
             ["Uniform activity and dose per organ; self-dose from organ mass (unit-density sphere model)."]),
    "deepdose": ("Deep-dose 3D U-Net",
                 ["A network trained on Monte Carlo dose rates predicts the dose rate from the activity and density "
                  "patches (after Lee et al., Sci Rep 2019)."]),
}
COMMON_ASSUMPTIONS = [
    "The dose-rate map refers to the reference time of the activity image (for decay-corrected PET: the scan "
    "start). It lies exactly on the PET grid.",
    "Organ statistics weight each dose voxel by the fraction of it inside the organ (label maps on another grid "
    "are supersampled 3×3×3 per voxel); means are mass-weighted when the CT gives a density (the MIRD mean "
    "absorbed dose), voxel-weighted otherwise. Dx is the dose received by the hottest x % of the volume.",
]


@dataclass
class ReportInput:
    """An input file as listed in the report: its role (``"CT"``, ``"PET"``...), path, unit and notes."""

    role: str
    path: str
    unit: str = ""
    notes: List[str] = field(default_factory=list)


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


def _tissue_maximum(array: np.ndarray, density_g_per_cm3: Optional[np.ndarray]):
    """(value, (z, y, x) index) of the maximum over tissue voxels (density ≥ LOW_DENSITY_g_per_cm3 when a density
    map is given): activity blurred into air gives per-gram-of-air dose rates that would dwarf every organ."""
    from ..dose import LOW_DENSITY_g_per_cm3

    if density_g_per_cm3 is not None and np.any(np.asarray(density_g_per_cm3) >= LOW_DENSITY_g_per_cm3):
        masked = np.where(np.asarray(density_g_per_cm3) >= LOW_DENSITY_g_per_cm3, array, -np.inf)
    else:
        masked = array
    index = np.unravel_index(int(np.argmax(masked)), array.shape)
    return float(array[index]), index


def _slice_centre(dose: sitk.Image, labels: Optional[sitk.Image], focus_label: Optional[int], max_index):
    """(physical LPS point [mm], description) of the slice centre: the organ's centroid or the maximum."""
    if focus_label is not None and labels is not None:
        from ..analysis.masks import fractional_masks

        mask = fractional_masks(labels, dose, [int(focus_label)])[int(focus_label)]
        if mask.is_empty:
            raise DeepDoseInputError(f"Label {focus_label} does not overlap the dose grid; cannot centre the slices.")
        f = mask.fraction.astype(np.float64)
        zyx = [s.start + float(np.dot(np.arange(f.shape[a]), f.sum(axis=tuple(b for b in range(3) if b != a))))
               / f.sum() for a, s in enumerate(mask.box)]
        return dose.TransformContinuousIndexToPhysicalPoint(zyx[::-1]), f"centre of label {focus_label}"
    return dose.TransformIndexToPhysicalPoint([int(i) for i in max_index[::-1]]), "maximum"


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


def render_report(dose: sitk.Image, *, ct_HU: Optional[sitk.Image] = None, nuclide: str = "", method: str = "",
                  inputs: Sequence[ReportInput] = (), notes: Sequence[str] = (), labels: Optional[sitk.Image] = None,
                  label_names: Optional[Dict[int, str]] = None, density_g_per_cm3=None, organ_rows=None,
                  focus_label: Optional[int] = None, unit: str = "mGy/h", quantity: str = "dose rate",
                  isodose_percents: Sequence[float] = REPORT_ISODOSE_PERCENTS, include_photons: Optional[bool] = None,
                  extra_method_notes: Sequence[str] = (), title: str = "DeepDose dosimetry report") -> str:
    """The report as an HTML string (see :func:`write_report` for the arguments)."""
    from ..analysis.dvh import dvhs_for_labels
    from ..analysis.isodose import isodose_levels
    from ..analysis.organs import organ_statistics
    from ..geometry import resample_to_grid
    from ..nuclides import get_nuclide

    array = sitk.GetArrayViewFromImage(dose)
    dmax, max_index = _tissue_maximum(array, density_g_per_cm3)
    if not (np.isfinite(dmax) and dmax > 0):
        raise DeepDoseInputError("The dose map is empty (maximum ≤ 0): nothing to report.")
    where_max = "in tissue (voxels ≥ 0.05 g/cm³)" if density_g_per_cm3 is not None else "of the map"
    ct_on_grid = None
    if ct_HU is not None:
        ct_on_grid = resample_to_grid(sitk.Cast(ct_HU, sitk.sitkFloat32), dose, default_value=-1000.0)
    centre_mm, centre_what = _slice_centre(dose, labels, focus_label, max_index)
    oriented, origin, spacing = figures.to_lps_arrays(*([dose] if ct_on_grid is None else [dose, ct_on_grid]))
    dose_lps, ct_lps = oriented[0], (oriented[1] if ct_on_grid is not None else None)
    reference = sitk.DICOMOrient(dose, "LPS")
    i, j, k = reference.TransformPhysicalPointToIndex(centre_mm)
    levels = isodose_levels(dmax, percents=isodose_percents, unit=unit)
    max_mm = dose.TransformIndexToPhysicalPoint([int(v) for v in max_index[::-1]])

    pictures = []
    for plane, index, position, marker in (("axial", k, f"z = {centre_mm[2]:.1f} mm", (centre_mm[0], centre_mm[1])),
                                           ("coronal", j, f"y = {centre_mm[1]:.1f} mm", (centre_mm[0], centre_mm[2]))):
        png = figures.slice_png(ct_lps, dose_lps, origin, spacing, plane, index, levels, unit=unit, quantity=quantity,
                                vmax=dmax, marker_mm=marker,
                                title=f"{plane.capitalize()} slice through the {centre_what}, {position}")
        caption = (f"{plane.capitalize()} slice ({position}, LPS) through the {centre_what}: CT in grey (window "
                   f"{figures.CT_WINDOW_HU[0]:g} to {figures.CT_WINDOW_HU[1]:g} HU), {quantity} in colour from "
                   f"{float(levels[0]):.3g} {unit} ({isodose_percents[0]:g} % of the maximum {dmax:.4g} {unit} "
                   f"{where_max}) up, isodose lines at " + ", ".join(f"{p:g}" for p in isodose_percents)
                   + " % of that maximum. "
                   "Radiological convention: patient's right on the left.")
        pictures.append((plane, png, caption))

    organ_section = "<p>No label map was given (<code>--labels LABELS --label-names names.json</code>).</p>"
    dvh_figure = ""
    if labels is not None:
        names = dict(label_names or {})
        rows = organ_rows if organ_rows is not None else organ_statistics(dose, labels, names, density_g_per_cm3,
                                                                          unit=unit)
        organ_section = _organ_table_html(rows, unit)
        present = {r.label: r.name for r in rows if r.volume_mL > 0}
        dvhs = dvhs_for_labels(dose, labels, present, unit=unit)
        curves = [(name, np.append(d.bin_edges[:-1], d.bin_edges[-1]), np.append(d.cumulative_volume_percent, 0.0))
                  for name, d in dvhs.items()]
        if curves:
            png = figures.dvh_png(curves, unit=unit, quantity=quantity)
            dvh_figure = (f'<figure><img alt="cumulative DVH" src="{figures.png_data_uri(png)}">'
                          f"<figcaption>Cumulative DVH per structure: % of the structure's volume receiving at least "
                          f"the {quantity} on the horizontal axis (partial-volume weighted).</figcaption></figure>")

    nuclide_text = ""
    if nuclide:
        try:
            n = get_nuclide(nuclide)
            nuclide_text = (f"{_e(n.symbol)} (T½ = {n.half_life_s / 3600:.4g} h; charged particles "
                            f"{n.charged_energy_per_decay_MeV:.4f} MeV/decay, photons {n.photon_energy_per_decay_MeV:.4f} "
                            "MeV/decay; ICRP-107)")
        except DeepDoseInputError:
            nuclide_text = _e(nuclide)
    method_title, method_lines = METHOD_TEXT.get(method, (method.upper() or "not stated", []))
    if method == "led" and include_photons is not None:
        method_title += " — photons " + ("deposited locally too" if include_photons else "ignored (charged only)")
    now = datetime.datetime.now().astimezone()
    size = "×".join(str(s) for s in dose.GetSize())
    info = [("DeepDose version", _e(__version__)), ("Date", _e(now.strftime("%Y-%m-%d %H:%M %Z"))),
            ("Radionuclide", nuclide_text or "–"), ("Method", _e(method_title)),
            ("Quantity", f"{_e(quantity)} [{_e(unit)}]"),
            ("Dose grid", f"{size} voxels of {' × '.join(f'{s:.3g}' for s in dose.GetSpacing())} mm (x × y × z)"),
            (f"Maximum {quantity}", f"{dmax:.4g} {_e(unit)} {where_max} at ({', '.join(f'{v:.1f}' for v in max_mm)})"
             " mm LPS" + (f"; {float(array.max()):.4g} {_e(unit)} over all voxels" if float(array.max()) > dmax else ""))]
    input_rows = "".join(f'<tr><td class="text">{_e(x.role)}</td><td class="text"><code>{_e(x.path)}</code></td>'
                         f'<td class="text">{_e(x.unit)}</td><td class="text">{"<br>".join(_e(n) for n in x.notes)}'
                         "</td></tr>" for x in inputs)
    inputs_html = (f'<table class="data"><thead><tr><th>Role</th><th style="text-align:left">File</th>'
                   f'<th style="text-align:left">Unit</th><th style="text-align:left">Notes</th></tr></thead>'
                   f"<tbody>{input_rows}</tbody></table>") if inputs else "<p>Inputs given in memory.</p>"
    notes_html = ("<ul class=\"notes\">" + "".join(
        f'<li class="{"warn" if n.startswith("WARNING") else ""}">{_e(n)}</li>' for n in notes) + "</ul>") if notes \
        else "<p>No corrections or warnings.</p>"
    # side by side at one common scale: each figure's share of the row is proportional to its pixel width
    figures_html = "".join(f'<figure style="flex:{_png_width(png)} 1 0px">'
                           f'<img alt="{plane} slice" src="{figures.png_data_uri(png)}">'
                           f"<figcaption>{_e(caption)}</figcaption></figure>" for plane, png, caption in pictures)
    method_html = "".join(f"<li>{_e(line)}</li>" for line in list(method_lines) + list(extra_method_notes)
                          + COMMON_ASSUMPTIONS)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="DeepDose {_e(__version__)}"><title>{_e(title)}</title><style>{_CSS}</style></head>
<body><main>
<header><h1>{_e(title)}</h1><div class="subtitle">{_e(method_title)} · {nuclide_text or "–"}</div></header>
<section id="summary">{_key_value_table(info)}</section>
<section id="inputs"><h2>Inputs</h2>{inputs_html}<h3 style="font-size:15px">Processing notes</h3>{notes_html}</section>
<section id="organs"><h2>Organ and structure statistics ({_e(quantity)}, {_e(unit)})</h2>{organ_section}</section>
<section id="images"><h2>Dose distribution</h2><div class="figures">{figures_html}</div></section>
<section id="dvh"><h2>Dose-volume histograms</h2>{dvh_figure or "<p>No structures: no DVH.</p>"}</section>
<section id="method" class="method"><h2>Method and assumptions</h2><p><b>{_e(method_title)}</b></p>
<ul>{method_html}</ul></section>
<footer>Generated by DeepDose {_e(__version__)} on {_e(now.strftime("%Y-%m-%d %H:%M %Z"))}. Research software: verify
results independently before any clinical use.</footer>
</main></body></html>
"""


def write_report(directory: Union[str, Path], dose: sitk.Image, **options) -> Path:
    """Write ``directory/report.html`` (self-contained) and return its path.

    Args:
        directory: output folder (created).
        dose: dose-rate [mGy/h] (or dose, with ``unit="Gy"``, ``quantity="absorbed dose"``) map.
        options: ``ct_HU`` (SimpleITK image on any grid, resampled for display), ``nuclide``, ``method``,
            ``inputs`` (:class:`ReportInput` list), ``notes``, ``labels`` (label map on any grid) and
            ``label_names`` (label → name), ``density_g_per_cm3`` ((z, y, x) on the dose grid: mass-weighted
            means), ``organ_rows`` (precomputed :func:`organ_statistics` rows), ``focus_label`` (centre the
            slices on this label instead of the maximum), ``unit``, ``quantity``, ``isodose_percents``,
            ``include_photons``, ``extra_method_notes``, ``title``.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.html"
    return atomic_write_text(path, render_report(dose, **options))
