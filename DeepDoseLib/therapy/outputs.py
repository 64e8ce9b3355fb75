"""Files of a therapy study: images, tables and the report (the presentation layer of :mod:`.study`).

``DIR/absorbed_dose_Gy.nii.gz``, ``bed_Gy.nii.gz``, ``eqd2_Gy.nii.gz``, ``fit_model.nii.gz`` (index into
``fit_model_legend.tsv``), ``effective_half_life_h.nii.gz`` (slowest phase per voxel), ``structures.tsv``
(one row per structure, with the fitted parameters of its dose-rate curve),
``time_activity.tsv`` (each structure's curves and fits), ``registration.tsv`` (quality per time point),
``timepoints/tpK_<hours>h_{activity_Bq_per_mL,dose_rate_mGy_per_h,ct_HU}.nii.gz`` (each time point in the
reference frame) and ``report.html``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..image_io import write_image
from .study import TherapyResult

#: Columns of structures.tsv: (header, function of a StructureResult).
STRUCTURE_COLUMNS = (
    ("structure", lambda s: s.name),
    ("label", lambda s: s.label),
    ("mass_g", lambda s: s.mass_g),
    ("volume_mL", lambda s: s.volume_mL),
    ("mean_Gy", lambda s: s.mean_Gy),
    ("u_mean_Gy", lambda s: s.u_mean_Gy),
    ("bed_Gy", lambda s: s.bed_Gy),
    ("u_bed_Gy", lambda s: s.u_bed_Gy),
    ("eqd2_Gy", lambda s: s.eqd2_Gy),
    ("u_eqd2_Gy", lambda s: s.u_eqd2_Gy),
    ("D2_Gy", lambda s: s.D2_Gy),
    ("D50_Gy", lambda s: s.D50_Gy),
    ("D98_Gy", lambda s: s.D98_Gy),
    ("voxel_map_mean_Gy", lambda s: s.voxel_mean_Gy),
    ("bed_voxel_mean_Gy", lambda s: s.bed_voxel_mean_Gy),
    ("geud_Gy", lambda s: s.geud_Gy),
    ("eubed_Gy", lambda s: s.eubed_Gy),
    ("lea_catcheside_G", lambda s: s.g_factor),
    ("fit_model", lambda s: s.dose_rate_fit.model),
    ("fit_r_squared", lambda s: s.dose_rate_fit.r_squared),
    ("effective_half_life_h", lambda s: s.effective_half_life_h),
    ("tia_MBq_h", lambda s: s.tia_MBq_h),
    ("fit_parameters", lambda s: " ".join(f"{k}={v:.6g}" for k, v in s.dose_rate_fit.parameters.items())),
    ("alpha_beta_Gy", lambda s: s.radiobiology.alpha_beta_Gy),
    ("repair_half_time_h", lambda s: s.radiobiology.repair_half_time_h),
    ("geud_a", lambda s: s.radiobiology.geud_a),
    ("alpha_per_Gy", lambda s: s.radiobiology.alpha_per_Gy),
    ("recovery_coefficient", lambda s: s.recovery_coefficient),
    ("u_rel_calibration", lambda s: s.uncertainty.components.get("calibration", float("nan"))),
    ("u_rel_fit", lambda s: s.uncertainty.components.get("fit", float("nan"))),
    ("u_rel_volume", lambda s: s.uncertainty.components.get("volume", float("nan"))),
    ("u_rel_dose_method", lambda s: s.uncertainty.components.get("dose method", float("nan"))),
    ("u_rel_recovery", lambda s: s.uncertainty.components.get("recovery", float("nan"))),
)


def _cell(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def structure_table(result: TherapyResult) -> List[List[str]]:
    """Header + one row per structure (the columns of :data:`STRUCTURE_COLUMNS`)."""
    return [[h for h, _ in STRUCTURE_COLUMNS]] + [[_cell(f(s)) for _, f in STRUCTURE_COLUMNS]
                                                  for s in result.structures]


def time_activity_table(result: TherapyResult) -> List[List[str]]:
    """Per structure and time point: activity [MBq], mean dose rate [mGy/h] and both fitted values."""
    rows = [["structure", "time_h", "activity_MBq", "activity_fit_MBq", "mean_dose_rate_mGy_per_h",
             "dose_rate_fit_mGy_per_h", "activity_model", "dose_rate_model"]]
    for s in result.structures:
        act_fit = s.activity_fit.evaluate(s.activity_fit.times_h)
        rate_fit = s.dose_rate_fit.evaluate(s.dose_rate_fit.times_h)
        for i, t in enumerate(s.dose_rate_fit.times_h):
            rows.append([s.name, _cell(float(t)), _cell(float(s.activity_fit.values[i])), _cell(float(act_fit[i])),
                         _cell(float(s.dose_rate_fit.values[i])), _cell(float(rate_fit[i])), s.activity_fit.model,
                         s.dose_rate_fit.model])
    return rows


def registration_table(result: TherapyResult) -> List[List[str]]:
    rows = [["time_point", "time_h", "reference", "body_dice_before", "body_dice_after", "bone_dice_before",
             "bone_dice_after", "mattes_mi", "translation_mm", "rotation_deg", "deformable", "seconds",
             "label_dice_before", "label_dice_after"]]
    for i, tp in enumerate(result.time_points):
        q = tp.quality
        if q is None:
            rows.append([tp.name, _cell(tp.time_h), "yes" if tp.name == _reference_name(result) else "no"]
                        + ["nan"] * 8 + ["0", "", ""])
            continue
        rows.append([tp.name, _cell(tp.time_h), "no", _cell(q.body_dice_before), _cell(q.body_dice_after),
                     _cell(q.bone_dice_before), _cell(q.bone_dice_after), _cell(q.metric_value),
                     " ".join(_cell(v) for v in q.translation_mm), " ".join(_cell(v) for v in q.rotation_deg),
                     "yes" if q.deformable else "no", _cell(q.seconds),
                     " ".join(f"{k}:{v:.4f}" for k, v in q.label_dice_before.items()),
                     " ".join(f"{k}:{v:.4f}" for k, v in q.label_dice_after.items())])
    return rows


def _reference_name(result: TherapyResult) -> str:
    note = next((n for n in result.notes if "reference frame:" in n), "")
    return note.split("reference frame:")[-1].strip()


def _write_tsv(rows: List[List[str]], path: Path) -> Path:
    path.write_text("\n".join("\t".join(r) for r in rows) + "\n", encoding="utf-8")
    return path


def write_therapy_outputs(result: TherapyResult, directory, *, overwrite: bool = False,
                          protected: Sequence = (), report: bool = True,
                          report_inputs: Optional[List[Dict[str, str]]] = None) -> Dict[str, Path]:
    """Write every output of the study into ``directory`` (see the module docstring) → name → path."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths: Dict[str, Path] = {}
    kw = dict(overwrite=overwrite, protected=list(protected))
    paths["absorbed_dose"] = write_image(result.absorbed_dose_Gy, out / "absorbed_dose_Gy.nii.gz", **kw)
    paths["bed"] = write_image(result.bed_Gy, out / "bed_Gy.nii.gz", **kw)
    paths["eqd2"] = write_image(result.eqd2_Gy, out / "eqd2_Gy.nii.gz", **kw)
    if result.fit_map is not None:
        paths["fit_model"] = write_image(result.fit_map, out / "fit_model.nii.gz", **kw)
        (out / "fit_model_legend.tsv").write_text("index\tmodel\n-1\tno activity\n" + "".join(
            f"{i}\t{m}\n" for i, m in enumerate(result.fit_models)), encoding="utf-8")
    if result.effective_half_life_h is not None:
        paths["effective_half_life"] = write_image(result.effective_half_life_h,
                                                   out / "effective_half_life_h.nii.gz", **kw)
    for k, tp in enumerate(result.time_points, start=1):
        stem = out / "timepoints" / f"tp{k}_{tp.time_h:g}h"
        paths[f"tp{k}_activity"] = write_image(tp.activity_Bq_per_mL, f"{stem}_activity_Bq_per_mL.nii.gz", **kw)
        paths[f"tp{k}_dose_rate"] = write_image(tp.dose_rate_mGy_per_h, f"{stem}_dose_rate_mGy_per_h.nii.gz", **kw)
        paths[f"tp{k}_ct"] = write_image(tp.ct_HU, f"{stem}_ct_HU.nii.gz", **kw)
    paths["structures"] = _write_tsv(structure_table(result), out / "structures.tsv")
    paths["time_activity"] = _write_tsv(time_activity_table(result), out / "time_activity.tsv")
    paths["registration"] = _write_tsv(registration_table(result), out / "registration.tsv")
    if report:
        from .report import render_therapy_report

        paths["report"] = out / "report.html"
        paths["report"].write_text(render_therapy_report(result, inputs=report_inputs or []), encoding="utf-8")
    return paths
