"""``deepdose batch`` on a real Dask LocalCluster (2 worker processes): 6 tiny studies with one bad
input, re-runs that compute nothing, a worker killed mid-study, the dataset's cases as Dask tasks.

The studies are 6³ voxels with the LED method (deterministic), so results can be compared exactly with
a serial run of the same pipeline in this process."""
from __future__ import annotations

import csv
import os
import shutil

import numpy as np
import pytest
import SimpleITK as sitk

pytest.importorskip("distributed")

from cohort_helpers import die_mid_study_once, write_study  # noqa: E402

from DeepDoseLib.cli import main  # noqa: E402
from DeepDoseLib.cohort.batch import run_cohort  # noqa: E402
from DeepDoseLib.cohort.hashing import study_inputs_sha256  # noqa: E402
from DeepDoseLib.cohort.manifest import read_manifest  # noqa: E402
from DeepDoseLib.cohort.pipeline import DOSE_RATE_FILE, StudySettings, compute_study  # noqa: E402
from DeepDoseLib.cohort.summary import modified_z_scores, structure_distributions  # noqa: E402
from DeepDoseLib.cohort.tasks import MARKER  # noqa: E402
from DeepDoseLib.errors import DeepDoseInputError  # noqa: E402

BAD = "p3"
NEGATIVE_MESSAGE = "The PET contains 1 negative voxel(s)"


@pytest.fixture(scope="module")
def cluster():
    """A real local Dask cluster of 2 single-threaded worker processes, shared by the tests of this file."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        yield cluster, client


def _cohort(root, n=6):
    """n studies p0..p{n-1} (p3 has a negative PET voxel) and their manifest (relative paths)."""
    lines = ["study_id,ct,pet,nuclide,labels,label_names"]
    for i in range(n):
        write_study(root / f"p{i}", i, negative_voxel=(f"p{i}" == BAD))
        lines.append(f"p{i},p{i}/ct.nrrd,p{i}/pet.nrrd,Lu177,p{i}/labels.nrrd,p{i}/labels.json")
    manifest = root / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def _tsv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _markers_mtime(out):
    return {p.parent.name: p.stat().st_mtime_ns for p in out.glob(f"*/{MARKER}")}


def test_manifest_is_validated_with_line_numbers(tmp_path):
    write_study(tmp_path / "a", 0)
    cases = {
        "study_id,ct,pet\na,a/ct.nrrd,a/pet.nrrd\n": "missing column(s) nuclide",
        "study_id,ct,pet,nuclide,nuclid\na,a/ct.nrrd,a/pet.nrrd,Lu177,x\n": "unknown column(s) nuclid",
        "study_id,ct,pet,nuclide\n# comment\na,a/ct.nrrd,a/pet.nrrd,Lu178\n": "manifest.csv:3: Unknown radionuclide",
        "study_id,ct,pet,nuclide,method\na,a/ct.nrrd,a/pet.nrrd,Lu177,magic\n": "unknown method 'magic'",
        "study_id,ct,pet,nuclide\n../x,a/ct.nrrd,a/pet.nrrd,Lu177\n": "must be a folder name",
        "study_id,ct,pet,nuclide\na,a/ct.nrrd,a/pet.nrrd,Lu177\na,a/ct.nrrd,a/pet.nrrd,Lu177\n": "lines 2, 3",
        "study_id,ct,pet,nuclide,time_h\na,a/ct.nrrd,a/pet.nrrd,Lu177,soon\n": "is not a number of hours",
        "study_id,ct,pet,nuclide,label_names\na,a/ct.nrrd,a/pet.nrrd,Lu177,a/labels.json\n": "needs a labels map",
        "study_id,ct,pet,nuclide\n": "no study",
    }
    for text, message in cases.items():
        (tmp_path / "manifest.csv").write_text(text)
        with pytest.raises(DeepDoseInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
            read_manifest(tmp_path / "manifest.csv")
    (tmp_path / "manifest.csv").write_text("study_id,ct,pet,nuclide,time_h,method\n"
                                           "a,a/ct.nrrd,a/pet.nrrd,Lu-177,4,\na,a/ct.nrrd,a/pet.nrrd,177Lu,24,vsv\n"
                                           "b,a/ct.nrrd,a/pet.nrrd,Ga68,,\n")
    rows = read_manifest(tmp_path / "manifest.csv", default_method="led")
    assert [(r.key, r.nuclide, r.method, r.time_h) for r in rows] == [
        ("a/t4h", "Lu177", "led", 4.0), ("a/t24h", "Lu177", "vsv", 24.0), ("b", "Ga68", "led", None)]
    assert rows[0].ct == (tmp_path / "a" / "ct.nrrd").resolve()  # relative to the manifest's folder


def test_inputs_hash_follows_contents_not_names(tmp_path):
    manifest = _cohort(tmp_path, n=1)
    row = read_manifest(manifest)[0]
    settings = StudySettings()
    digest = study_inputs_sha256(row, settings)
    moved = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "p0", moved)
    (moved / "ct.nrrd").rename(moved / "CT_renamed.nrrd")
    same = row.__class__(**{**row.__dict__, "ct": moved / "CT_renamed.nrrd", "pet": moved / "pet.nrrd"})
    assert study_inputs_sha256(same, settings) == digest
    assert study_inputs_sha256(row, StudySettings(include_photons=True)) != digest  # other numbers
    assert study_inputs_sha256(row, StudySettings(device="cpu")) == digest  # same numbers
    image = sitk.ReadImage(str(moved / "pet.nrrd"))
    sitk.WriteImage(image * 1.01, str(moved / "pet.nrrd"))
    assert study_inputs_sha256(same, settings) != digest
    (moved / "pet.nrrd").unlink()
    with pytest.raises(DeepDoseInputError, match="pet: .* does not exist"):
        study_inputs_sha256(same, settings)


def test_modified_z_scores_flag_the_outlier():
    values = [1.0, 1.1, 0.9, 1.05, 0.95, 5.0]
    # by hand: median 1.025, |x - median| = .025 .075 .125 .025 .075 3.975 -> MAD 0.075
    np.testing.assert_allclose(modified_z_scores(values), 0.6745 * (np.array(values) - 1.025) / 0.075)
    records = [{"status": "done", "key": f"s{i}", "nuclide": "Lu177", "method": "led",
                "structures": [{"structure": "kidney", "mean_dose_rate_mGy_per_h": v}]} for i, v in enumerate(values)]
    (group,) = structure_distributions(records)
    assert [k for k, _, _ in group.outliers] == ["s5"]
    assert structure_distributions(records[:4])[0].outliers == []  # too few studies to judge
    assert np.all(modified_z_scores([2.0] * 5) == 0)


def test_batch_six_studies_one_bad_then_reruns_compute_only_what_changed(cluster, tmp_path, capsys):
    cluster_, _ = cluster
    manifest = _cohort(tmp_path / "studies")
    out = tmp_path / "out"
    command = ["batch", str(manifest), "--out", str(out), "--scheduler", cluster_.scheduler_address, "--quiet"]

    assert main(command) == 1  # one study failed
    stdout = capsys.readouterr().out
    assert "6 studies: 5 done (5 computed now, 0 already done), 1 failed" in stdout
    rows = _tsv(out / "cohort.tsv")
    status = {r["study_id"]: r["status"] for r in rows}
    assert status == {"p0": "done", "p1": "done", "p2": "done", "p3": "failed", "p4": "done", "p5": "done"}
    (failed,) = [r for r in rows if r["study_id"] == BAD]
    assert failed["error"].startswith(NEGATIVE_MESSAGE) and failed["structure"] == ""
    assert not (out / BAD).exists()  # nothing half-written for the failed study
    assert {r["structure"] for r in rows if r["status"] == "done"} == {"liver", "kidney"}
    for study in ("p0", "p1", "p2", "p4", "p5"):
        files = {p.name for p in (out / study).iterdir()}
        assert {"dose_rate_mGy_per_h.nrrd", "organs.tsv", "dvh.tsv", MARKER} <= files
    assert "Distributions per structure" in (out / "cohort_report.html").read_text()
    assert not (out / ".deepdose_partial").exists()

    before = _markers_mtime(out)
    assert main(command) == 1  # the same run again: nothing computed, the failure kept with its message
    assert "5 done (0 computed now, 5 already done), 1 failed" in capsys.readouterr().out
    assert _markers_mtime(out) == before
    assert _tsv(out / "cohort.tsv") == rows

    # moving a study's files (new paths, same contents) changes nothing; new contents are recomputed
    shutil.move(str(tmp_path / "studies" / "p0"), str(tmp_path / "studies" / "moved_p0"))
    manifest.write_text(manifest.read_text().replace("p0/", "moved_p0/"))
    image = sitk.ReadImage(str(tmp_path / "studies" / "p4" / "pet.nrrd"))
    sitk.WriteImage(image * 2.0, str(tmp_path / "studies" / "p4" / "pet.nrrd"))
    assert main(command) == 1
    assert "5 done (1 computed now, 4 already done), 1 failed" in capsys.readouterr().out
    after = _markers_mtime(out)
    assert after["p0"] == before["p0"] and after["p4"] != before["p4"]
    def p4_means(table):
        return {r["structure"]: float(r["mean_dose_rate_mGy_per_h"]) for r in table if r["study_id"] == "p4"}

    new, old = p4_means(_tsv(out / "cohort.tsv")), p4_means(rows)
    assert new == pytest.approx({k: 2 * v for k, v in old.items()}, rel=1e-5)  # LED is linear in activity

    # a folder that this tool did not write is never replaced: that study fails with the reason
    shutil.rmtree(out / "p5")
    (out / "p5").mkdir()
    (out / "p5" / "notes.txt").write_text("a physicist's notes")
    assert main(command) == 1
    assert "p5: FAILED: " in capsys.readouterr().out
    assert (out / "p5" / "notes.txt").read_text() == "a physicist's notes"


def test_worker_killed_mid_study_loses_nothing(cluster, tmp_path):
    cluster_, client = cluster
    rows = read_manifest(_cohort(tmp_path / "studies"))
    out = tmp_path / "run" / "out"
    pids_before = set(client.run(os.getpid).values())

    result = run_cohort(rows, out, StudySettings(), scheduler=cluster_.scheduler_address, retries=0,
                        progress=False, task=die_mid_study_once)

    dead = int((tmp_path / "run" / "died.pid").read_text())
    assert dead in pids_before  # a worker of this cluster really died, after computing p2 ...
    client.wait_for_workers(2, timeout=60)
    assert dead not in set(client.run(os.getpid).values())  # ... and its nanny started a new one
    assert sorted(result.computed) == ["p0", "p1", "p2", "p4", "p5"] and result.failed == [BAD]
    assert not (out / ".deepdose_partial").exists()  # the dead worker's temporary folder is cleaned up
    for row in rows:
        if row.study_id == BAD:
            continue
        serial = compute_study(row, tmp_path / "serial" / row.study_id, StudySettings())  # in this process
        expected = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "serial" / row.study_id / DOSE_RATE_FILE)))
        got = sitk.GetArrayFromImage(sitk.ReadImage(str(out / row.study_id / DOSE_RATE_FILE)))
        np.testing.assert_array_equal(got, expected)  # identical, not merely close
        assert (out / row.study_id / "organs.tsv").read_text() == \
            (tmp_path / "serial" / row.study_id / "organs.tsv").read_text()
        record = next(r for r in result.records if r["key"] == row.key)
        assert record["structures"] == serial["structures"]


def test_dataset_cases_as_dask_tasks_match_the_serial_build(cluster, tmp_path, capsys):
    cluster_, _ = cluster
    from DeepDoseLib.dataset import DatasetConfig, build_dataset

    config = DatasetConfig(n_cases=2, tracers=["Lu177-DOTATATE"], spacing_mm=8.0, n_decays=1000, seed=5,
                           val_fraction=0.0, test_fraction=0.0, engine="led")
    serial = build_dataset(tmp_path / "serial", config, progress=False)
    assert main(["dataset", "--n", "2", "--tracer", "Lu177-DOTATATE", "--spacing-mm", "8", "--decays", "1000",
                 "--seed", "5", "--val-fraction", "0", "--test-fraction", "0", "--engine", "led",
                 "--out", str(tmp_path / "dask"), "--scheduler", cluster_.scheduler_address, "--quiet"]) == 0
    assert "2 case(s) built, 0 already complete" in capsys.readouterr().out
    for case in serial.built:
        for name in ("dose_rate", "ct", "labels"):
            a = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "serial" / "cases" / case / f"{name}.nii.gz")))
            b = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "dask" / "cases" / case / f"{name}.nii.gz")))
            np.testing.assert_array_equal(a, b)
    shutil.rmtree(tmp_path / "dask" / "cases" / serial.built[0])  # resumable exactly as the serial build
    again = build_dataset(tmp_path / "dask", config, progress=False, scheduler=cluster_.scheduler_address)
    assert again.built == [serial.built[0]] and again.skipped == [serial.built[1]]


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_keeps_a_summary(tmp_path):
    """SIGINT to the command's whole process group (what Ctrl-C in a terminal sends) while Monte Carlo
    studies run on a local cluster: exit 130, the worker processes gone, a summary of what finished."""
    import signal
    import subprocess
    import sys
    import threading
    import time

    from conftest import REPO_ROOT

    manifest = _cohort(tmp_path / "studies", n=3)
    out = tmp_path / "out"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "DeepDoseLib", "batch", str(manifest), "--out", str(out),
                             "--workers", "2", "--method", "mc", "--decays", "1e8"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    stderr = []
    reader = threading.Thread(target=lambda: stderr.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while "running 2" not in "".join(stderr) and time.monotonic() < deadline:  # both workers inside a study
        time.sleep(0.2)
    assert "running 2" in "".join(stderr), "".join(stderr)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    reader.join(timeout=5)
    assert "interrupted; finished studies are kept" in "".join(stderr)
    left = subprocess.run(["ps", "-o", "pid=,stat=,args=", "-g", str(proc.pid)], capture_output=True, text=True)
    for _ in range(100):  # no worker (or nanny) process of the group is left (within 10 s)
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("processes left after Ctrl-C:\n" + left.stdout)
    statuses = {r["study_id"]: r["status"] for r in _tsv(out / "cohort.tsv")}
    assert statuses == {"p0": "not run", "p1": "not run", "p2": "not run"}
    assert not any((out / f"p{i}").exists() for i in range(3))


def _resources_held_now():
    from distributed import get_worker

    return dict(get_worker().state.available_resources)


def test_tasks_ask_for_a_gpu_only_where_workers_declare_one(cluster):
    from distributed import Client, LocalCluster

    from DeepDoseLib.cohort.runner import gpu_resources, run_tasks

    assert gpu_resources(cluster[1]) is None  # CPU workers: no restriction, every worker takes the studies
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0",
                      resources={"GPU": 1}) as gpu_cluster, Client(gpu_cluster) as client:
        needs = gpu_resources(client)
        assert needs == {"GPU": 1}
        ((name, held, error),) = run_tasks(client, _resources_held_now, [("a", ())], resources=needs, progress=False)
    assert error is None and held == {"GPU": 0}  # the task held the worker's one GPU while it ran


def test_a_deepdose_study_writes_its_fallback_mask_beside_the_uncertainty(tmp_path):
    """A cohort's Deep-dose study keeps what ``deepdose dose --fallback-mask`` keeps: the 0/1 mask of the voxels
    where the output is the physics baseline, on the PET grid, beside the dose rate and its uncertainty."""
    from cohort_helpers import SHAPE, write_study

    from DeepDoseLib.cohort.manifest import StudyRow
    from DeepDoseLib.cohort.pipeline import DOSE_RATE_FILE, FALLBACK_FILE, StudySettings, compute_study

    cells = write_study(tmp_path / "in", 0)
    row = StudyRow("p0", cells["ct"], cells["pet"], "Ga68", "deepdose", cells["labels"], cells["label_names"])
    done = compute_study(row, tmp_path / "out", StudySettings(device="cpu"))
    assert {DOSE_RATE_FILE, "uncertainty.nrrd", FALLBACK_FILE} <= set(done["outputs"])
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / FALLBACK_FILE)))
    assert mask.shape == SHAPE and set(np.unique(mask)) <= {0, 1}
    led = compute_study(StudyRow("p1", cells["ct"], cells["pet"], "Ga68", "led"), tmp_path / "led",
                        StudySettings(device="cpu"))
    assert FALLBACK_FILE not in led["outputs"]  # a method without a fallback writes none
