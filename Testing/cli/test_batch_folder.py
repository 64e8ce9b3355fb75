"""DeepDoseCLI/examples/batch_folder.py: a folder of studies processed as a subprocess (plain Python)."""
from __future__ import annotations

import csv
import importlib.util
import shutil
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

import DeepDoseLib as dd

from conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "DeepDoseCLI" / "examples" / "batch_folder.py"


@pytest.mark.slow
def test_batch_folder_processes_every_study_and_reports_failures(demo_files, tmp_path):
    studies = tmp_path / "studies"
    good = studies / "patient_a"
    good.mkdir(parents=True)
    for key, name in (("ct", "ct.nii.gz"), ("pet", "pet.nii.gz"), ("labels", "labels.nii.gz"),
                      ("label_names", "labels.json")):
        shutil.copy(demo_files[key], good / name)
    no_labels = studies / "patient_b"
    no_labels.mkdir()
    shutil.copy(demo_files["ct"], no_labels / "ct.nii.gz")
    shutil.copy(demo_files["pet"], no_labels / "pet.nii.gz")
    broken = studies / "patient_c"  # a PET without its CT
    broken.mkdir()
    shutil.copy(demo_files["pet"], broken / "pet.nii.gz")
    out = tmp_path / "out"

    proc = subprocess.run([sys.executable, str(SCRIPT), str(studies), str(out), "--nuclide", "Ga68",
                           "--isodose", "20,50,80"], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # one study failed
    assert "3 studies: 2 succeeded, 1 failed" in proc.stdout
    assert "patient_c" in proc.stdout and "FAILED: needs a CT" in proc.stdout

    dose = sitk.ReadImage(str(out / "patient_a" / "dose_rate_mGy_per_h.nrrd"))
    expected = dd.compute_dose_rate(dd.read_ct(demo_files["ct"]).image, dd.read_pet(demo_files["pet"]).image, "Ga68")
    # Same core, same inputs: identical up to float32 summation order.
    np.testing.assert_allclose(sitk.GetArrayFromImage(dose), sitk.GetArrayFromImage(expected), rtol=1e-6)
    with open(out / "patient_a" / "organs.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(demo_files["labels"])))
    present = set(np.unique(labels).tolist()) - {0}
    assert {int(r["label"]) for r in rows} == present
    assert (out / "patient_a" / "dvh.tsv").is_file()
    assert not (out / "patient_b" / "organs.tsv").exists()
    assert not (out / "patient_c").exists() or not any((out / "patient_c").iterdir())

    if importlib.util.find_spec("slicer") is None:
        pytest.skip("the .mrb scene needs Slicer's MRML (pip install slicer-core)")
    from DeepDoseLib.mrml import create_headless_scene, load_scene_bundle, release_headless_scene, run_folders

    for study, segments in (("patient_a", True), ("patient_b", False)):
        scene = create_headless_scene()
        try:
            load_scene_bundle(scene, out / study / ("%s.mrb" % study))
            assert len(run_folders(scene)) == 1
            assert scene.GetNumberOfNodesByClass("vtkMRMLPlotChartNode") == (1 if segments else 0)
            model = scene.GetFirstNodeByClass("vtkMRMLModelNode")
            names = [scene.GetNthNodeByClass(i, "vtkMRMLModelNode").GetName()
                     for i in range(scene.GetNumberOfNodesByClass("vtkMRMLModelNode"))]
            assert any(name.endswith("isodose") for name in names), names
            assert model is not None
        finally:
            release_headless_scene(scene)


def test_batch_folder_bad_arguments(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "missing"), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "is not a folder" in proc.stderr
