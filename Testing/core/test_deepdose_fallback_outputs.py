"""Where and how much Deep-dose fell back to its density-scaled VSV baseline reaches every output (issue 19, item 2):
the method's result (DoseResult.fallback), the organ table (fallback_percent / fallback_pct), the report (column and
note) and the command line (--fallback-mask). A tiny exported U-Net (random head) on a 4 mm water box with a block at
2000× the median activity: the block and its 12 mm margin fall back, a far organ does not."""
from __future__ import annotations

import csv
import logging

import numpy as np
import pytest
import SimpleITK as sitk

from deepdose_helpers import FALLBACK_FAR as FAR
from deepdose_helpers import FALLBACK_HOT as HOT
from deepdose_helpers import hot_block_case

from DeepDoseLib.analysis.organs import organ_statistics, organ_table_rows, write_organ_table
from DeepDoseLib.deepdose_rule import FALLBACK_NOTE_PREFIX
from DeepDoseLib.dose import FALLBACK_QUANTITY

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # Testing/conftest.py


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """Files of the case: model, CT (water), PET, labels (1 = the hot block, 2 = a far organ) and names."""
    folder = tmp_path_factory.mktemp("fallback")
    model, ct, pet, labels = hot_block_case(folder)
    paths = dict(model=model, ct=folder / "ct.nii.gz", pet=folder / "pet.nii.gz", labels=folder / "labels.nii.gz",
                 names=folder / "names.json")
    for image, key in ((ct, "ct"), (pet, "pet"), (labels, "labels")):
        sitk.WriteImage(image, str(paths[key]))
    paths["names"].write_text('{"1": "hot block", "2": "far organ"}')
    return paths


def _study(case, method="deepdose"):
    from DeepDoseLib.dose import MethodOptions
    from DeepDoseLib.study import read_study_files, run_study

    request = read_study_files(case["ct"], case["pet"], "Ga68", labels=case["labels"], label_names=case["names"],
                               method=method, options=MethodOptions(model_path=str(case["model"]), flips=0,
                                                                     min_tile_scale=0.0),
                               device="cpu")
    return run_study(request)


@pytest.fixture(scope="module")
def study(case):
    return _study(case)


def test_the_dose_result_carries_the_mask_where_the_output_is_the_baseline(study):
    fallback = study.dose.fallback
    assert fallback is not None and fallback.GetPixelID() == sitk.sitkUInt8
    assert fallback.GetMetaData("DeepDose.quantity") == FALLBACK_QUANTITY == "fallback to the physics baseline (1)"
    assert fallback.GetSize() == study.dose.dose_rate.GetSize()
    assert fallback.GetSpacing() == study.dose.dose_rate.GetSpacing()
    mask = sitk.GetArrayFromImage(fallback)
    assert set(np.unique(mask)) == {0, 1}
    assert mask[HOT].all() and not mask[FAR].any()
    # the note that says how much fell back counts exactly these voxels
    note = next(n for n in study.dose.notes if n.startswith(FALLBACK_NOTE_PREFIX))
    assert f" in {int(mask.sum())} voxels " in note


def test_organ_rows_give_the_share_of_each_structure_that_fell_back(study, tmp_path):
    rows = {r.name: r for r in study.organ_rows}
    assert rows["hot block"].fallback_percent == pytest.approx(100.0)
    assert rows["far organ"].fallback_percent == 0.0
    path = write_organ_table(study.organ_rows, tmp_path / "organs.tsv")
    table = list(csv.DictReader(open(path), delimiter="\t"))
    assert [float(r["fallback_pct"]) for r in table] == pytest.approx([100.0, 0.0])


def test_fallback_percent_is_weighted_by_the_voxel_fractions():
    """A label map on a grid twice as fine: half of a dose voxel's sub-voxels in the organ give it a fraction ½."""
    dose = sitk.GetImageFromArray(np.ones((4, 4, 4), np.float32))
    dose.SetSpacing((2.0, 2.0, 2.0))
    fine = np.zeros((8, 8, 8), np.uint8)
    fine[0:2, 0:2, 0:2] = 1  # dose voxel (0, 0, 0) whole
    fine[0:2, 0:2, 2:3] = 1  # half of dose voxel (0, 0, 1)
    labels = sitk.GetImageFromArray(fine)
    labels.SetSpacing((1.0, 1.0, 1.0))
    labels.SetOrigin((-0.5, -0.5, -0.5))  # voxel edges of both grids coincide
    fallback = np.zeros((4, 4, 4), bool)
    fallback[0, 0, 1] = True  # only the half voxel fell back: ½ of 1.5 voxels
    row = organ_statistics(dose, labels, {1: "organ"}, fallback=fallback, oversampling=2)[0]
    assert row.volume_mL == pytest.approx(1.5 * 8e-3)
    assert row.fallback_percent == pytest.approx(100.0 * 0.5 / 1.5)
    # a 0/1 image on the dose grid is the same mask
    image = sitk.GetImageFromArray(fallback.astype(np.uint8))
    image.CopyInformation(dose)
    assert organ_statistics(dose, labels, {1: "organ"}, fallback=image, oversampling=2)[0].fallback_percent == \
        pytest.approx(row.fallback_percent)
    # without a mask: no share and no column
    plain = organ_statistics(dose, labels, {1: "organ"}, oversampling=2)
    assert plain[0].fallback_percent is None and "fallback_pct" not in organ_table_rows(plain)[0]


def test_methods_without_a_fallback_have_none(case):
    study = _study(case, method="led")
    assert study.dose.fallback is None
    assert all(r.fallback_percent is None for r in study.organ_rows)


def test_report_shows_the_column_and_the_methods_note(study, tmp_path):
    from DeepDoseLib.study import write_study_report

    html = write_study_report(study, tmp_path).read_text()
    assert "Fallback to baseline<br>[%]" in html
    assert 'data-field="fallback_percent" data-value="100.0"' in html
    note = next(n for n in study.dose.notes if n.startswith(FALLBACK_NOTE_PREFIX))
    assert html.count(note) == 2  # with the processing notes and above the organ table
    assert html.index(note, html.index('id="organs"')) < html.index('<table class="data organs"')


def test_command_line_writes_the_fallback_mask(case, tmp_path, caplog, capsys):
    from DeepDoseLib.cli import main

    common = ["dose", "--ct", str(case["ct"]), "--pet", str(case["pet"]), "--nuclide", "Ga68", "--device", "cpu",
              "--quiet", "--labels", str(case["labels"]), "--label-names", str(case["names"])]
    mask, table = tmp_path / "fallback.nrrd", tmp_path / "organs.csv"
    assert main(common + ["--method", "deepdose", "--model", str(case["model"]), "--deepdose-flips", "0",
                          "--deepdose-min-tile-scale", "0", "--out", str(tmp_path / "dose.nrrd"), "--fallback-mask", str(mask),
                          "--organ-table", str(table)]) == 0
    image = sitk.ReadImage(str(mask))
    assert image.GetPixelID() == sitk.sitkUInt8 and image.GetSpacing() == (4.0, 4.0, 4.0)
    array = sitk.GetArrayFromImage(image)
    assert array[HOT].all() and not array[FAR].any()
    assert "fallback_pct" in open(table).readline()
    # a method without a fallback: warned, not written
    with caplog.at_level(logging.WARNING, logger="DeepDoseLib.study"):
        assert main(common + ["--method", "led", "--out", str(tmp_path / "led.nrrd"),
                              "--fallback-mask", str(tmp_path / "led_fallback.nrrd")]) == 0
    assert not (tmp_path / "led_fallback.nrrd").exists()
    assert any("no fallback" in r.getMessage() for r in caplog.records)
    # the mask is an output like the others: never an input, never over an existing file without --overwrite
    capsys.readouterr()
    assert main(common + ["--method", "led", "--out", str(tmp_path / "led2.nrrd"),
                          "--fallback-mask", str(case["ct"])]) != 0
    assert "--fallback-mask" in capsys.readouterr().err and not (tmp_path / "led2.nrrd").exists()
