"""`deepdose integrate` as a user runs it: dose-rate maps at several time points → absorbed dose [Gy]."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import sha256_of_tree
from conftest import run_deepdose as deepdose

TIMES_H = (4.0, 24.0, 48.0, 96.0)
TEFF_H = 40.0


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """Four mono-exponential dose-rate maps [mGy/h] (T_eff 40 h), a label map and its names."""
    folder = tmp_path_factory.mktemp("series")
    rng = np.random.default_rng(1)
    initial = rng.uniform(0.5, 3.0, (6, 7, 8)).astype(np.float64)
    paths = []
    for t in TIMES_H:
        image = sitk.GetImageFromArray((initial * math.exp(-math.log(2) / TEFF_H * t)).astype(np.float32))
        image.SetSpacing((3.0, 3.0, 4.0))
        image.SetOrigin((10.0, -20.0, 5.0))
        paths.append(folder / f"dose_rate_{t:g}h.nii.gz")
        sitk.WriteImage(image, str(paths[-1]))
    labels = np.zeros(initial.shape, np.uint8)
    labels[1:4, 2:5, 2:6] = 1
    labels[4:, :, :] = 2
    label_image = sitk.GetImageFromArray(labels)
    label_image.CopyInformation(image)
    sitk.WriteImage(label_image, str(folder / "labels.nii.gz"))
    (folder / "names.json").write_text(json.dumps({"1": "kidney", "2": "liver"}))
    return {"maps": paths, "initial": initial, "labels": folder / "labels.nii.gz", "names": folder / "names.json",
            "label_array": labels}


def _map_args(series, times=TIMES_H):
    args = []
    for path, t in zip(series["maps"], times):
        args += ["--dose-rate", path, "--time-h", t]
    return args


def test_integrate_mono_gives_analytic_dose_in_gray_with_organ_table(series, tmp_path):
    before = sha256_of_tree(series["maps"][0].parent)
    out, table = tmp_path / "dose_Gy.nii.gz", tmp_path / "organs.tsv"
    proc = deepdose("integrate", *_map_args(series), "--nuclide", "Lu177", "--model", "mono", "--out", out,
                    "--labels", series["labels"], "--label-names", series["names"], "--table", table,
                    "--r-squared-out", tmp_path / "r2.nii.gz")
    assert "absorbed dose [Gy] written" in proc.stderr
    assert "%" in proc.stderr  # the tqdm progress bar
    dose = sitk.ReadImage(str(out))
    analytic_Gy = series["initial"] * TEFF_H / math.log(2) / 1000.0
    # float32 files and a least-squares fit: 1e-4 relative
    np.testing.assert_allclose(sitk.GetArrayFromImage(dose), analytic_Gy, rtol=1e-4)
    assert dose.GetSpacing() == (3.0, 3.0, 4.0) and dose.GetOrigin() == (10.0, -20.0, 5.0)
    lines = table.read_text().splitlines()
    header = lines[0].split("\t")
    kidney = dict(zip(header, lines[1].split("\t")))
    assert kidney["organ"] == "kidney" and kidney["model"] == "mono"
    expected = analytic_Gy[series["label_array"] == 1].mean()  # organ-mean curve is mono-exponential too
    assert float(kidney["absorbed_dose_Gy"]) == pytest.approx(expected, rel=1e-3)
    assert float(kidney["half_life_h"]) == pytest.approx(TEFF_H, rel=1e-3)
    assert sha256_of_tree(series["maps"][0].parent) == before  # inputs untouched


def test_integrate_single_time_point_and_physical_models(series, tmp_path):
    out = tmp_path / "stp.nii.gz"
    deepdose("integrate", "--dose-rate", series["maps"][2], "--time-h", 48, "--nuclide", "Lu177", "--model", "stp",
             "--effective-half-life-h", TEFF_H, "--out", out, "--quiet")
    analytic_Gy = series["initial"] * TEFF_H / math.log(2) / 1000.0
    np.testing.assert_allclose(sitk.GetArrayFromImage(sitk.ReadImage(str(out))), analytic_Gy, rtol=1e-5)
    out = tmp_path / "physical.nii.gz"
    deepdose("integrate", "--dose-rate", series["maps"][0], "--time-h", 4, "--nuclide", "Lu177", "--model",
             "physical", "--integrate-from", "reference", "--out", out, "--quiet")
    half_life_h = 6.647 * 24  # ICRP-107 Lu-177
    day0 = series["initial"] * math.exp(-math.log(2) / TEFF_H * 4.0)
    np.testing.assert_allclose(sitk.GetArrayFromImage(sitk.ReadImage(str(out))),
                               day0 * half_life_h / math.log(2) / 1000.0, rtol=2e-4)


def test_integrate_refuses_bad_inputs(series, tmp_path):
    odd = tmp_path / "odd_grid.nii.gz"
    image = sitk.ReadImage(str(series["maps"][1]))
    image.SetSpacing((3.0, 3.0, 5.0))
    sitk.WriteImage(image, str(odd))
    args = ["--dose-rate", series["maps"][0], "--time-h", 4, "--dose-rate", odd, "--time-h", 24]
    proc = deepdose("integrate", *args, "--nuclide", "Lu177", "--out", tmp_path / "x.nii.gz", check=False)
    assert proc.returncode == 2 and "odd_grid.nii.gz" in proc.stderr and "grid" in proc.stderr
    proc = deepdose("integrate", *_map_args(series)[:-2], "--dose-rate", series["maps"][3], "--nuclide", "Lu177",
                    "--out", tmp_path / "x.nii.gz", check=False)
    assert proc.returncode == 2 and "one time per map" in proc.stderr
    proc = deepdose("integrate", *_map_args(series)[:4], "--nuclide", "Lu177", "--model", "bi",
                    "--out", tmp_path / "x.nii.gz", check=False)
    assert proc.returncode == 2 and "at least 3" in proc.stderr
    proc = deepdose("integrate", *_map_args(series), "--nuclide", "Lu177", "--out", series["maps"][0], check=False)
    assert proc.returncode == 2 and "is the input" in proc.stderr
    assert not (tmp_path / "x.nii.gz").exists()
