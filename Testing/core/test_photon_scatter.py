"""Scatter-medium correction of the photon kernel (DeepDoseLib.methods.photon_scatter): the geometry of the
medium fraction c(x), the choice of scattered bands from the emission lines, the factor it puts on the
photon dose. The comparison with Monte Carlo is in test_scaled_vsv.py (a finite cylinder)."""
import numpy as np
import pytest

from DeepDoseLib.methods.photon_scatter import (WEIGHT_RADIUS_mm, medium_fraction, scatter_band_count,
                                                scatter_fraction, scatter_medium_factor)
from DeepDoseLib.methods.scaled_vsv import PHOTON_BAND_EDGES_MeV
from DeepDoseLib.nuclides import get_nuclide


@pytest.mark.parametrize("nuclide, expected", [
    ("Ga68", 6),   # 511 keV carries 96 % of the photon energy: every band below 350 keV is scatter
    ("Lu177", 3),  # 113 keV (21 %) is the lowest strong line: bands below 80 keV
    ("Y90", 0),    # only 16 keV X-rays: nothing is scatter
])
def test_scattered_bands_lie_below_the_lowest_strong_line(nuclide, expected):
    assert scatter_band_count(get_nuclide(nuclide), PHOTON_BAND_EDGES_MeV) == expected


def test_medium_fraction_is_one_deep_inside_a_half_at_a_face_and_zero_in_air():
    spacing = (8.0, 8.0, 8.0)
    n = 2 * int(WEIGHT_RADIUS_mm // 8.0) + 3  # every voxel within R of the centre lies in the grid
    body = np.full((n, n, n), 1.0)
    c = medium_fraction(body, spacing)
    m = n // 2
    assert c[m, m, m] == pytest.approx(1.0, abs=1e-6)
    # the centre of a face: half of every sphere around it lies outside the grid (the voxel itself adds a little)
    assert 0.5 < c[m, m, 0] < 0.56
    assert 0.25 < c[m, 0, 0] < 0.31  # an edge: a quarter (and its own voxel)
    assert c[m, m, 0] < c[m, m, 3] < c[m, m, m]
    assert medium_fraction(np.zeros((9, 9, 9)), spacing).max() == 0.0
    lung = np.where(body > 0, 0.25, 0.0)
    np.testing.assert_allclose(medium_fraction(lung, spacing), c)  # lung scatters: it is body, not air


def test_medium_fraction_reads_the_spacing_as_x_y_z():
    """Spacing (x, y, z), arrays (z, y, x): a 40 mm slab of body across x seen with 4 mm voxels and with 2 mm voxels
    along x gives the same c at its centre (the x axis was once given the z spacing: an 80 mm slab)."""
    iso = np.zeros((30, 30, 30))
    iso[:, :, 10:20] = 1.0
    fine_x = np.zeros((30, 30, 60))
    fine_x[:, :, 20:40] = 1.0
    c_iso = medium_fraction(iso, (4.0, 4.0, 4.0))[15, 15, 15]
    c_fine = medium_fraction(fine_x, (2.0, 4.0, 4.0))[15, 15, 30]
    assert c_fine == pytest.approx(c_iso, rel=0.03)


def test_medium_fraction_does_not_depend_on_the_voxel_size():
    """4 mm voxels are pooled onto the 8 mm grid and interpolated back: the same slab seen at 8 and 4 mm."""
    coarse = np.zeros((40, 30, 30))
    coarse[10:21] = 1.0  # an 88 mm slab
    fine = np.repeat(np.repeat(np.repeat(coarse, 2, 0), 2, 1), 2, 2)
    c8 = medium_fraction(coarse, (8.0,) * 3)
    c4 = medium_fraction(fine, (4.0,) * 3)
    pooled = c4.reshape(40, 2, 30, 2, 30, 2).mean(axis=(1, 3, 5))
    np.testing.assert_allclose(pooled[10:21, 10:20, 10:20], c8[10:21, 10:20, 10:20], atol=0.02)
    assert c8[15, 15, 15] < 0.6  # mid-plane of a slab that thin: little of the sphere is body


def test_scatter_factor_leaves_the_unscattered_part_alone():
    band_kernels = np.zeros((3, 3, 3, 3))
    band_kernels[:, 1, 1, 1] = (1.0, 1.0, 2.0)
    assert scatter_fraction(band_kernels, 2) == pytest.approx(0.5)
    assert scatter_fraction(band_kernels, 2, (3.0, 1.0, 2.0)) == pytest.approx(4.0 / 8.0)
    density = np.ones((5, 5, 5))
    s = np.full(density.shape, 0.25)
    np.testing.assert_allclose(scatter_medium_factor(density, (4.0,) * 3, (1.0, 0.0), s), 1.0)  # f ≡ 1
    np.testing.assert_allclose(scatter_medium_factor(density, (4.0,) * 3, (0.0, 0.0), s), 0.75)  # no scatter
    np.testing.assert_allclose(scatter_medium_factor(density, (4.0,) * 3, (0.0, 0.0), np.zeros_like(s)), 1.0)
