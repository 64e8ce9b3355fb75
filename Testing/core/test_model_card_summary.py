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
