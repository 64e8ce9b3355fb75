"""Deep-dose's fallback to its density-scaled VSV baseline in the scene (issue 19, item 2), on the real MRML of
slicer-core: a labelmap node "<dose> fallback (Deep-dose → baseline)" in the run's folder, the share of the tissue,
the method's note in the panel's status line, the organ statistics table's fallback column, in-process and through
the CLI process. A tiny exported U-Net (random head) on a 4 mm water box with a block at 2000× the median activity:
the block and its 12 mm margin fall back, a far organ does not."""
from __future__ import annotations

import os
import types

import numpy as np
import pytest
import SimpleITK as sitk

slicer = pytest.importorskip("slicer", reason="MRML tests need `slicer` (Slicer or pip slicer-core)")

from DeepDoseLib.deepdose_rule import FALLBACK_NOTE_PREFIX  # noqa: E402
from DeepDoseLib.dose import FALLBACK_QUANTITY, MethodOptions  # noqa: E402
from DeepDoseLib.mrml import (  # noqa: E402
    array_from_volume_node,
    build_dosimetry_outputs,
    folder_nodes,
    run_dosimetry,
    segmentation_from_labels,
    table_column,
    volume_node_from_image,
)

from testing_modules import load_testing_module  # noqa: E402

# the tiny U-Net and the water box with the hot block of the core tests
HELPERS = load_testing_module("core/deepdose_helpers.py", "deepdose_helpers_for_mrml")
SHAPE, HOT, FAR = HELPERS.FALLBACK_SHAPE, HELPERS.FALLBACK_HOT, HELPERS.FALLBACK_FAR
NAMES = {1: "hot block", 2: "far organ"}


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """(model path, CT [HU], PET [Bq/mL], labels) of the water box with the hot block."""
    return HELPERS.hot_block_case(tmp_path_factory.mktemp("m"))


def _nodes(scene, case):
    _model, ct, pet, labels = case
    return (volume_node_from_image(scene, ct, "CT"), volume_node_from_image(scene, pet, "PET"),
            segmentation_from_labels(scene, labels, NAMES, "Organs"))


def _check_fallback_outputs(scene, result):
    node = result.fallback_node
    assert node is not None and node.IsA("vtkMRMLLabelMapVolumeNode")
    assert node.GetName() == "%s fallback (Deep-dose → baseline)" % result.dose_node.GetName()
    assert node.GetAttribute("DeepDose.Quantity") == FALLBACK_QUANTITY
    mask = array_from_volume_node(node) != 0
    assert mask.shape == SHAPE and mask[HOT].all() and not mask[FAR].any()
    assert node in folder_nodes(scene, result.folder_item)
    assert result.dose_node.GetNodeReference("DeepDoseFallback") is node
    # water everywhere: every voxel is tissue, so the share of the tissue is the share of the voxels
    assert result.fallback_percent_of_tissue == pytest.approx(100.0 * mask.sum() / mask.size)
    assert result.fallback_text.startswith(FALLBACK_NOTE_PREFIX) and f" in {int(mask.sum())} voxels " in \
        result.fallback_text
    assert table_column(result.stats_table_node, "fallback_pct") == pytest.approx([100.0, 0.0])
    assert result.stats_table_node.GetColumnUnitLabel("fallback_pct") == "%"


def test_in_process_run_creates_the_fallback_labelmap(scene, case):
    ct, pet, segmentation = _nodes(scene, case)
    result = run_dosimetry(scene, ct, pet, "Ga68", "deepdose", segmentation_node=segmentation, device="cpu",
                           options=MethodOptions(model_path=str(case[0]), flips=0,
                                                                  min_tile_scale=0.0))
    _check_fallback_outputs(scene, result)
    assert result.fallback_text in result.notes  # the method's own note, not a second wording

    led = run_dosimetry(scene, ct, pet, "Ga68", "led", segmentation_node=segmentation, device="cpu")
    assert led.fallback_node is None and led.fallback_percent_of_tissue is None and led.fallback_text is None
    assert "fallback_pct" not in [led.stats_table_node.GetTable().GetColumnName(i)
                                  for i in range(led.stats_table_node.GetNumberOfColumns())]


def test_an_empty_fallback_mask_leaves_no_node(scene, case):
    """A Deep-dose run where nothing fell back (the CLI still wrote its empty mask): the node is removed, the share
    is 0 % and the status says nothing about a fallback."""
    ct, pet, _segmentation = _nodes(scene, case)
    dose = volume_node_from_image(scene, sitk.Cast(case[2], sitk.sitkFloat32) * 1e-4, "dose")
    empty = sitk.Image(list(case[2].GetSize()), sitk.sitkUInt8)
    empty.CopyInformation(case[2])
    fallback = volume_node_from_image(scene, empty, "empty fallback", labelmap=True)
    result = build_dosimetry_outputs(scene, dose, ct, pet_node=pet, fallback_node=fallback)
    assert result.fallback_node is None and fallback.GetScene() is None
    assert result.fallback_percent_of_tissue == 0.0 and result.fallback_text is None


def test_gui_path_through_the_cli_process_shows_the_fallback(monkeypatch, scene, case, tmp_path):
    """startCLI sends a labelmap for fallbackVolume, DeepDoseCLI.py writes the mask, finishCLI keeps it and the
    panel's status line says where and how much (the note the CLI printed)."""
    pytest.importorskip("ctk_cli")
    from slicer_module_loader import load_module_logic
    from test_slicer_module_logic import CLIRunner

    module = load_module_logic(monkeypatch, scene)
    runner = CLIRunner(scene, tmp_path)
    monkeypatch.setattr(slicer, "cli", types.SimpleNamespace(run=runner.run), raising=False)
    monkeypatch.setattr(slicer, "modules", types.SimpleNamespace(deepdosecli=types.SimpleNamespace(path="")),
                        raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    ct, pet, segmentation = _nodes(scene, case)
    logic = module.DeepDoseLogic()
    run = logic.startCLI(ct, pet, nuclide="Ga68", method="deepdose", segmentationNode=segmentation,
                         modelFile=str(case[0]), deepdoseFlips=0, deepdoseMinTileScale=0.0,
                         device="cpu")
    assert run.cliNode.GetStatus() == run.cliNode.Completed, run.cliNode.GetErrorText()
    assert runner.calls[-1]["fallbackVolume"] is run.fallbackNode
    result = logic.finishCLI(run)
    _check_fallback_outputs(scene, result)
    assert result.fallback_text in logic.resultMessage(result)


def test_without_the_methods_note_the_status_gives_the_share_of_the_tissue(scene, case):
    """A mask node without the CLI's notes (e.g. an older CLI): the status line counts the voxels and the tissue."""
    ct, pet, _segmentation = _nodes(scene, case)
    dose = volume_node_from_image(scene, sitk.Cast(case[2], sitk.sitkFloat32) * 1e-4, "dose")
    mask = np.zeros(SHAPE, np.uint8)
    mask[HOT] = 1  # 64 of 7920 water voxels: 0.81 %
    image = sitk.GetImageFromArray(mask)
    image.CopyInformation(case[2])
    fallback = volume_node_from_image(scene, image, "fallback", labelmap=True)
    result = build_dosimetry_outputs(scene, dose, ct, pet_node=pet, fallback_node=fallback)
    assert result.fallback_node is fallback
    assert result.fallback_percent_of_tissue == pytest.approx(100.0 * 64 / 7920)
    assert result.fallback_text == FALLBACK_NOTE_PREFIX + " in 64 voxels (0.8 % of the tissue)"
