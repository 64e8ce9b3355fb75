"""``deepdose therapy`` end to end on a Lu-177 DOTATATE-like synthetic study of 4 SPECT/CT time points (4, 24,
96, 168 h; patient shifts of 4–6 mm between scans), with the report; bad input exits with status 2."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import run_deepdose, sha256_of_tree

HU = {"liver": 55.0, "spleen": 45.0, "kidney_left": 30.0, "kidney_right": 30.0, "lesion_liver": 60.0,
      "red_marrow_spine": 250.0}


@pytest.fixture(scope="module")
def dotatate_files(tmp_path_factory):
    from DeepDoseLib.therapy.synthetic import dotatate_study

    study = dotatate_study()
    folder = tmp_path_factory.mktemp("dotatate")
    args = []
    for k, tp in enumerate(study.time_points):
        ct, spect = folder / f"ct_{k}.nii.gz", folder / f"spect_{k}.nii.gz"
        sitk.WriteImage(tp.ct_HU, str(ct))
        sitk.WriteImage(tp.activity, str(spect))
        args += ["--timepoint", ct, spect, f"{tp.time_h:g}"]
        sitk.WriteImage(tp.labels, str(folder / f"labels_{k}.nii.gz"))
    sitk.WriteImage(study.labels, str(folder / "labels.nii.gz"))
    (folder / "names.json").write_text(json.dumps({str(k): v for k, v in study.label_names.items()}))
    # a NEMA-like recovery measurement (RC = 0.85/(1 + (3 mL/V)^1.3)) for the lesion's partial-volume correction
    volumes = [0.52, 1.15, 2.57, 5.58, 11.49, 26.52]
    (folder / "recovery.json").write_text(json.dumps(
        {"volume_mL": volumes, "recovery": [0.85 / (1 + (3.0 / v) ** 1.3) for v in volumes]}))
    return study, folder, args


def _analytic_interior_dose_Gy(study, label: int, name: str) -> float:
    """Local deposition inside the organ: C₀/λ_eff · E · 1.602e-13 J/MeV · 3600 s/h / (ρ · 1e-3 kg/g)."""
    from DeepDoseLib.nuclides import get_nuclide
    from DeepDoseLib.tissue import hu_to_density

    c0, lam = study.kinetics[label]
    rho = float(hu_to_density(np.array([HU[name]], np.float32))[0])
    return c0 / lam * get_nuclide("Lu177").charged_energy_per_decay_MeV * 1.602176634e-13 * 3600.0 / (rho * 1e-3)


def test_therapy_command_dotatate_study(dotatate_files, tmp_path):
    study, folder, args = dotatate_files
    before = sha256_of_tree(folder)
    out = tmp_path / "therapy"
    proc = run_deepdose("therapy", *args, "--nuclide", "Lu177", "--method", "led", "--labels",
                        folder / "labels.nii.gz", "--label-names", folder / "names.json", "--calibration-uncertainty",
                        "0.05", "--recovery-curve", folder / "recovery.json", "--recovery-for", "lesion_liver",
                        *[x for k in range(4) for x in ("--timepoint-labels", folder / f"labels_{k}.nii.gz")],
                        "--out", out, "--quiet")
    assert sha256_of_tree(folder) == before  # inputs never written
    for name in ("absorbed_dose_Gy.nii.gz", "bed_Gy.nii.gz", "eqd2_Gy.nii.gz", "structures.tsv", "report.html",
                 "time_activity.tsv", "registration.tsv"):
        assert (out / name).is_file(), name
    for k, hours in enumerate(("4", "24", "96", "168"), start=1):
        assert (out / "timepoints" / f"tp{k}_{hours}h_dose_rate_mGy_per_h.nii.gz").is_file()
    rows = {r["structure"]: r for r in csv.DictReader((out / "structures.tsv").open(), delimiter="\t")}
    assert set(rows) == set(study.label_names.values())
    for column in ("structure", "mass_g", "mean_Gy", "u_mean_Gy", "bed_Gy", "eqd2_Gy"):
        assert column in next(iter(rows.values()))
    # The liver's median voxel lies in its interior: it receives the analytic local-deposition dose (1 %), and the
    # fitted effective half-life is the tracer table's 72.5 h (5 %; measured −2 %: interpolation of the shifted scans).
    liver = rows["liver"]
    assert float(liver["D50_Gy"]) == pytest.approx(_analytic_interior_dose_Gy(study, 1, "liver"), rel=0.01)
    assert float(liver["effective_half_life_h"]) == pytest.approx(72.5, rel=0.05)
    # Organ means lie below the interior value by the partial-volume loss at their edges (4.8 mm voxels).
    for label, name in study.label_names.items():
        ratio = float(rows[name]["mean_Gy"]) / _analytic_interior_dose_Gy(study, label, name)
        if name != "lesion_liver":
            assert 0.8 < ratio < 1.0, (name, ratio)
        assert float(rows[name]["u_mean_Gy"]) > 0.05 * float(rows[name]["mean_Gy"])  # ≥ the calibration's 5 %
        assert float(rows[name]["bed_Gy"]) > float(rows[name]["mean_Gy"])
    lesion = rows["lesion_liver"]
    assert 0.6 < float(lesion["recovery_coefficient"]) < 0.85
    assert float(lesion["u_rel_recovery"]) >= 0
    kidney = rows["kidney_left"]
    assert (float(kidney["alpha_beta_Gy"]), float(kidney["repair_half_time_h"])) == (2.6, 2.8)
    # its BED is that of its fitted mono-exponential: BED = D (1 + D λ/((λ + μ) α/β)), λ = ln2/T_eff, μ = ln2/2.8 h
    D, T_eff = float(kidney["mean_Gy"]), float(kidney["effective_half_life_h"])
    assert kidney["fit_model"] == "mono"
    assert float(kidney["bed_Gy"]) == pytest.approx(D * (1 + D * (1 / T_eff) / ((1 / T_eff + 1 / 2.8) * 2.6)),
                                                    rel=1e-4)
    assert float(kidney["eqd2_Gy"]) == pytest.approx(float(kidney["bed_Gy"]) / (1 + 2 / 2.6), rel=1e-4)
    registration = list(csv.DictReader((out / "registration.tsv").open(), delimiter="\t"))
    for row in registration[1:]:  # every moved scan: body and organ-mask overlap better after registration
        assert float(row["body_dice_after"]) > float(row["body_dice_before"])
        before = dict(x.split(":") for x in row["label_dice_before"].split())
        after = dict(x.split(":") for x in row["label_dice_after"].split())
        assert float(after["kidney_left"]) > float(before["kidney_left"]) and float(after["kidney_left"]) > 0.85
    report = (out / "report.html").read_text()
    assert 'alt="time-activity curves"' in report and "Uncertainty budget" in report
    assert "recovery coefficient" in report
    dose = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "absorbed_dose_Gy.nii.gz")))
    assert float(dose.max()) == pytest.approx(float(lesion["D2_Gy"]), rel=0.3)  # the hottest voxels: the lesion
    assert "therapy study: 4 time point(s)" in proc.stderr


def test_therapy_command_bad_input_exits_2(dotatate_files, tmp_path, capsys):
    # in-process (the same main() as the console script; a subprocess would only add the start-up time)
    from DeepDoseLib.cli import main

    _, folder, args = dotatate_files
    args = [str(a) for a in args]
    code = main(["therapy", *args[:8], "--nuclide", "Lu177", "--method", "led", "--reference", "5",
                 "--out", str(tmp_path / "x")])
    assert code == 2 and "--reference 5" in capsys.readouterr().err
    code = main(["therapy", *args[:4], "--nuclide", "Lu177", "--method", "led", "--pet-unit", "counts",
                 "--out", str(tmp_path / "y"), "--quiet"])
    assert code == 2 and "calibration factor" in capsys.readouterr().err
    assert not (tmp_path / "y" / "absorbed_dose_Gy.nii.gz").exists()
