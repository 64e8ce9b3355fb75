"""Voxel S-value kernels from DeepDose's Monte Carlo against published S-values, and the VSV method.

Published values (mGy/(MBq·s), soft tissue) are read from reference_data/published_dosimetry_values.json,
where each entry carries its citation. Tolerances: the kernel statistics at these decay numbers are
≤ 1 % in the source voxel and ≤ 2 % in the first neighbours (after 48-fold symmetrisation); published
MC codes differ among themselves by 2–5 % (Pacilio et al. 2009), and the soft-tissue density differs
(ICRU 46, 1.03 g/cm³ here vs the databases' ~1.04), hence 4 % near the source and 6 % farther out.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

import DeepDoseLib as dd
from DeepDoseLib.dose import MethodOptions
from DeepDoseLib.methods.vsv import compute_kernel, fft_convolve, symmetrise, vsv_dose_rate

REFERENCE = json.loads((Path(__file__).parent / "reference_data" / "published_dosimetry_values.json").read_text())
OFFSETS = {"0,0,0": (0, 0, 0), "1,0,0": (1, 0, 0), "1,1,0": (1, 1, 0), "1,1,1": (1, 1, 1), "2,0,0": (2, 0, 0)}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPDOSE_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def y90_3mm_kernel():
    # Y-90 β range ≤ 11 mm: a 15 mm kernel radius holds every voxel compared here
    return compute_kernel("Y90", (3.0, 3.0, 3.0), radius_mm=15.0, n_decays=150_000, seed=3, use_cache=False)


def test_y90_3mm_against_lanconelli_2012(y90_3mm_kernel):
    ref = REFERENCE["vsv_Y90_soft_3mm_Lanconelli2012"]["values"]
    for key, value in ref.items():
        tolerance = 0.04 if key in ("0,0,0", "1,0,0") else 0.06
        assert y90_3mm_kernel.s_value(*OFFSETS[key]) == pytest.approx(value, rel=tolerance), key


def test_source_voxel_against_mird_pamphlet_17(y90_3mm_kernel):
    ref = REFERENCE["vsv_MIRD17_source_voxel"]["values"]["3mm"]
    assert y90_3mm_kernel.s_value(0, 0, 0) == pytest.approx(ref["Y-90"]["0,0,0"], rel=0.04)


def test_lu177_4mm_beta_and_photons_against_lanconelli_2012():
    """Lanconelli's Lu-177 kernels match ours when conversion and Auger electrons are left out (with them,
    0.148 instead of 0.133 MeV of electrons per decay, our source-voxel value is 9 % higher): the database
    evidently simulated the β spectrum and photons only. We compare like with like."""
    ref = REFERENCE["vsv_Lu177_soft_4mm_Lanconelli2012"]["values"]
    kernel = compute_kernel("Lu177", (4.0, 4.0, 4.0), radius_mm=12.0, n_decays=100_000, seed=5,
                            exclude_kinds=("IE", "auger"), use_cache=False)
    assert kernel.s_value(0, 0, 0) == pytest.approx(ref["0,0,0"], rel=0.04)
    assert kernel.s_value(1, 0, 0) == pytest.approx(ref["1,0,0"], rel=0.06)


def test_kernel_cache_is_reused_and_keyed_by_parameters(tmp_path, monkeypatch):
    k1 = compute_kernel("Y90", (4.0, 4.0, 4.0), radius_mm=8.0, n_decays=2000, seed=1)
    files = list((tmp_path / "cache" / "vsv").glob("*.npz"))
    assert len(files) == 1
    import DeepDoseLib.mc

    real_mc = DeepDoseLib.mc.run_monte_carlo

    def no_monte_carlo(*args, **kwargs):
        raise AssertionError("a cached kernel was simulated again")

    monkeypatch.setattr(DeepDoseLib.mc, "run_monte_carlo", no_monte_carlo)
    k2 = compute_kernel("Y90", (4.0, 4.0, 4.0), radius_mm=8.0, n_decays=2000, seed=1)  # read, not simulated
    monkeypatch.setattr(DeepDoseLib.mc, "run_monte_carlo", real_mc)
    np.testing.assert_array_equal(k1.dose_rate_mGy_per_h_per_Bq, k2.dose_rate_mGy_per_h_per_Bq)
    compute_kernel("Y90", (4.0, 4.0, 4.0), radius_mm=8.0, n_decays=2000, seed=2)
    assert len(list((tmp_path / "cache" / "vsv").glob("*.npz"))) == 2


def test_symmetrise_keeps_total_and_makes_kernel_symmetric():
    rng = np.random.default_rng(0)
    k = rng.uniform(0, 1, (5, 5, 5))
    s = symmetrise(k, (2.0, 2.0, 2.0))
    assert s.sum() == pytest.approx(k.sum(), rel=1e-6)
    np.testing.assert_allclose(s, np.flip(s, 0), rtol=1e-6)
    np.testing.assert_allclose(s, np.transpose(s, (2, 1, 0)), rtol=1e-6)
    anisotropic = symmetrise(k, (2.0, 2.0, 3.0))  # z differs: no permutation with z, flips only
    np.testing.assert_allclose(anisotropic, np.flip(anisotropic, 0), rtol=1e-6)


def test_fft_convolution_equals_direct_sum():
    rng = np.random.default_rng(1)
    values = rng.uniform(0, 1, (9, 8, 7))
    kernel = rng.uniform(0, 1, (5, 3, 5))
    out = fft_convolve(values, kernel)
    direct = np.zeros_like(values)
    for dz in range(5):
        for dy in range(3):
            for dx in range(5):
                shifted = np.zeros_like(values)
                sz, sy, sx = dz - 2, dy - 1, dx - 2
                src = values[max(0, -sz):values.shape[0] - max(0, sz), max(0, -sy):values.shape[1] - max(0, sy),
                             max(0, -sx):values.shape[2] - max(0, sx)]
                shifted[max(0, sz):max(0, sz) + src.shape[0], max(0, sy):max(0, sy) + src.shape[1],
                        max(0, sx):max(0, sx) + src.shape[2]] = src
                direct += kernel[dz, dy, dx] * shifted
    np.testing.assert_allclose(out, direct, rtol=1e-5, atol=1e-9)


def test_vsv_method_uniform_interior_and_density_correction():
    """Uniform activity: the interior VSV dose equals A·V·ΣK; density correction scales by ρ_kernel/ρ."""
    kernel = compute_kernel("Y90", (4.0, 4.0, 4.0), radius_mm=12.0, n_decays=20_000, seed=1)
    a = np.full((15, 15, 15), 1e4, np.float32)
    rho = np.full(a.shape, 0.5, np.float32)
    plain = vsv_dose_rate(a, rho, kernel)
    expected = 1e4 * 0.064 * kernel.dose_rate_mGy_per_h_per_Bq.sum()
    assert plain[7, 7, 7] == pytest.approx(expected, rel=1e-5)
    corrected = vsv_dose_rate(a, rho, kernel, density_correction=True)
    np.testing.assert_allclose(corrected, plain * kernel.density_g_per_cm3 / 0.5, rtol=1e-5)


def test_vsv_through_the_api(demo_case):
    """On the demo torso the VSV method runs through the API and agrees with LED in the liver (CPE for
    positrons holds inside a large organ; VSV adds the photon dose and smooths the edges, hence 0.9–1.6)."""
    inputs = dd.prepare_inputs(demo_case.ct, demo_case.pet)
    led = sitk.GetArrayFromImage(dd.compute_dose_rate_from_inputs(inputs, "Ga68", "led"))
    vsv = sitk.GetArrayFromImage(dd.compute_dose_rate_from_inputs(
        inputs, "Ga68", "vsv", options=MethodOptions(kernel_decays=20_000, kernel_radius_mm=40.0)))
    labels = sitk.GetArrayFromImage(demo_case.labels)
    liver = labels == [k for k, v in demo_case.label_names.items() if v == "liver"][0]
    ratio = vsv[liver].mean() / led[liver].mean()
    assert 0.9 < ratio < 1.6
