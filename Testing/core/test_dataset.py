"""Dataset builder: anatomy-disjoint splits, file layout and metadata, resume after interruption,
determinism, the `deepdose dataset` command, and one tiny case with the Monte Carlo ground truth.

Most tests use the LED method as a STAND-IN dose engine (engine="led"): they test the builder's
layout and resume logic, not the ground truth, and run in seconds."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from DeepDoseLib.dataset import DatasetConfig, build_dataset, plan_cases
from DeepDoseLib.errors import DeepDoseInputError

FILES = ("ct", "pet", "true_activity", "density", "labels", "dose_rate", "dose_rate_uncertainty")


def _config(**kw) -> DatasetConfig:
    base = dict(n_cases=3, tracers=["Ga68-PSMA-11", "Lu177-DOTATATE"], spacing_mm=8.0, n_decays=1000, seed=5,
                val_fraction=0.34, test_fraction=0.34, engine="led")
    base.update(kw)
    return DatasetConfig(**base)


def test_plan_splits_are_anatomy_disjoint_and_deterministic():
    config = DatasetConfig(n_cases=40, tracers=["psma", "dotatate", "rgd"], seed=3, reference_anatomies=True)
    plans = plan_cases(config)
    assert [p.case_id for p in plans] == [p.case_id for p in plan_cases(config)]
    by_split = {s: {p.anatomy_id for p in plans if p.split == s} for s in ("train", "val", "test")}
    assert not (by_split["train"] & by_split["val"]) and not (by_split["train"] & by_split["test"])
    assert not (by_split["val"] & by_split["test"])
    procedural = [p for p in plans if p.source == "procedural"]
    assert len(procedural) == 40 and sum(p.split == "test" for p in procedural) == 4
    assert all(p.family == "heldout" for p in procedural if p.split == "test")
    assert all(p.family == "standard" for p in procedural if p.split != "test")
    real = [p for p in plans if p.source != "procedural"]
    assert {p.source for p in real} == {"icrp110_af", "totalsegmentator"} and all(p.split == "test" for p in real)
    assert {p.tracer for p in procedural} == {"Ga68-PSMA-11", "Ga68-DOTATATE", "Ga68-NOTA-RGD"}
    assert len({p.seed for p in procedural}) == 40  # one anatomy per case


def test_plan_of_truncated_and_block_cases():
    config = DatasetConfig(n_cases=20, seed=3, truncated_fov_fraction=0.3, block_fraction=0.25)
    plans = plan_cases(config)
    assert plans == plan_cases(config)
    blocks = [p for p in plans if p.source == "block"]
    truncated = [p for p in plans if p.fov_mm > 0]
    assert len(blocks) == 5 and len(truncated) == 6 and not {p.case_id for p in blocks} & {p.case_id for p in truncated}
    assert all(60.0 <= p.fov_mm <= 200.0 and p.source == "procedural" for p in truncated)
    short = plan_cases(DatasetConfig(n_cases=20, seed=3, truncated_fov_fraction=0.3, truncated_fov_mm=(60, 90)))
    assert all(60.0 <= p.fov_mm <= 90.0 for p in short if p.fov_mm > 0)
    # the whole-torso cases of a plain plan keep their ids, splits and seeds (old datasets stay valid)
    plain = {p.case_id: p for p in plan_cases(DatasetConfig(n_cases=20, seed=3))}
    assert all(plain[p.case_id].seed == p.seed and plain[p.case_id].split == p.split for p in plans)


def test_block_phantom_is_uniform_per_region():
    from DeepDoseLib.phantoms.blocks import INSERT_MATERIALS, generate_block_phantom
    from DeepDoseLib.phantoms.labels import LABEL_VALUES

    for seed in range(6):
        block = generate_block_phantom(np.random.default_rng(seed), 8.0)
        assert block.hu.shape == block.density.shape == block.activity.shape == block.labels.shape
        assert (block.activity >= 0).all() and block.activity.max() > 0
        for value in np.unique(block.labels):
            region = block.labels == value
            if value == 0:  # the air around the block: no activity
                assert (block.activity[region] == 0).all() and (block.density[region] < 0.01).all()
                continue
            assert np.ptp(block.activity[region]) <= 1e-6 * block.activity[region].max()  # exactly uniform
            lo, hi = {LABEL_VALUES[n]: r for n, r, _ in INSERT_MATERIALS.values()}.get(int(value), (0.98, 1.08))
            rho = block.density[region]
            assert lo - 0.02 <= rho.min() and rho.max() <= hi + 0.02, (seed, value)  # through the HU round trip
        assert set(block.label_names) == {int(v) for v in np.unique(block.labels)}


def test_truncated_and_block_cases_are_built(tmp_path):
    out = tmp_path / "d"
    build_dataset(out, _config(n_cases=3, val_fraction=0.0, test_fraction=0.0, truncated_fov_fraction=0.34,
                               block_fraction=0.34), progress=False)
    for case in json.loads((out / "dataset.json").read_text())["cases"]:
        folder = out / "cases" / case["case_id"]
        meta = json.loads((folder / "case.json").read_text())
        ct = sitk.ReadImage(str(folder / "ct.nii.gz"))
        for name in FILES:
            image = sitk.ReadImage(str(folder / f"{name}.nii.gz"))
            assert image.GetSize() == ct.GetSize()
            np.testing.assert_allclose(image.GetOrigin(), ct.GetOrigin())
        if case["fov_mm"] > 0:  # a slab of the torso, in place
            fov = meta["case"]["truncated_fov"]
            assert ct.GetSize()[2] == round(case["fov_mm"] / 8.0) == fov["fov_slices"][1] - fov["fov_slices"][0]
            assert fov["original_slices"] > ct.GetSize()[2]
        elif case["source"] == "block":
            assert meta["case"]["source"] == "block" and meta["case"]["pet"].startswith("ideal")
    # an index written before these options existed is the same configuration with fractions 0
    index = json.loads((out / "dataset.json").read_text())
    plain = tmp_path / "plain"
    build_dataset(plain, _config(n_cases=1), progress=False)
    old = json.loads((plain / "dataset.json").read_text())
    for key in ("truncated_fov_fraction", "block_fraction", "truncated_fov_mm"):
        del old["config"][key]
    (plain / "dataset.json").write_text(json.dumps(old))
    assert build_dataset(plain, _config(n_cases=1), progress=False).built == []
    assert index["config"]["block_fraction"] == 0.34


def test_config_is_checked():
    with pytest.raises(DeepDoseInputError, match="tracer"):
        _config(tracers=["nope"])
    with pytest.raises(DeepDoseInputError, match="fractions"):
        _config(val_fraction=0.6, test_fraction=0.5)
    with pytest.raises(DeepDoseInputError, match="engine"):
        _config(engine="magic")
    with pytest.raises(DeepDoseInputError, match="block"):
        _config(truncated_fov_fraction=0.7, block_fraction=0.5)
    with pytest.raises(DeepDoseInputError, match="field of view"):
        _config(truncated_fov_mm=(100, 50))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("dataset")
    summary = build_dataset(out, _config(), progress=False)
    return out, summary


def test_layout_and_metadata(built):
    out, summary = built
    index = json.loads((out / "dataset.json").read_text())
    assert index["config"]["seed"] == 5 and index["versions"]["deepdose"] and index["versions"]["generator"]
    assert sorted(summary.built) == [c["case_id"] for c in index["cases"]]
    assert sum(len(v) for v in index["splits"].values()) == 3
    for case in index["cases"]:
        folder = out / "cases" / case["case_id"]
        images = {name: sitk.ReadImage(str(folder / f"{name}.nii.gz")) for name in FILES}
        ref = images["ct"]
        for name, image in images.items():  # one grid for everything
            assert image.GetSize() == ref.GetSize() and image.GetSpacing() == (8.0, 8.0, 8.0), name
            np.testing.assert_allclose(image.GetOrigin(), ref.GetOrigin())
        assert images["ct"].GetPixelID() == sitk.sitkInt16 and images["labels"].GetPixelID() == sitk.sitkUInt8
        meta = json.loads((folder / "case.json").read_text())
        assert meta["plan"]["seed"] == case["seed"] and meta["case"]["seed"] == case["seed"]
        assert meta["dose"]["engine"].startswith("led") and meta["units"]["dose_rate"] == "mGy/h"
        assert meta["case"]["activity"]["tracer"] == case["tracer"]
        names = json.loads((folder / "labels.json").read_text())
        labels = sitk.GetArrayFromImage(images["labels"])
        assert {int(v) for v in np.unique(labels)} <= {int(k) for k in names}
        dose = sitk.GetArrayFromImage(images["dose_rate"])
        assert dose.max() > 0 and np.isfinite(dose).all()
        assert set(meta["timing_s"]) == {"phantom", "dose", "write"}


def test_resume_rebuilds_only_missing_cases_identically(built, tmp_path):
    out, _ = built
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    victim = copy / "cases" / "case_00001"
    (victim / "case.json").unlink()  # an interrupted write: the case is incomplete
    (copy / "cases" / "case_00002.partial").mkdir()  # debris of an interrupted build
    before = {p: p.stat().st_mtime_ns for p in (copy / "cases" / "case_00000").iterdir()}
    summary = build_dataset(copy, _config(), progress=False)
    assert summary.built == ["case_00001"] and sorted(summary.skipped) == ["case_00000", "case_00002"]
    assert {p: p.stat().st_mtime_ns for p in (copy / "cases" / "case_00000").iterdir()} == before
    assert not (copy / "cases" / "case_00002.partial").exists()
    for name in FILES:  # the rebuilt case is identical to the original (every case follows from its seed)
        a = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "cases" / "case_00001" / f"{name}.nii.gz")))
        b = sitk.GetArrayFromImage(sitk.ReadImage(str(victim / f"{name}.nii.gz")))
        np.testing.assert_array_equal(a, b)
    assert build_dataset(copy, _config(), progress=False).built == []
    with pytest.raises(DeepDoseInputError, match="another configuration"):
        build_dataset(copy, _config(seed=6), progress=False)


def test_dataset_command(tmp_path, capsys):
    from DeepDoseLib.cli import main

    rc = main(["dataset", "--n", "1", "--tracer", "rgd", "--out", str(tmp_path / "d"), "--spacing-mm", "8",
               "--decays", "1e3", "--engine", "led", "--quiet"])
    assert rc == 0 and "1 case(s) built" in capsys.readouterr().out
    assert (tmp_path / "d" / "cases" / "case_00000" / "case.json").is_file()
    assert main(["dataset", "--n", "1", "--tracer", "nope", "--out", str(tmp_path / "e"), "--quiet"]) == 2


@pytest.mark.slow
def test_one_case_with_monte_carlo_ground_truth(tmp_path):
    pytest.importorskip("DeepDoseLib.mc")
    config = _config(n_cases=1, tracers=["Ga68-PSMA-11"], n_decays=20_000, engine="mc", n_batches=5,
                     val_fraction=0.0, test_fraction=0.0)
    build_dataset(tmp_path, config, device="cpu", progress=False)
    folder = tmp_path / "cases" / "case_00000"
    meta = json.loads((folder / "case.json").read_text())
    assert meta["dose"]["engine"] == "mc" and meta["dose"]["n_decays"] == 20_000
    dose = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "dose_rate.nii.gz")))
    unc = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "dose_rate_uncertainty.nii.gz")))
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "labels.nii.gz")))
    activity = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "true_activity.nii.gz")))
    density = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "density.nii.gz")))
    from DeepDoseLib.methods import led_dose_rate
    from DeepDoseLib.nuclides import get_nuclide

    led = led_dose_rate(activity, density, get_nuclide("Ga68"), device="cpu")
    kidneys = np.isin(labels, [14, 15, 16, 17])
    ratio = float(dose[kidneys].mean() / led[kidneys].mean())
    # kidney mean: positrons mostly local at 8 mm voxels (some escape: range ≈ 3 mm), plus annihilation
    # photons from the whole body (≈ +10–30 %); 2·10⁴ decays leave ≈ 5 % noise on the organ mean
    assert 0.6 <= ratio <= 1.6, ratio
    assert np.isfinite(unc).all() and 0 < np.median(unc[kidneys]) < 1
