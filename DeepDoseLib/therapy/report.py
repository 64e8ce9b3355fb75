"""The therapy report: one self-contained ``report.html`` (inline CSS, matplotlib PNGs as base64).

Sections: study (nuclide, method, fit, time points, timings), registration quality per time point, the
structure table (mass, mean absorbed dose ± standard uncertainty, D2/D50/D98, BED, EQD2, gEUD, EUBED, fitted
model and effective half-life), the uncertainty budget per structure, each structure's time-activity and
dose-rate curves with the fitted curves, axial and coronal slices of the absorbed dose, the radiobiology
parameters with their sources, and the processing notes.
"""
from __future__ import annotations

import datetime
from typing import Dict, Sequence

import numpy as np
import SimpleITK as sitk

from .._version import __version__
from ..report import figures
from ..report.html import _CSS, _e, _key_value_table, _num
from .study import StructureResult, TherapyResult


def time_activity_png(structures: Sequence[StructureResult]) -> bytes:
    """One panel per structure: activity [MBq] (left axis, circles) and mean dose rate [mGy/h] (right axis,
    squares) at the time points, with their fitted curves from 0 h to 1.5 × the last time point."""
    columns = min(3, max(1, len(structures)))
    rows = -(-len(structures) // columns)
    fig = figures._figure(4.2 * columns, 3.0 * rows)
    for i, s in enumerate(structures):
        ax = fig.add_subplot(rows, columns, i + 1)
        t_end = 1.5 * float(s.activity_fit.times_h[-1])
        t = np.linspace(0.0, t_end, 300)
        ax.plot(s.activity_fit.times_h, s.activity_fit.values, "o", color="#1f4e79", label="activity")
        ax.plot(t, s.activity_fit.evaluate(t), "-", color="#1f4e79", linewidth=1.2,
                label=f"fit ({s.activity_fit.model})")
        ax.set_xlabel("time after administration [h]", fontsize=8)
        ax.set_ylabel("activity [MBq]", fontsize=8, color="#1f4e79")
        ax.set_xlim(0, t_end)
        ax.set_ylim(bottom=0)
        ax2 = ax.twinx()
        ax2.plot(s.dose_rate_fit.times_h, s.dose_rate_fit.values, "s", color="#b5452a", markersize=4,
                 label="mean dose rate")
        ax2.plot(t, s.dose_rate_fit.evaluate(t), "--", color="#b5452a", linewidth=1.0,
                 label=f"fit ({s.dose_rate_fit.model})")
        ax2.set_ylabel("mean dose rate [mGy/h]", fontsize=8, color="#b5452a")
        ax2.set_ylim(bottom=0)
        ax.set_title(f"{s.name}: {s.mean_Gy:.3g} ± {s.u_mean_Gy:.2g} Gy", fontsize=9, loc="left")
        ax.tick_params(labelsize=7)
        ax2.tick_params(labelsize=7)
        if i == 0:
            handles = ax.get_legend_handles_labels()
            handles2 = ax2.get_legend_handles_labels()
            ax.legend(handles[0] + handles2[0], handles[1] + handles2[1], fontsize=7, frameon=False)
    fig.tight_layout()
    return figures._png(fig)


def _structure_table_html(result: TherapyResult) -> str:
    columns = [("mass_g", "Mass<br>[g]"), ("mean_Gy", "Mean<br>[Gy]"), ("u_mean_Gy", "u(mean)<br>[Gy]"),
               ("D98_Gy", "D98<br>[Gy]"), ("D50_Gy", "D50<br>[Gy]"), ("D2_Gy", "D2<br>[Gy]"),
               ("bed_Gy", "BED<br>[Gy]"), ("u_bed_Gy", "u(BED)<br>[Gy]"), ("eqd2_Gy", "EQD2<br>[Gy]"),
               ("geud_Gy", "gEUD<br>[Gy]"), ("eubed_Gy", "EUBED<br>[Gy]"), ("g_factor", "G"),
               ("effective_half_life_h", "T<sub>eff</sub><br>[h]"), ("tia_MBq_h", "TIA<br>[MBq·h]")]
    head = "".join(f"<th>{t}</th>" for _, t in columns)
    body = []
    for s in result.structures:
        cells = [f'<td class="name">{_e(s.name)}</td>', f'<td class="text">{_e(s.dose_rate_fit.model)}</td>']
        for name, _ in columns:
            value = float(getattr(s, name))
            cells.append(f'<td data-field="{name}" data-value="{value!r}">{_num(value)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="data"><thead><tr><th>Structure</th><th>Fit</th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def _uncertainty_html(result: TherapyResult) -> str:
    names = ["calibration", "fit", "volume", "dose method", "recovery"]
    head = "".join(f"<th>{_e(n)}<br>[%]</th>" for n in names) + "<th>combined<br>[%]</th>"
    body = []
    for s in result.structures:
        comps = s.uncertainty.components
        cells = "".join(f"<td>{_num(100 * comps[n], 3) if n in comps else '–'}</td>" for n in names)
        body.append(f'<tr><td class="name">{_e(s.name)}</td>{cells}<td>{_num(100 * s.uncertainty.combined, 3)}</td>'
                    "</tr>")
    sources = sorted({f"{k}: {v}" for s in result.structures for k, v in s.uncertainty.sources.items()})
    return (f'<table class="data"><thead><tr><th>Structure</th>{head}</tr></thead><tbody>{"".join(body)}</tbody>'
            "</table><ul class=\"notes\">" + "".join(f"<li>{_e(x)}</li>" for x in sources) + "</ul>")


def _organ_dice(quality) -> str:
    """'kidney 0.951 (0.802), ...': organ-mask Dice after (before) registration."""
    nan = float("nan")
    return ", ".join(f"{k} {v:.3f} ({quality.label_dice_before.get(k, nan):.3f})"
                     for k, v in quality.label_dice_after.items())


def _registration_html(result: TherapyResult) -> str:
    rows = []
    for tp in result.time_points:
        q = tp.quality
        if q is None:
            rows.append(f'<tr><td class="name">{_e(tp.name)}</td><td>{tp.time_h:g}</td>'
                        + "<td>–</td>" * 7 + "</tr>")
            continue
        rows.append(f'<tr><td class="name">{_e(tp.name)}</td><td>{tp.time_h:g}</td><td>{q.body_dice_before:.3f}</td>'
                    f"<td>{q.body_dice_after:.3f}</td><td>{q.bone_dice_before:.3f}</td><td>{q.bone_dice_after:.3f}</td>"
                    f"<td>{_e(' '.join(f'{v:g}' for v in q.translation_mm))}</td>"
                    f"<td>{_e(' '.join(f'{v:g}' for v in q.rotation_deg))}</td>"
                    f'<td class="text">{_e(_organ_dice(q)) or "–"}</td></tr>')
    return ('<table class="data"><thead><tr><th>Time point</th><th>Time<br>[h]</th><th>Body Dice<br>before</th>'
            "<th>Body Dice<br>after</th><th>Bone Dice<br>before</th><th>Bone Dice<br>after</th>"
            "<th>Translation<br>[mm]</th><th>Rotation x y z<br>[deg]</th><th>Organ Dice after (before)</th></tr>"
            "</thead><tbody>"
            + "".join(rows) + "</tbody></table><p style=\"font-size:13px\">Dice of the body (HU &gt; −300) and bone "
            "(HU &gt; 200) masks of the registered CT and the reference CT; rows without figures: the reference, or "
            "time points not registered.</p>")


def _slices(result: TherapyResult) -> str:
    from ..analysis.isodose import isodose_levels
    from ..geometry import resample_to_grid

    dose = result.absorbed_dose_Gy
    array = sitk.GetArrayViewFromImage(dose)
    dmax = float(array.max())
    if not dmax > 0:
        return "<p>The absorbed-dose map is empty.</p>"
    ct = resample_to_grid(sitk.Cast(result.reference_ct_HU, sitk.sitkFloat32), dose, default_value=-1000.0)
    oriented, origin, spacing = figures.to_lps_arrays(dose, ct)
    index = np.unravel_index(int(np.argmax(oriented[0])), oriented[0].shape)
    levels = isodose_levels(dmax, percents=(10.0, 25.0, 50.0, 75.0, 90.0), unit="Gy")
    out = []
    for plane, k in (("axial", index[0]), ("coronal", index[1])):
        png = figures.slice_png(oriented[1], oriented[0], origin, spacing, plane, int(k), levels, unit="Gy",
                                quantity="absorbed dose", vmax=dmax, title=f"{plane.capitalize()} slice through the "
                                                                            "maximum")
        out.append(f'<figure style="flex:{int.from_bytes(png[16:20], "big")} 1 0px"><img alt="{plane}" '
                   f'src="{figures.png_data_uri(png)}"><figcaption>{plane.capitalize()} slice of the absorbed dose '
                   f"[Gy] over the reference CT; isodose lines at 10, 25, 50, 75, 90 % of {dmax:.4g} Gy."
                   "</figcaption></figure>")
    return '<div class="figures">' + "".join(out) + "</div>"


def render_therapy_report(result: TherapyResult, *, inputs: Sequence[Dict[str, str]] = (),
                          title: str = "DeepDose therapy dosimetry report") -> str:
    """The report as an HTML string."""
    from ..nuclides import get_nuclide

    o = result.options
    nuc = get_nuclide(o.nuclide)
    now = datetime.datetime.now().astimezone()
    info = [("DeepDose version", _e(__version__)), ("Date", _e(now.strftime("%Y-%m-%d %H:%M %Z"))),
            ("Radionuclide", f"{_e(nuc.name)} (T½ = {nuc.half_life_s / 3600:.4g} h)"),
            ("Dose-rate method", _e(o.method)), ("Time integration", _e(o.fit) + (
                " (AICc per structure and per voxel)" if o.fit == "auto" else "")),
            ("Time points", _e(", ".join(f"{t:g} h" for t in result.times_h)) + " after administration"),
            ("Reference frame", _e(result.time_points and _reference(result))),
            ("Registration", "rigid + B-spline" if o.register and o.registration.deformable else
             ("rigid" if o.register else "none (scans assumed aligned)")),
            ("Dose grid", f"{'×'.join(map(str, result.absorbed_dose_Gy.GetSize()))} voxels of "
                          f"{' × '.join(f'{s:.3g}' for s in result.absorbed_dose_Gy.GetSpacing())} mm"),
            ("Computation time", f"{result.seconds.get('total', float('nan')):.1f} s")]
    input_rows = "".join(f'<tr><td class="text">{_e(x.get("role", ""))}</td><td class="text"><code>'
                         f'{_e(x.get("path", ""))}</code></td><td class="text">{_e(x.get("unit", ""))}</td></tr>'
                         for x in inputs)
    inputs_html = (f'<table class="data"><thead><tr><th>Role</th><th style="text-align:left">File</th>'
                   f'<th style="text-align:left">Unit</th></tr></thead><tbody>{input_rows}</tbody></table>'
                   if inputs else "")
    structures = result.structures
    curves = ""
    if structures:
        png = time_activity_png(structures)
        curves = (f'<figure><img alt="time-activity curves" src="{figures.png_data_uri(png)}"><figcaption>'
                  "Time-activity curve (activity in the structure, MBq, circles) and mean dose rate (mGy/h, squares) "
                  "of each structure with the fitted curves (continuous: activity; dashed: dose rate, whose "
                  "integral is the mean absorbed dose).</figcaption></figure>")
    radiobiology = "".join(
        f"<li><b>{_e(s.name)}</b> ({_e(s.radiobiology.structure_class)}): α/β = {s.radiobiology.alpha_beta_Gy:g} Gy, "
        f"T<sub>rep</sub> = {s.radiobiology.repair_half_time_h:g} h, α = {s.radiobiology.alpha_per_Gy:g}/Gy, gEUD a = "
        f"{s.radiobiology.geud_a:g} — {_e(s.radiobiology.source)}</li>" for s in structures)
    notes = "".join(f'<li class="{"warn" if "WARNING" in n else ""}">{_e(n)}</li>' for n in result.notes)
    timings = "".join(f"<li>{_e(k)}: {v:.2f} s</li>" for k, v in result.seconds.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="DeepDose {_e(__version__)}"><title>{_e(title)}</title><style>{_CSS}</style></head>
<body><main>
<header><h1>{_e(title)}</h1><div class="subtitle">{_e(nuc.name)} · {_e(o.method)} · {len(result.times_h)} time
point(s)</div></header>
<section id="summary">{_key_value_table(info)}{inputs_html}</section>
<section id="structures"><h2>Absorbed dose per structure</h2>{_structure_table_html(result) if structures else
"<p>No structures given (--labels).</p>"}<p style="font-size:13px">Mean: integral of the fitted mass-weighted mean
dose-rate curve (± combined standard uncertainty, EANM 2018); D98/D50/D2, gEUD and EUBED from the voxel-wise absorbed
dose and BED maps; BED and EQD2 of the mean with the Lea–Catcheside factor G of the fitted curve.</p></section>
<section id="uncertainty"><h2>Uncertainty budget (relative standard uncertainties)</h2>{_uncertainty_html(result)
if structures else ""}</section>
<section id="curves"><h2>Time-activity curves</h2>{curves or "<p>No structures.</p>"}</section>
<section id="registration"><h2>Registration quality</h2>{_registration_html(result)}</section>
<section id="images"><h2>Absorbed dose</h2>{_slices(result)}</section>
<section id="method" class="method"><h2>Method and assumptions</h2><ul>
<li>Dose rate per time point with the {_e(o.method)} method in the scan's own frame (its own CT), then carried into the
reference frame with the registration transform (linear interpolation).</li>
<li>Time integration: trapezoid, mono-exponential, uptake–washout or bi-exponential washout fits with every decay
constant ≥ the physical one; beyond the last point the fitted curve (or, for the trapezoid, physical decay only).</li>
<li>BED = D + G·D²/(α/β), G = (2/D²)∫Ḋ(t)∫Ḋ(w)e^(−μ(t−w))dw dt from the fitted time course, μ = ln 2/T<sub>rep</sub>;
EQD2 = BED/(1 + 2/(α/β)).</li>
<li>Radiobiological parameters used:<ul>{radiobiology or "<li>–</li>"}</ul></li></ul></section>
<section id="notes"><h2>Processing notes</h2><ul class="notes">{notes}</ul><h3 style="font-size:15px">Timings</h3>
<ul class="notes">{timings}</ul></section>
<footer>Generated by DeepDose {_e(__version__)} on {_e(now.strftime("%Y-%m-%d %H:%M %Z"))}. Research software: verify
results independently before any clinical use.</footer>
</main></body></html>
"""


def _reference(result: TherapyResult) -> str:
    note = next((n for n in result.notes if "reference frame:" in n), "")
    return note.split("reference frame:")[-1].strip()
