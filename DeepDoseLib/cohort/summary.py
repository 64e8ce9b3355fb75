"""The cohort's summary: ``cohort.tsv`` (one row per study and structure) and ``cohort_report.html``.

Outliers are flagged per structure, nuclide and method with the modified z-score of Iglewicz & Hoaglin
(1993, "How to detect and handle outliers"): ``M = 0.6745 (x - median) / MAD`` with MAD the median
absolute deviation; ``|M| > 3.5`` is an outlier. When more than half the values are equal (MAD = 0)
the mean absolute deviation is used instead (``M = (x - median) / (1.253314 MeanAD)``). A group needs
at least :data:`MIN_STUDIES_FOR_OUTLIERS` studies to be assessed. The values are the mean dose rates
[mGy/h] of each structure as computed (not normalised to the administered activity, which the
manifest does not give): a flagged study is one to look at, not necessarily a wrong one.
"""
from __future__ import annotations

import csv
import html
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

OUTLIER_THRESHOLD = 3.5
MIN_STUDIES_FOR_OUTLIERS = 5
QUANTITY = "mean_dose_rate_mGy_per_h"
COLUMNS = ("study_id", "time_h", "nuclide", "method", "status", "structure", "label", QUANTITY, "mean_weighting",
           "max_dose_rate_mGy_per_h", "volume_mL", "mass_g", "robust_z", "outlier", "seconds", "output", "error")


def modified_z_scores(values: Sequence[float]) -> np.ndarray:
    """Modified z-scores (Iglewicz & Hoaglin 1993) of ``values``; all 0 when every value is equal."""
    x = np.asarray(values, dtype=np.float64)
    median = np.median(x)
    mad = np.median(np.abs(x - median))
    if mad > 0:
        return 0.6745 * (x - median) / mad
    mean_ad = np.mean(np.abs(x - median))
    return (x - median) / (1.253314 * mean_ad) if mean_ad > 0 else np.zeros_like(x)


@dataclass
class StructureDistribution:
    """A structure's mean dose rates [mGy/h] across the cohort (one nuclide and method)."""

    structure: str
    nuclide: str
    method: str
    keys: List[str] = field(default_factory=list)
    values: List[float] = field(default_factory=list)
    z: List[float] = field(default_factory=list)

    @property
    def assessed(self) -> bool:
        return len(self.values) >= MIN_STUDIES_FOR_OUTLIERS

    @property
    def outliers(self) -> List[Tuple[str, float, float]]:
        """(study key, value [mGy/h], modified z) of the flagged studies."""
        if not self.assessed:
            return []
        return [(k, v, z) for k, v, z in zip(self.keys, self.values, self.z) if abs(z) > OUTLIER_THRESHOLD]


def structure_distributions(records: Sequence[dict]) -> List[StructureDistribution]:
    """Group the done studies' structures by (structure, nuclide, method) and score them."""
    groups: Dict[Tuple[str, str, str], StructureDistribution] = {}
    for record in records:
        if record.get("status") != "done":
            continue
        for s in record.get("structures", []):
            value = s.get(QUANTITY)
            if value is None or not math.isfinite(value):
                continue
            group = groups.setdefault((s["structure"], record["nuclide"], record["method"]),
                                      StructureDistribution(s["structure"], record["nuclide"], record["method"]))
            group.keys.append(record["key"])
            group.values.append(float(value))
    for group in groups.values():
        group.z = modified_z_scores(group.values).tolist()
    return sorted(groups.values(), key=lambda g: (g.nuclide, g.method, g.structure))


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def cohort_rows(records: Sequence[dict]) -> List[dict]:
    """One row per study (time point) and structure; one row with an empty structure for a study
    without structures or that failed (its error in ``error``)."""
    scores = {}
    for group in structure_distributions(records):
        for key, z in zip(group.keys, group.z):
            scores[(key, group.structure)] = (z, group.assessed)
    rows = []
    for r in records:
        common = {"study_id": r["study_id"], "time_h": r.get("time_h"), "nuclide": r["nuclide"],
                  "method": r["method"], "status": r["status"], "seconds": r.get("seconds"),
                  "output": r["output"] if r["status"] == "done" else "",
                  "error": " ".join(str(r.get("error", "")).split())}
        structures = r.get("structures") or [{}]
        for s in structures:
            row = dict(common, structure=s.get("structure", ""), label=s.get("label"),
                       mean_weighting=s.get("mean_weighting", ""))
            for column in (QUANTITY, "max_dose_rate_mGy_per_h", "volume_mL", "mass_g"):
                row[column] = s.get(column)
            z, assessed = scores.get((r["key"], s.get("structure")), (None, False))
            row["robust_z"] = round(z, 3) if z is not None and assessed else None
            row["outlier"] = ("yes" if abs(z) > OUTLIER_THRESHOLD else "no") if z is not None and assessed else ""
            rows.append(row)
    return rows


def _atomic_write_text(path: Path, text: str) -> Path:
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)
    return path


def write_cohort_tsv(records: Sequence[dict], path) -> Path:
    """Write ``cohort.tsv`` (see :data:`COLUMNS`) atomically."""
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, delimiter="\t", lineterminator="\n")
    writer.writeheader()
    for row in cohort_rows(records):
        writer.writerow({k: _fmt(v) for k, v in row.items()})
    return _atomic_write_text(Path(path), buffer.getvalue())


def _boxplot_png(groups: List[StructureDistribution]) -> Optional[bytes]:
    from ..report.figures import _figure, _png

    groups = [g for g in groups if g.values]
    if not groups:
        return None
    fig = _figure(7.5, 0.9 + 0.38 * len(groups))
    ax = fig.add_subplot(1, 1, 1)
    data = [g.values for g in groups]
    try:  # matplotlib ≥ 3.10 names the orientation; `vert` is deprecated there
        ax.boxplot(data, orientation="horizontal", whis=(0, 100), widths=0.6)
    except TypeError:
        ax.boxplot(data, vert=False, whis=(0, 100), widths=0.6)
    for i, g in enumerate(groups, start=1):
        flagged = {k for k, _, _ in g.outliers}
        colours = ["tab:red" if k in flagged else "0.3" for k in g.keys]
        ax.scatter(g.values, [i] * len(g.values), c=colours, s=14, zorder=3)
    ax.set_yticks(range(1, len(groups) + 1))
    ax.set_yticklabels([f"{g.structure} ({g.nuclide}, {g.method})" for g in groups], fontsize=8)
    if all(v > 0 for g in groups for v in g.values):
        ax.set_xscale("log")
    ax.set_xlabel("mean dose rate [mGy/h] per study (red: outlier, |modified z| > 3.5)")
    fig.tight_layout()
    return _png(fig)


def write_cohort_report(records: Sequence[dict], path, title: str = "DeepDose cohort report") -> Path:
    """A self-contained HTML report: counts, failures, per-structure distributions and outliers, box plot."""
    from ..report.figures import png_data_uri

    e = html.escape
    done = [r for r in records if r["status"] == "done"]
    failed = [r for r in records if r["status"] == "failed"]
    other = [r for r in records if r["status"] not in ("done", "failed")]
    groups = structure_distributions(records)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>"
             "body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}"
             "td,th{border:1px solid #bbb;padding:2px 6px;text-align:right}td:first-child,th:first-child"
             "{text-align:left}.out{color:#b00;font-weight:bold}</style></head><body>",
             f"<h1>{e(title)}</h1>",
             f"<p>{len(records)} stud{'y' if len(records) == 1 else 'ies'}: {len(done)} done, {len(failed)} failed"
             + (f", {len(other)} not run" if other else "") + ". Quantity: mean dose rate [mGy/h] of each structure "
             "(mass-weighted where the CT gave densities). Outliers: modified z-score (Iglewicz &amp; Hoaglin 1993) "
             f"|M| &gt; {OUTLIER_THRESHOLD} within a structure, nuclide and method, assessed from "
             f"{MIN_STUDIES_FOR_OUTLIERS} studies on. Values are not normalised to the administered activity.</p>"]
    if failed:
        parts.append("<h2>Failed studies</h2><table><tr><th>study</th><th>error</th></tr>")
        parts += [f"<tr><td>{e(r['key'])}</td><td style='text-align:left'>{e(str(r.get('error', '')))}</td></tr>"
                  for r in failed]
        parts.append("</table>")
    if groups:
        parts.append("<h2>Distributions per structure</h2><table><tr><th>structure</th><th>nuclide</th>"
                     "<th>method</th><th>n</th><th>median</th><th>Q1</th><th>Q3</th><th>min</th><th>max</th>"
                     "<th>outliers (study: value, M)</th></tr>")
        for g in groups:
            q1, med, q3 = np.percentile(g.values, [25, 50, 75])
            if g.assessed:
                flagged = e("; ".join(f"{k}: {v:.4g} ({z:+.1f})" for k, v, z in g.outliers) or "none")
            else:
                flagged = f"not assessed (n &lt; {MIN_STUDIES_FOR_OUTLIERS})"
            numbers = "".join(f"<td>{v:.4g}</td>" for v in (med, q1, q3, min(g.values), max(g.values)))
            parts.append(f"<tr><td>{e(g.structure)}</td><td>{e(g.nuclide)}</td><td>{e(g.method)}</td>"
                         f"<td>{len(g.values)}</td>{numbers}<td class='{'out' if g.outliers else ''}' "
                         f"style='text-align:left'>{flagged}</td></tr>")
        parts.append("</table>")
        png = _boxplot_png(groups)
        if png is not None:
            parts.append(f"<p><img alt='mean dose rate per structure across the cohort' "
                         f"src='{png_data_uri(png)}'></p>")
    else:
        parts.append("<p>No structure statistics: give a labels map per study (manifest column "
                     "<code>labels</code>).</p>")
    parts.append("</body></html>")
    return _atomic_write_text(Path(path), "\n".join(parts))
