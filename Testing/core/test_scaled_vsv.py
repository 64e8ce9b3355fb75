"""Density-scaled VSV (the Deep-dose baseline) against analytic limits and against the MC engine.

* Charged-particle equilibrium: deep inside a uniform source of any density (on the kernel ladder or
  between its points) the charged-particle dose is A·Ē_charged/ρ, Ē from ICRP-107 (the LED method).
* Photon/charged split of the MC tally: the parts add up to the dose, and the charged part obeys the
  same equilibrium.
* Lung next to a hot soft-tissue slab: kernels chosen by the *source* voxel's density conserve the
  energy that crosses the interface (within 5 % of MC in the first 16 mm of lung), kernels chosen by
  the receiving voxel's density put 3× too much energy there (positrons born in tissue do not have
  lung ranges) — why Deep-dose's baseline uses the source density.
* Photon dose factors of materials (Lu-177): bone absorbs more than soft tissue, between the μ_en/ρ
  ratio at the hardest line (208 keV: every photon has at most that energy) and at 50 keV; lung (soft-
  tissue-like composition) ≈ 1; adipose (less calcium, phosphorus) < 1.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from DeepDoseLib.mc import run_monte_carlo
from DeepDoseLib.methods.led import led_dose_rate
from DeepDoseLib.methods.scaled_vsv import (compute_scaled_kernels, crop_kernel, layered_soft_tissue_source,
                                            photon_dose_rate, photon_material_factors, scaled_vsv_components)
from DeepDoseLib.methods.vsv import fft_convolve
from DeepDoseLib.nuclides import get_nuclide
from DeepDoseLib.physics.photons import photon_mu_rho
from DeepDoseLib.tissue import materials

SPACING = (4.0, 4.0, 4.0)
LUNG, TISSUE = 0.3, 1.03


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    import os

    os.environ["DEEPDOSE_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    try:
        return compute_scaled_kernels("Ga68", SPACING, densities_g_per_cm3=(LUNG, TISSUE), n_decays=200_000,
                                      device="cpu", material_factors=False)
    finally:
        del os.environ["DEEPDOSE_CACHE_DIR"]


@pytest.fixture(scope="module")
def slab():
    """Soft tissue (z < 20, uniform 10 kBq/mL) against lung (z ≥ 20, no activity); MC with the split tally."""
    shape = (40, 14, 14)
    rho = np.full(shape, TISSUE, np.float32)
    rho[20:] = LUNG
    labels = np.full(shape, materials()["soft_tissue"].label, np.uint8)
    labels[20:] = materials()["lung"].label
    activity = np.zeros(shape, np.float32)
    activity[:20] = 1e4
    mc = run_monte_carlo(activity, rho, labels, SPACING, "Ga68", 1_000_000, seed=3, device="cpu", split_photons=True)
    return activity, rho, mc


def test_crop_keeps_the_energy():
    rng = np.random.default_rng(0)
    kernel = np.zeros((21, 21, 21), np.float32)
    kernel[8:13, 8:13, 8:13] = rng.random((5, 5, 5))
    kernel[0, 0, 0] = 1e-9  # a negligible far tail
    cropped = crop_kernel(kernel, 1e-6)
    assert cropped.shape == (5, 5, 5)
    assert cropped.sum(dtype=np.float64) == pytest.approx(kernel.sum(dtype=np.float64), rel=1e-6)


def test_bone_voxels_take_their_own_photon_kernel():
    from deepdose_helpers import banded_kernels

    k = banded_kernels(0.3)
    density = np.full((9, 9, 9), 1.0, np.float32)
    density[4, 4, 4] = 1.9  # bone
    density[4, 4, 5] = 0.3  # lung
    source = np.zeros(density.shape)
    source[4, 4, 4] = 1.0  # Bq
    photon = photon_dose_rate(source, density, k)
    own = k.photon_material_kernels[0][1]
    assert photon[4, 4, 4] == pytest.approx(float(own[1, 1, 1]), rel=1e-6)  # bone: A ⊛ its own kernel
    assert photon[4, 4, 3] == pytest.approx(float(k.photon[1, 1, 0]), rel=1e-6)  # soft tissue: R = 1
    lung = materials()["lung"].label
    assert photon[4, 4, 5] == pytest.approx(k.photon_factors[lung] * float(k.photon[1, 1, 2]), rel=1e-6)
    density[4, 4, 4] = 1.0  # no bone: R·(A ⊛ K) everywhere
    expected = fft_convolve(source, k.photon) * k.photon_factor_map(density)
    np.testing.assert_allclose(photon_dose_rate(source, density, k), expected, rtol=1e-6, atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("rho", [LUNG, 0.6, TISSUE])
def test_charged_part_reaches_equilibrium_at_any_density(kernels, rho):
    shape = (30, 30, 30)
    activity = np.full(shape, 2e4, np.float32)
    density = np.full(shape, rho, np.float32)
    charged, photon = scaled_vsv_components(activity, density, kernels, mode="source")
    analytic = led_dose_rate(activity, density, get_nuclide("Ga68"))[15, 15, 15]  # A·Ē_charged/ρ
    # the lung kernel reaches ~9 voxels (1 % of the energy beyond 5): the central 6³ voxels are in equilibrium
    centre = charged[12:18, 12:18, 12:18]
    np.testing.assert_allclose(centre, analytic, rtol=0.01)
    assert (photon > 0).all() and photon[15, 15, 15] < 0.5 * analytic  # small cube: most photons escape


@pytest.mark.slow
def test_mc_split_adds_up_and_charged_part_is_in_equilibrium(slab):
    activity, rho, mc = slab
    photon = mc.photon_dose_rate_mGy_per_h
    assert photon is not None and (photon >= 0).all() and (photon <= mc.dose_rate_mGy_per_h * (1 + 1e-6)).all()
    charged = mc.dose_rate_mGy_per_h - photon
    analytic = led_dose_rate(activity, rho, get_nuclide("Ga68"))[10, 7, 7]
    # 160 voxels deep in the tissue slab, ≥ 5 voxels from the interface and the sides
    assert charged[5:15, 5:9, 5:9].mean() == pytest.approx(analytic, rel=0.015)


@pytest.mark.slow
def test_source_density_conserves_the_energy_crossing_into_lung(kernels, slab):
    activity, rho, mc = slab
    reference = (mc.dose_rate_mGy_per_h - mc.photon_dose_rate_mGy_per_h)[20:24, 3:11, 3:11].sum()
    source, _ = scaled_vsv_components(activity, rho, kernels, mode="source")
    receiver, _ = scaled_vsv_components(activity, rho, kernels, mode="receiver")
    assert source[20:24, 3:11, 3:11].sum() == pytest.approx(reference, rel=0.05)
    assert receiver[20:24, 3:11, 3:11].sum() > 2.0 * reference
    # deep in the tissue slab the modes agree (one medium)
    np.testing.assert_allclose(source[5:15, 5:9, 5:9], receiver[5:15, 5:9, 5:9], rtol=1e-5)


@pytest.mark.slow
def test_photon_material_factors_of_lu177(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPDOSE_CACHE_DIR", str(tmp_path))
    factors = photon_material_factors("Lu177", SPACING, n_decays=4_000_000, device="cpu")
    m = materials()

    def ratio(energy_MeV):
        return float(photon_mu_rho("bone", energy_MeV, "energy_absorption")
                     / photon_mu_rho("soft_tissue", energy_MeV, "energy_absorption"))

    assert ratio(0.208) < factors[m["bone"].label] < ratio(0.05)
    assert factors[m["bone"].label] > 1.3  # the photoelectric effect of calcium on 55–113 keV photons
    assert factors[m["lung"].label] == pytest.approx(1.0, abs=0.04)
    assert factors[m["adipose"].label] < 1.0
    assert factors[m["soft_tissue"].label] == 1.0
    assert photon_material_factors("Lu177", SPACING, n_decays=4_000_000, device="cpu") == factors  # cached


@pytest.fixture(scope="module")
def ga68_band_kernels(tmp_path_factory):
    """Ga-68 kernels with photon bands and the scatter-medium correction (one soft-tissue charged kernel)."""
    import os

    os.environ["DEEPDOSE_CACHE_DIR"] = str(tmp_path_factory.mktemp("band_cache"))
    try:
        return compute_scaled_kernels("Ga68", SPACING, densities_g_per_cm3=(TISSUE,), n_decays=500_000, device="cpu")
    finally:
        del os.environ["DEEPDOSE_CACHE_DIR"]


@pytest.mark.slow
def test_bone_photon_dose_follows_the_body_size_ga68(ga68_band_kernels):
    """A two-voxel bone layer in uniform Ga-68 soft-tissue cubes of 16 and 30 cm: the share of scattered
    low-energy photons, which bone absorbs 2–4× more than tissue, grows with the cube, so one photon factor
    R_bone cannot fit both (MC, 1e7 decays: bone vs tissue error −2.8 % in 16 cm, −8.9 % in 30 cm). Bone's
    own kernel from energy bands keeps the bone layer within 3.5 % of the tissue beside it in both cubes
    (the error the kernel makes in tissue, missing or extra scatter of a finite cube, is common to both and
    divided out)."""
    kernels = ga68_band_kernels
    assert [label for label, _ in kernels.photon_material_kernels] == [materials()["bone"].label]
    for n in (41, 75):
        z = n // 2
        activity, rho, labels = layered_soft_tissue_source((n, n, n), {"bone": z})
        mc = run_monte_carlo(activity, rho, labels, SPACING, "Ga68", 2_000_000, seed=5, device="cpu",
                             split_photons=True).photon_dose_rate_mGy_per_h
        photon = photon_dose_rate(activity.astype(np.float64) * 0.064, rho, kernels)
        c = slice(n // 4, n - n // 4)
        bone_ratio = photon[z:z + 2, c, c].mean() / mc[z:z + 2, c, c].mean()
        tissue_ratio = photon[z - 8:z - 4, c, c].mean() / mc[z - 8:z - 4, c, c].mean()
        assert bone_ratio / tissue_ratio == pytest.approx(1.0, abs=0.035), n


@pytest.mark.slow
def test_photon_dose_of_a_finite_cylinder_ga68(ga68_band_kernels):
    """A uniform Ga-68 soft-tissue cylinder, 20 cm across and 10 cm long (a short PET/CT field of view), in air:
    a shape the scatter-medium correction was not fitted to (cubes and slabs). The infinite-medium photon kernel
    puts scatter where there is no body (MC, 3e6 decays: +6 % on the axis mid-way, +12 % at the end faces,
    +9 % at the rim); with the correction the photon dose is within 5 % of MC in all three."""
    kernels = ga68_band_kernels
    assert kernels.scatter_medium and kernels.photon_scatter_fractions[materials()["bone"].label] > \
        kernels.photon_scatter_fractions[materials()["soft_tissue"].label]
    soft, air = materials()["soft_tissue"], materials()["air"]
    shape = (25, 51, 51)
    z, y, x = np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in shape], indexing="ij")
    r_mm = 4.0 * np.sqrt(y ** 2 + x ** 2)
    inside = r_mm <= 100.0
    activity = np.where(inside, 1e4, 0.0).astype(np.float32)
    rho = np.where(inside, soft.nominal_density_g_per_cm3, air.nominal_density_g_per_cm3).astype(np.float32)
    labels = np.where(inside, soft.label, air.label).astype(np.uint8)
    mc = run_monte_carlo(activity, rho, labels, SPACING, "Ga68", 3_000_000, seed=21, device="cpu",
                         split_photons=True).photon_dose_rate_mGy_per_h
    axis = np.zeros(shape, bool)
    axis[:, 20:31, 20:31] = True
    mid = np.zeros(shape, bool)
    mid[10:15] = True
    end = np.zeros(shape, bool)
    end[:2] = True
    regions = {"axis mid-way": axis & mid, "end face": axis & end, "rim": mid & inside & (r_mm >= 85.0)}
    corrected = photon_dose_rate(activity.astype(np.float64) * 0.064, rho, kernels)
    infinite = photon_dose_rate(activity.astype(np.float64) * 0.064, rho,
                                dataclasses.replace(kernels, scatter_medium=(), photon_scatter_fractions=()))
    for name, m in regions.items():
        err = corrected[m].mean() / mc[m].mean() - 1.0
        err_infinite = infinite[m].mean() / mc[m].mean() - 1.0
        assert abs(err) < 0.05, (name, err)
        assert err_infinite > 0.04 and abs(err) < err_infinite, (name, err_infinite, err)


def test_charged_dose_across_interfaces_marks_only_what_crossed_a_density_interface():
    """The part of the charged-particle dose delivered across a density interface (the uncertainty map's interface
    term): zero inside one medium, at any density; all of it in inactive lung beside hot tissue; none between soft
    tissue and adipose; and the charged dose itself is the method's."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from deepdose_helpers import K, spreading_kernels

    from DeepDoseLib.methods.scaled_vsv import charged_dose_rates

    kernels = spreading_kernels()
    shape = (12, 6, 6)
    rng = np.random.default_rng(1)
    for rho in (0.15, 0.26, 1.0, 1.6):  # on the ladder's points and between them
        activity = (1e3 * (1 + rng.random(shape))).astype(np.float32)
        density = np.full(shape, rho, np.float32)
        charged, across = charged_dose_rates(activity, density, kernels)
        assert np.array_equal(across, np.zeros_like(across))
        charged, _ = charged_dose_rates(np.full(shape, 1e4, np.float32), density, kernels)
        np.testing.assert_allclose(charged[1:-1, 1:-1, 1:-1], K * 1e4 / rho, rtol=1e-5)  # equilibrium
    # hot soft tissue (z < 6) beside inactive lung: every bit of the lung's charged dose crossed
    activity = np.zeros(shape, np.float32)
    activity[:6] = 1e4
    density = np.full(shape, 1.0, np.float32)
    density[6:] = 0.26
    charged, across = charged_dose_rates(activity, density, kernels)
    np.testing.assert_array_equal(charged, scaled_vsv_components(activity, density, kernels)[0])
    assert (charged[6] > 0).all() and np.array_equal(across[6], charged[6]) and np.array_equal(across[7:], charged[7:])
    assert not across[:6].any()  # the lung sends nothing back
    # active lung beside inactive tissue: the tissue's first layer receives across the interface
    lung_hot = np.where(density < 0.5, 1e4, 0.0).astype(np.float32)
    charged, across = charged_dose_rates(lung_hot, density, kernels)
    assert (across[5] > 0).all() and np.allclose(across[5], charged[5]) and not across[6:].any()
    # soft tissue beside adipose is one medium for the charged particles
    density[6:] = 0.92
    charged, across = charged_dose_rates(np.full(shape, 1e4, np.float32), density, kernels)
    assert not across.any()
