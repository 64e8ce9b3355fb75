"""Electron stopping powers, CSDA ranges, transport mean free paths and the runtime table lookups.

Reference: NIST ESTAR (Berger, Coursey, Zucker & Chang, physics.nist.gov/PhysRefData/Star/Text/ESTAR.html),
material "Water, Liquid" (I = 75 eV), which implements ICRU Report 37 (1984).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from DeepDoseLib.errors import DeepDoseInputError
from DeepDoseLib.physics import (density_effect_delta, electron_collision_stopping_power, electron_csda_range,
                                 electron_radiative_stopping_power, electron_stopping_power, electron_transport_mfp,
                                 load_physics_tables)
from DeepDoseLib.physics.constants import ELECTRON_REST_ENERGY_MeV, element_z_a
from DeepDoseLib.physics.electrons import bremsstrahlung_scaled_cross_section, sternheimer_peierls_parameters
from DeepDoseLib.tissue import Material, materials

# ESTAR water: collision stopping power [MeV cm²/g] and CSDA range [g/cm²].
ESTAR_WATER_COLLISION = {0.01: 22.56, 0.02: 13.17, 0.05: 6.603, 0.1: 4.115, 0.2: 2.793, 0.5: 2.034,
                         1.0: 1.849, 3.0: 1.876}
ESTAR_WATER_CSDA = {0.01: 2.515e-4, 0.1: 1.431e-2, 0.5: 0.1766, 1.0: 0.4367, 2.0: 0.9785, 3.0: 1.514}
ESTAR_WATER_RADIATIVE_1MEV = 0.01293


@pytest.mark.parametrize("energy_MeV", sorted(ESTAR_WATER_COLLISION))
def test_water_collision_stopping_power_matches_estar(energy_MeV):
    # 2 % (the requirement). ESTAR is the same Bethe formula; the residual (≤ 0.5 %) comes from
    # ESTAR's density effect computed from oscillator strengths, here from Sternheimer–Peierls.
    ours = float(electron_collision_stopping_power("water", energy_MeV))
    assert ours == pytest.approx(ESTAR_WATER_COLLISION[energy_MeV], rel=0.02)
    if energy_MeV <= 0.2:       # δ = 0 there: the formula is ESTAR's exactly, up to rounding of the table
        assert ours == pytest.approx(ESTAR_WATER_COLLISION[energy_MeV], rel=1e-3)


@pytest.mark.parametrize("energy_MeV", sorted(ESTAR_WATER_CSDA))
def test_water_csda_range_matches_estar(energy_MeV):
    # 2 %: the issue asks 3 % for the transport test; the table itself is within 0.6 %.
    assert float(electron_csda_range("water", energy_MeV)) == pytest.approx(ESTAR_WATER_CSDA[energy_MeV], rel=0.02)


def test_water_radiative_stopping_power_at_1_MeV():
    # 10 %: unscreened Born (3BN) in the nuclear field only; ESTAR uses Pratt/Seltzer–Berger cross-sections
    # including electron–electron bremsstrahlung. Measured −3.9 %.
    ours = float(electron_radiative_stopping_power("water", 1.0))
    assert ours == pytest.approx(ESTAR_WATER_RADIATIVE_1MEV, rel=0.10)
    total = float(electron_stopping_power("water", 1.0))
    assert total == pytest.approx(1.849 + ESTAR_WATER_RADIATIVE_1MEV, rel=0.02)


def test_bremsstrahlung_cross_section_has_the_bethe_heitler_limits():
    # Non-relativistic Born limit 16/3; unscreened extreme-relativistic limit 4 ln(2E/mc²) − 4/3 (Heitler).
    assert float(bremsstrahlung_scaled_cross_section(1e-4)) == pytest.approx(16.0 / 3.0, rel=2e-3)
    e_total = 200.0 / ELECTRON_REST_ENERGY_MeV + 1.0
    assert float(bremsstrahlung_scaled_cross_section(200.0)) == pytest.approx(
        4.0 * math.log(2.0 * e_total) - 4.0 / 3.0, rel=1e-3)


def test_density_effect_follows_sternheimer_peierls():
    p = sternheimer_peierls_parameters("water")
    # Water: ħω_p = 28.816 √(1 × 0.55508) = 21.47 eV, C̄ = 1 + 2 ln(75/21.47) = 3.502 < 3.681 → X0 = 0.2, X1 = 2.
    assert p["plasma_energy_eV"] == pytest.approx(21.47, abs=0.01)
    assert p["C"] == pytest.approx(3.502, abs=1e-3) and (p["X0"], p["X1"]) == (0.2, 2.0)
    assert sternheimer_peierls_parameters("air")["X0"] == 1.8          # gas branch, C̄ = 10.60
    # δ = 0 below X0 (βγ < 10^0.2, T < 0.37 MeV) and 2 ln(βγ) − C̄ above X1 (βγ > 100).
    assert density_effect_delta("water", 0.3) == 0.0
    bg = math.sqrt(100.0 / ELECTRON_REST_ENERGY_MeV * (100.0 / ELECTRON_REST_ENERGY_MeV + 2.0))
    assert float(density_effect_delta("water", 100.0)) == pytest.approx(2 * math.log(bg) - p["C"], rel=1e-12)
    # Continuous at X0 and X1 (a is fixed by continuity at X0; the cubic term vanishes at X1).
    for x in (p["X0"], p["X1"]):
        bg = 10.0 ** x
        t = ELECTRON_REST_ENERGY_MeV * (math.sqrt(1.0 + bg ** 2) - 1.0)
        below, above = density_effect_delta("water", np.array([t * (1 - 1e-9), t * (1 + 1e-9)]))
        assert abs(above - below) < 1e-6


def test_bone_stops_less_per_gram_than_water():
    # Higher I (112 vs 75 eV) and lower Z/A (0.515 vs 0.555) → lower S/ρ, longer range in g/cm².
    energy = np.geomspace(0.01, 3.0, 12)
    assert np.all(electron_stopping_power("bone", energy) < electron_stopping_power("water", energy))
    assert np.all(electron_csda_range("bone", energy) > electron_csda_range("water", energy))


def test_positron_stopping_power_differs_by_less_than_5_percent_above_50_keV():
    energy = np.geomspace(0.05, 3.0, 20)
    ratio = electron_collision_stopping_power("water", energy, positron=True) / \
        electron_collision_stopping_power("water", energy)
    assert np.all(np.abs(ratio - 1.0) < 0.06)
    assert ratio[0] > 1.0 > ratio[-1]         # positrons lose more at low, less at high energy (ICRU 37)


def test_csda_range_is_the_integral_of_the_inverse_stopping_power():
    e = np.geomspace(0.02, 3.0, 4001)
    inverse = 1.0 / electron_stopping_power("soft_tissue", e)
    integral = float(np.sum(0.5 * (inverse[1:] + inverse[:-1]) * np.diff(e)))
    difference = electron_csda_range("soft_tissue", 3.0) - electron_csda_range("soft_tissue", 0.02)
    assert float(difference) == pytest.approx(integral, rel=1e-4)


def test_transport_mean_free_path_scaling():
    # Wentzel–Molière σ1 = 2π r_e² Z(Z+1)/(β⁴γ²) [ln(1+1/η) − 1/(1+η)]. Checked through its scaling laws:
    # (1) single-element media: λ1 ∝ A/(Z(Z+1)) up to the logarithm. The heavier atom is smaller
    # (Thomas–Fermi radius ∝ Z^-1/3), so its screening parameter η ∝ Z^2/3 is larger and ln(1/η) smaller:
    # C/Ca ratio ≈ 1 − (2/3) ln(20/6) / ln(1/η) ≈ 0.92 of the Z(Z+1)/A ratio at 1 MeV.
    carbon = Material("carbon", 99, 2.0, 78.0, {"C": 1.0})
    calcium = Material("calcium", 98, 1.55, 191.0, {"Ca": 1.0})
    z_c, a_c = element_z_a("C")
    z_ca, a_ca = element_z_a("Ca")
    expected = (a_c / (z_c * (z_c + 1))) / (a_ca / (z_ca * (z_ca + 1)))
    measured = float(electron_transport_mfp(carbon, 1.0) / electron_transport_mfp(calcium, 1.0))
    assert 0.88 < measured / expected < 0.96
    # (2) energy: λ1 ∝ (pβ)²/[ln(1/η) − 1] with η ∝ (βγ)⁻²: from 0.1 MeV (βγ = 0.655, ln(1/η) − 1 ≈ 7.6 for
    # oxygen) to 3 MeV (βγ = 6.80) the log grows by 2 ln(6.80/0.655) = 4.7, so λ1/(pβ)² drops to ≈ 0.65.
    e = np.array([0.1, 3.0])
    tau = e / ELECTRON_REST_ENERGY_MeV
    p_beta2 = (tau * (tau + 2.0) / (tau + 1.0)) ** 2
    reduced = electron_transport_mfp("water", e) / p_beta2
    assert 0.6 < reduced[1] / reduced[0] < 0.7
    # (3) bone (Ca, P) scatters more per gram than water.
    grid = np.geomspace(0.01, 3.0, 10)
    assert np.all(electron_transport_mfp("bone", grid) < electron_transport_mfp("water", grid))
    # (4) 1 MeV water: λ1 = 0.51 g/cm², of the order of the CSDA range (0.437 g/cm²), as expected for
    # electrons that are deflected through ~1 rad over their path.
    assert 0.4 < float(electron_transport_mfp("water", 1.0)) < 0.6


def test_bad_energies_are_refused():
    with pytest.raises(DeepDoseInputError, match="> 0 MeV"):
        electron_csda_range("water", [0.1, 0.0])
    with pytest.raises(DeepDoseInputError, match="Unknown material"):
        electron_stopping_power("marble", 0.1)


# ---------------------------------------------------------------- runtime tables (PhysicsTables)

@pytest.fixture(scope="module")
def tables():
    return load_physics_tables()


def test_runtime_grid_and_shapes(tables):
    n_rows = max(m.label for m in materials().values()) + 1
    grid = tables.log_energy_grid_MeV.double()
    assert grid.shape == (241,)
    assert math.exp(float(grid[0])) == pytest.approx(1e-3, rel=1e-6)
    assert math.exp(float(grid[-1])) == pytest.approx(4.0, rel=1e-6)
    assert torch.allclose(grid.diff(), torch.full((240,), tables.log_energy_step, dtype=torch.float64), atol=2e-6)
    assert tables.photon_mu_rho_cm2_per_g.shape == (n_rows, 3, 241)
    for name in ("photon_mu_rho_total_cm2_per_g", "photon_mu_en_rho_cm2_per_g", "electron_stopping_power_MeV_cm2_per_g",
                 "electron_csda_range_g_per_cm2", "electron_transport_mfp_g_per_cm2"):
        table = getattr(tables, name)
        assert table.shape == (n_rows, 241) and table.dtype == torch.float32 and bool((table > 0).all()), name


def test_interpolation_is_log_log_and_clamped(tables):
    water = materials()["water"].label
    energy = torch.tensor([1e-4, 0.01, 0.0123, 0.5, 1.0, 2.345, 10.0])
    labels = torch.full_like(energy, water, dtype=torch.long)
    stopping = tables.interpolate(tables.electron_stopping_power_MeV_cm2_per_g, labels, energy).double().numpy()
    reference = electron_stopping_power("water", np.clip(energy.double().numpy(), 1e-3, 4.0))
    # log-log between nodes 3.5 % apart: < 2e-4 for these smooth curves; float32 storage 1e-7.
    np.testing.assert_allclose(stopping, reference, rtol=2e-4)
    ranges = tables.interpolate(tables.electron_csda_range_g_per_cm2, labels, energy).double().numpy()
    np.testing.assert_allclose(ranges, electron_csda_range("water", np.clip(energy.numpy(), 1e-3, 4.0)), rtol=2e-4)
    assert ranges[4] == pytest.approx(0.4367, rel=0.02)


def test_energy_from_range_inverts_the_range_table(tables):
    generator = torch.Generator().manual_seed(1)
    n = 20000
    labels = torch.tensor(sorted(tables.material_labels))[torch.randint(0, 6, (n,), generator=generator)]
    energy = torch.exp(torch.empty(n).uniform_(math.log(1e-3), math.log(4.0), generator=generator))
    ranges = tables.interpolate(tables.electron_csda_range_g_per_cm2, labels, energy)
    back = tables.energy_from_range(labels, ranges)
    # float32: ln R resolved to ~1e-7 × |ln R| → E to < 1e-5 relative.
    torch.testing.assert_close(back, energy, rtol=2e-5, atol=0.0)
    water = materials()["water"].label
    r_1keV = float(tables.electron_csda_range_g_per_cm2[water, 0])
    edge = tables.energy_from_range(torch.full((5,), water), torch.tensor([-1.0, 0.0, r_1keV / 8, r_1keV, 100.0]))
    assert edge[0] == 0.0 and edge[1] == 0.0
    assert 0.0 < float(edge[2]) < 1e-3 and float(edge[3]) == pytest.approx(1e-3, rel=1e-5)
    assert float(edge[4]) == pytest.approx(4.0, rel=1e-5)
    # ESTAR water: R(1 MeV) = 0.4367 g/cm² ↔ 1 MeV within the 2 % of the range test.
    one_MeV = tables.energy_from_range(torch.tensor([water]), torch.tensor([0.4367]))
    assert float(one_MeV) == pytest.approx(1.0, rel=0.02)


def test_requested_labels_and_bad_labels():
    water, bone = materials()["water"].label, materials()["bone"].label
    subset = load_physics_tables([water], dtype=torch.float64)
    assert subset.material_labels == (water,) and subset.electron_csda_range_g_per_cm2.dtype == torch.float64
    assert bool((subset.electron_stopping_power_MeV_cm2_per_g[bone] == 0).all())
    assert float(subset.energy_from_range(torch.tensor([water]), torch.tensor([0.4367], dtype=torch.float64))) \
        == pytest.approx(float(load_physics_tables().energy_from_range(torch.tensor([water]), torch.tensor([0.4367]))),
                         rel=1e-5)
    with pytest.raises(DeepDoseInputError, match="Unknown material label"):
        load_physics_tables([water, 42])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_lookups_equal_cpu(tables):
    cuda = load_physics_tables(device="cuda")
    generator = torch.Generator().manual_seed(2)
    labels = torch.randint(0, 6, (100000,), generator=generator)
    energy = torch.exp(torch.empty(100000).uniform_(math.log(5e-4), math.log(5.0), generator=generator))
    for table in ("electron_csda_range_g_per_cm2", "photon_mu_rho_total_cm2_per_g", "photon_mu_rho_cm2_per_g"):
        cpu = tables.interpolate(getattr(tables, table), labels, energy)
        gpu = cuda.interpolate(getattr(cuda, table), labels.cuda(), energy.cuda()).cpu()
        torch.testing.assert_close(gpu, cpu, rtol=1e-5, atol=0.0)
    ranges = tables.interpolate(tables.electron_csda_range_g_per_cm2, labels, energy)
    torch.testing.assert_close(cuda.energy_from_range(labels.cuda(), ranges.cuda()).cpu(),
                               tables.energy_from_range(labels, ranges), rtol=1e-5, atol=0.0)
