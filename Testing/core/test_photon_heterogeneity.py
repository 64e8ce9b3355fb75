"""The photon heterogeneity correction against its physics: O'Connor's limit in a uniform medium, the line integral
by quadrature, and the attenuation data of water (NIST XCOM / Hubbell & Seltzer)."""
from __future__ import annotations

import numpy as np
import pytest

from DeepDoseLib.methods.photon_heterogeneity import (coarse_factors, line_directions, primary_excess_dose_rate,
                                                      primary_excess_on_grid, primary_terms)
from DeepDoseLib.nuclides import get_nuclide
from DeepDoseLib.tissue import TISSUE_MIN_DENSITY_g_per_cm3


def test_directions_cover_the_sphere_symmetrically():
    steps, lengths, weights = line_directions((4.0, 4.0, 4.0))
    assert len(steps) == 26 and weights.sum() == pytest.approx(1.0)
    for d, w in zip(steps, weights):
        opposite = np.flatnonzero((steps == -d).all(axis=1))[0]
        assert w == weights[opposite]
    faces = weights[np.abs(steps).sum(axis=1) == 1]
    assert np.ptp(faces) < 1e-3 and np.allclose(lengths[np.abs(steps).sum(axis=1) == 3], 4.0 * 3 ** 0.5)
    # anisotropic voxels: steps are physical directions (x, y, z spacing → (z, y, x) steps)
    _, lengths, _ = line_directions((2.0, 3.0, 5.0))
    assert set(np.round(lengths[np.abs(steps).sum(axis=1) == 1], 6)) == {2.0, 3.0, 5.0}
    assert lengths[np.flatnonzero((steps == (1, 0, 0)).all(axis=1))[0]] == pytest.approx(5.0)


def test_soft_tissue_needs_no_correction():
    rng = np.random.default_rng(0)
    a = rng.random((12, 14, 16)).astype(np.float32) * 1e4
    terms = primary_terms(get_nuclide("Lu177"))
    assert np.array_equal(primary_excess_on_grid(a, np.ones_like(a), (4.0, 4.0, 4.0), terms), np.zeros_like(a))


def test_uniform_medium_gives_oconnors_one_over_density():
    """In an infinite uniform medium of density ρ with uniform activity the unscattered photon dose per mass is 1/ρ
    times that of water (the same energy in 1/ρ of the mass): ΔP = P_water (1/ρ − 1) in the centre."""
    a_i, mu_i = np.array([2e-3, 5e-4]), np.array([0.3, 0.15])  # [mGy/h per Bq per mm], [1/mm]: short lines
    rho = 0.4
    shape = (41, 41, 41)  # 80 mm from the centre to a face: exp(-0.15·0.4·80) < 1 % left on the weakest line
    activity = np.full(shape, 5e3, np.float32)  # Bq/mL
    excess = primary_excess_on_grid(activity, np.full(shape, rho, np.float32), (4.0, 4.0, 4.0), (a_i, mu_i))
    p_water = 5e3 * 1e-3 * float((a_i / mu_i).sum())  # Bq/mm³ × ∫ G_p dr over every direction (weights sum to 1)
    assert excess[20, 20, 20] == pytest.approx(p_water * (1.0 / rho - 1.0), rel=2e-3)


def _line_reference(activity, rho, spacing, terms, voxel, step=0.002):
    """ΔP at ``voxel`` by quadrature along the 26 lines: each point of a line belongs to the voxel whose centre on
    the line is nearest; T = ∫ ρ dr accumulated point by point (independent of the recursive passes)."""
    a_i, mu_i = terms
    steps, lengths, weights = line_directions(spacing)
    total = 0.0
    for d, length, w in zip(steps, lengths, weights):
        r = np.arange(0.0, 40 * length, step) + 0.5 * step
        n = np.floor(r / length + 0.5).astype(int)
        idx = np.asarray(voxel)[None, :] - n[:, None] * d[None, :]
        inside = ((idx >= 0) & (idx < np.asarray(activity.shape))).all(axis=1)
        first_out = np.flatnonzero(~inside)
        end = first_out[0] if first_out.size else len(r)
        idx = idx[:end]
        conc = activity[tuple(idx.T)] * 1e-3
        dens = np.maximum(rho[tuple(idx.T)], TISSUE_MIN_DENSITY_g_per_cm3)
        t_het = np.cumsum(dens * step) - 0.5 * dens * step
        t_hom = np.arange(end) * step + 0.5 * step
        for a, mu in zip(a_i, mu_i):
            total += w * float(np.sum(conc * a * (np.exp(-mu * t_het) - np.exp(-mu * t_hom))) * step)
    return total


def test_line_passes_equal_the_line_integrals():
    rng = np.random.default_rng(3)
    shape = (6, 7, 8)
    activity = (rng.random(shape) * 1e4).astype(np.float32)
    rho = rng.choice([0.02, 0.26, 1.0, 1.6], size=shape).astype(np.float32)  # air, lung, tissue, bone
    spacing = (3.0, 4.0, 5.0)  # (x, y, z)
    terms = (np.array([1e-3, 2e-4]), np.array([0.02, 0.1]))
    excess = primary_excess_on_grid(activity, rho, spacing, terms)
    for voxel in [(3, 3, 4), (0, 6, 0), (5, 2, 7)]:
        assert excess[voxel] == pytest.approx(_line_reference(activity, rho, spacing, terms, voxel), rel=2e-3)


def test_primary_lines_match_water_attenuation_data():
    """Ga-68: 1.78 annihilation photons of 511 keV per decay; water μ/ρ = 0.0960 cm²/g, μ_en/ρ = 0.0330 cm²/g
    (NIST XCOM and Hubbell & Seltzer at 0.5–0.6 MeV, interpolated)."""
    a, mu = primary_terms(get_nuclide("Ga68"))
    assert mu[0] == pytest.approx(0.00960, rel=0.01)
    expected_a = 1.78 * 0.511 * 0.0330 * 1.602176634e-10 * 3.6e6 * 100.0
    assert a[0] == pytest.approx(expected_a, rel=0.02)
    a, mu = primary_terms(get_nuclide("Lu177"))
    assert 0.0125 < mu[0] < 0.0145  # 208 keV: μ/ρ = 0.136 cm²/g, the strongest line by dose
    assert np.all(np.diff(a / mu) <= 0)


def test_inactive_lung_gets_more_dose_and_bone_shields():
    """Beside a hot slab, the unscattered photons reach deeper into lung than into water (ΔP > 0, larger deeper
    in), and less far behind bone (ΔP < 0); the coarse grid keeps the profile."""
    shape = (40, 48, 48)  # wide enough that the oblique lines reach the slab
    activity = np.zeros(shape, np.float32)
    activity[:8] = 1e4
    rho = np.ones(shape, np.float32)
    rho[10:30] = 0.26
    terms = primary_terms(get_nuclide("Ga68"))
    fine = primary_excess_on_grid(activity, rho, (4.0, 4.0, 4.0), terms)[:, 24, 24]
    assert np.all(fine[:8] >= -1e-9) and np.all(fine[10:30] > 0) and fine[20] > 2 * fine[10]
    coarse = primary_excess_dose_rate(activity, rho, (4.0, 4.0, 4.0), terms)[:, 24, 24]
    assert coarse_factors((4.0, 4.0, 4.0)) == (2, 2, 2)
    np.testing.assert_allclose(coarse[12:28], fine[12:28], rtol=0.15)
    rho[10:14] = 1.8
    rho[14:30] = 1.0
    behind_bone = primary_excess_on_grid(activity, rho, (4.0, 4.0, 4.0), terms)[:, 24, 24]
    assert np.all(behind_bone[14:30] < 0)
