"""The model-card summary the Slicer module shows before a Deep-dose run."""
from __future__ import annotations

import json
import shutil

from DeepDoseLib.deepdose.model_io import bundled_model_path, model_card_summary


def test_bundled_model_summary_names_file_nuclide_and_validation():
    text = model_card_summary(None, "Ga68")
    assert "deepdose_Ga68" in text and "(bundled)" in text and "4×4×4 mm" in text
    assert "organ mean error vs MC" in text and "limitations" in text


def test_wrong_nuclide_missing_model_and_missing_card_are_described_not_raised(tmp_path):
    assert "No bundled Deep-dose model for Y90" in model_card_summary(None, "Y90")
    copy = tmp_path / "m.pt"
    shutil.copy(bundled_model_path("Lu177"), copy)
    assert "no readable model card" in model_card_summary(copy, "Lu177")
    card = json.loads(bundled_model_path("Lu177").with_suffix(".json").read_text())
    copy.with_suffix(".json").write_text(json.dumps(card))
    assert "WARNING: trained for Lu177, not Ga68" in model_card_summary(copy, "Ga68")


def test_clinician_summary_states_the_held_out_benchmark(tmp_path):
    """A card with a held-out benchmark (bench_generalization --write-card) puts its figures in the panel text;
    a card without one says nothing about it."""
    from DeepDoseLib.model_card import clinician_model_summary

    copy = tmp_path / "m.pt"
    shutil.copy(bundled_model_path("Ga68"), copy)
    card = json.loads(bundled_model_path("Ga68").with_suffix(".json").read_text())
    card.pop("benchmark_generalization", None)
    copy.with_suffix(".json").write_text(json.dumps(card))
    assert "Held-out benchmark" not in clinician_model_summary(copy, "Ga68").text()
    method = {"structures_within_3pct_pct": 71.0, "worst_structure_abs_pct": 8.4, "worst_structure": "torso_03: bone",
              "mean_voxel_median_abs_pct": 6.2, "mean_seconds": 30.0}
    card["benchmark_generalization"] = {"cases": 20, "decays": 2e7, "small_run": False,
                                        "methods": {"deepdose": method,
                                                    "vsv_scaled": {**method, "structures_within_3pct_pct": 55.0}},
                                        "uncertainty_coverage_2sigma_pct": {"mean": 91.3, "min": 80.0, "max": 99.0}}
    copy.with_suffix(".json").write_text(json.dumps(card))
    text = clinician_model_summary(copy, "Ga68").text()
    assert "Held-out benchmark (20 cases" in text and "2e+07 decays" in text
    assert "within 3 % of MC 71 % (density-scaled VSV 55 %)" in text and "worst 8.4 % (torso_03: bone)" in text
    assert "covers MC within ±2σ in 91 % of the voxels" in text


def test_clinician_summary_states_the_training_range(tmp_path):
    """The card's lung training range reaches the panel's details (the fallback rule uses it); a model trained on
    inactive lungs too (the bundled Lu-177 one) says that it has no lung fallback."""
    from DeepDoseLib.model_card import clinician_model_summary

    details = " ".join(clinician_model_summary(None, "Lu177").details)
    assert "Training range: lungs from no activity of their own upward (no lung fallback)" in details
    copy = tmp_path / "m.pt"
    shutil.copy(bundled_model_path("Lu177"), copy)
    card = json.loads(bundled_model_path("Lu177").with_suffix(".json").read_text())
    card["training_range"]["lung_activity_ratio_min"] = 0.6311
    copy.with_suffix(".json").write_text(json.dumps(card))
    details = " ".join(clinician_model_summary(copy, "Lu177").details)
    assert "Training range: lungs at ≥ 0.63× the median body activity" in details


def test_clinician_summary_states_the_uncertainty_floor(tmp_path):
    """The card's error floor of the uncertainty map (deepdose evaluate --write-uncertainty-floor) reaches the panel's
    details; a card without one says nothing about it."""
    from DeepDoseLib.model_card import clinician_model_summary

    copy = tmp_path / "m.pt"
    shutil.copy(bundled_model_path("Lu177"), copy)
    card = json.loads(bundled_model_path("Lu177").with_suffix(".json").read_text())
    card.pop("uncertainty_floor", None)
    copy.with_suffix(".json").write_text(json.dumps(card))
    assert not any("error floor" in d for d in clinician_model_summary(copy, "Lu177").details)
    card["uncertainty_floor"] = {"floors": {"lung": 0.12, "soft_tissue": 0.031}, "cases": ["a", "b", "c"]}
    copy.with_suffix(".json").write_text(json.dumps(card))
    details = " ".join(clinician_model_summary(copy, "Lu177").details)
    assert "error floor measured on 3 validation/test case(s)" in details and "lung 12.0 %, soft tissue 3.1 %" in details
