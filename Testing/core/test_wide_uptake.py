"""The table-free training uptake (issue 19, item 1): wide organ levels, inactive lung/bone/bowel, lesion
contrasts, heterogeneous organs, PET- or SPECT-like blur and count noise; and the dataset builder's
``--uptake wide`` mode (LED stand-in engine: the builder's wiring, not the ground truth)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from DeepDoseLib.dataset import DatasetConfig, build_dataset
from DeepDoseLib.errors import DeepDoseInputError
from DeepDoseLib.phantoms.lesions import LesionSpec
from DeepDoseLib.phantoms.torso import generate_torso, sample_torso_parameters
from DeepDoseLib.phantoms.wide_uptake import WideUptakeRanges, wide_uptake_activity


@pytest.fixture(scope="module")
def anatomy():
    rng = np.random.default_rng([4, 0])
    return generate_torso(sample_torso_parameters(rng, "standard"), 6.0,
                          [LesionSpec("liver", 40.0, 0.5), LesionSpec("lung", 20.0, 0.0)])


def _draw(anatomy, seed, ranges=WideUptakeRanges()):
    rho = np.where(anatomy.labels > 0, 1.0, 0.001).astype(np.float32)
    lungs = [k for k, n in anatomy.label_names.items() if "lung" in n.lower() and "lesion" not in n.lower()]
    rho[np.isin(anatomy.labels, lungs)] = 0.26
    return wide_uptake_activity(anatomy.labels, anatomy.label_names, rho, anatomy.spacing_mm,
                                np.random.default_rng(seed), ranges), rho, lungs


def test_draws_are_reproducible_non_negative_and_zero_outside_the_body(anatomy):
    (a, s), rho, _ = _draw(anatomy, 1)
    (b, t), _, _ = _draw(anatomy, 1)
    np.testing.assert_array_equal(a, b)
    assert s == t and a.dtype == np.float32 and a.shape == anatomy.labels.shape
    assert a.min() >= 0 and np.all(a[rho < 0.05] == 0) and a.max() > 0


def test_levels_span_decades_and_lung_is_inactive_in_some_cases(anatomy):
    levels, lung_means, modalities, contrasts = [], [], set(), []
    for seed in range(12):
        (a, s), rho, lungs = _draw(anatomy, seed)
        levels += [v / s["body_level_Bq_per_mL"] for k, v in s.items() if k.startswith("level:") and v > 0]
        inner = ndimage.binary_erosion(np.isin(anatomy.labels, lungs), iterations=3)
        lung_means.append((s["lung_active"], float(a[inner].mean()) / s["body_level_Bq_per_mL"]))
        modalities.add(s["modality"])
        contrasts += [v for k, v in s.items() if k.startswith("contrast:")]
        assert (10.0 <= s["fwhm_mm"] <= 15.0) if s["modality"] == "SPECT-like" else (4.0 <= s["fwhm_mm"] <= 8.0)
    assert max(levels) / min(levels) > 100  # more than two decades between organs over the draws
    assert {on for on, _ in lung_means} == {True, False}
    # a lung without activity of its own only holds what the blur spills into it
    assert max(m for on, m in lung_means if not on) < 0.05 * np.median([m for on, m in lung_means if on])
    assert modalities == {"PET-like", "SPECT-like"}
    assert all(1.0 <= c <= 100.0 for c in contrasts) and max(contrasts) / min(contrasts) > 5


def test_noise_scales_with_the_activity(anatomy):
    quiet = WideUptakeRanges(heterogeneity_sigma_ln=(0.0, 0.0), spect_fraction=0.0, pet_noise_relative=(0.0, 0.0))
    noisy = WideUptakeRanges(heterogeneity_sigma_ln=(0.0, 0.0), spect_fraction=0.0, pet_noise_relative=(0.2, 0.2))
    (a, _), rho, _ = _draw(anatomy, 3, quiet)
    (b, s), _, _ = _draw(anatomy, 3, noisy)
    assert s["noise_relative"] == 0.2
    body = rho >= 0.05
    resid = (b - a)[body & (a > 0)]
    assert abs(float(resid.mean())) < 0.02 * float(a[body].mean())  # zero-mean (up to clipping at 0)
    ratio = float(np.std(resid) / np.sqrt(np.mean(a[body & (a > 0)] * np.median(a[body]))))
    assert 0.15 < ratio < 0.25


def test_dataset_wide_uptake_mode(tmp_path):
    with pytest.raises(DeepDoseInputError, match="uptake"):
        DatasetConfig(n_cases=1, uptake="table")
    out = tmp_path / "d"
    config = DatasetConfig(n_cases=1, tracers=["Lu177-DOTATATE"], spacing_mm=8.0, n_decays=1000, seed=5,
                           val_fraction=0.0, test_fraction=0.0, engine="led", uptake="wide")
    build_dataset(out, config, progress=False)
    folder = out / "cases" / "case_00000"
    meta = json.loads((folder / "case.json").read_text())
    assert meta["case"]["uptake"]["generator"] == "wide_uptake"
    pet = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "pet.nii.gz")))
    true = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "true_activity.nii.gz")))
    np.testing.assert_array_equal(pet, true)  # the image the user gives is what the MC ran on
    assert json.loads((out / "dataset.json").read_text())["config"]["uptake"] == "wide"
    with pytest.raises(DeepDoseInputError, match="another configuration"):
        build_dataset(out, DatasetConfig(**{**config.as_dict(), "uptake": "tracer"}), progress=False)
