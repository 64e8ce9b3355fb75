"""The Slicer scripted CLI module: XML and argparse agree; runs as a plain script with progress."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

import DeepDoseLib as dd

from conftest import REPO_ROOT, filter_progress_fractions

CLI_DIR = REPO_ROOT / "DeepDoseCLI"


def load_cli_module():
    spec = importlib.util.spec_from_file_location("DeepDoseCLI", CLI_DIR / "DeepDoseCLI.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_xml_and_argparse_agree():
    ctk_cli = pytest.importorskip("ctk_cli")
    xml = {p.name: p for p in ctk_cli.CLIModule(str(CLI_DIR / "DeepDoseCLI.xml")).parameters()}
    actions = {a.dest: a for a in load_cli_module().build_parser()._actions if a.dest != "help"}
    assert set(xml) == set(actions)
    for name, p in xml.items():
        a = actions[name]
        if p.index is not None:
            assert not a.option_strings, name
            positional = [d for d, x in actions.items() if not x.option_strings]
            assert positional.index(name) == p.index, name
        else:
            assert a.option_strings == [p.longflag], name
        if p.typ == "boolean":
            assert a.const is True and a.default is False, name
        elif p.typ == "string-enumeration":
            assert list(a.choices) == p.elements and a.default == p.default, name


def test_enumerations_match_the_library():
    cli = load_cli_module().build_parser()
    choices = {a.dest: a.choices for a in cli._actions}
    assert list(choices["nuclide"]) == dd.list_nuclides()
    # every Slicer-CLI method is a library method; "deepdose" needs a model file input (added with the model)
    assert set(choices["method"]) <= set(dd.METHODS)
    assert {"led", "vsv", "mc", "mird"} <= set(choices["method"])


def test_runs_as_plain_script_with_filter_progress(demo_files, tmp_path):
    out = tmp_path / "dose.nrrd"
    proc = subprocess.run([sys.executable, str(CLI_DIR / "DeepDoseCLI.py"), "--nuclide", "Lu177", "--includePhotons",
                           str(demo_files["ct"]), str(demo_files["pet"]), str(out)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "<filter-start>" in proc.stdout and "<filter-end>" in proc.stdout
    fractions = filter_progress_fractions(proc.stdout)
    assert fractions and fractions == sorted(fractions) and fractions[-1] == 1.0
    expected = dd.compute_dose_rate(dd.read_ct(demo_files["ct"]).image, dd.read_pet(demo_files["pet"]).image,
                                    "Lu177", include_photons=True)
    np.testing.assert_allclose(sitk.GetArrayFromImage(sitk.ReadImage(str(out))),
                               sitk.GetArrayFromImage(expected), rtol=1e-6)


def test_bad_input_exit_code_and_message(demo_files, tmp_path):
    proc = subprocess.run([sys.executable, str(CLI_DIR / "DeepDoseCLI.py"), str(demo_files["labels"]),
                           str(demo_files["pet"]), str(tmp_path / "d.nrrd")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2 and "not a CT in HU" in proc.stderr


def test_deepdose_method_with_the_bundled_model(demo_files, tmp_path):
    """The Slicer CLI runs the Deep-dose method (bundled Ga-68 model when --modelFile is empty)."""
    out = tmp_path / "dd.nrrd"
    proc = subprocess.run([sys.executable, str(CLI_DIR / "DeepDoseCLI.py"), "--method", "deepdose", "--device", "cpu",
                           str(demo_files["ct"]), str(demo_files["pet"]), str(out)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Deep-dose model deepdose_Ga68" in proc.stdout
    dose = sitk.GetArrayFromImage(sitk.ReadImage(str(out)))
    assert np.isfinite(dose).all() and dose.max() > 0
