"""Isodose levels, masks and 2D isodose lines against analytic radial dose fields."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from DeepDoseLib.analysis import (IsodoseLevel, isodose_band_map, isodose_contours_2d, isodose_levels,
                                  isodose_masks)
from DeepDoseLib.errors import DeepDoseInputError


def test_relative_levels_from_a_reference_dose_or_a_map():
    levels = isodose_levels(20.0, percents=(50, 10, 90), unit="Gy")
    assert [lv.value for lv in levels] == pytest.approx([2.0, 10.0, 18.0])
    assert [lv.percent for lv in levels] == [10.0, 50.0, 90.0]
    assert levels[1].label == "50 % (10 Gy)" and float(levels[1]) == 10.0
    dose = sitk.GetImageFromArray(np.array([[[0.0, 4.0], [8.0, 2.0]]], np.float32))
    assert [lv.value for lv in isodose_levels(dose, percents=(25, 100))] == pytest.approx([2.0, 8.0])


def test_absolute_levels():
    levels = isodose_levels(levels=(5.0, 1.0), unit="mGy/h")
    assert [lv.value for lv in levels] == [1.0, 5.0] and levels[0].percent is None
    assert levels[0].label == "1 mGy/h"
    assert isodose_levels(10.0, levels=(5.0,))[0].percent == pytest.approx(50.0)


@pytest.mark.parametrize("kwargs, match", [({}, "reference"), ({"reference": 0.0}, "positive"),
                                           ({"reference": 1.0, "percents": (-5,)}, "positive"),
                                           ({"levels": ()}, "positive"), ({"reference": 1.0, "unit": "rad"}, "unit")])
def test_bad_levels_are_refused(kwargs, match):
    with pytest.raises(DeepDoseInputError, match=match):
        isodose_levels(**kwargs)


def radial_dose(shape=(41, 41, 41), spacing_mm=1.0):
    """Dose = 40 - r [mGy/h], r the distance in mm from the centre voxel."""
    coords = [spacing_mm * (np.arange(n) - (n - 1) / 2) for n in shape]
    z, y, x = np.meshgrid(*coords, indexing="ij")
    return 40.0 - np.sqrt(x ** 2 + y ** 2 + z ** 2)


def test_masks_and_band_map_follow_the_levels():
    dose = radial_dose()
    levels = isodose_levels(40.0, percents=(50, 75))  # 20 and 30 mGy/h: spheres of radius 20 and 10 mm
    masks = isodose_masks(dose, levels)
    assert list(masks) == [20.0, 30.0]
    # voxel counts of a sphere sampled on a 1 mm grid: within 2 % of 4/3 π r³ for r = 10 and 20 voxels
    assert masks[20.0].sum() == pytest.approx(4 / 3 * np.pi * 20 ** 3, rel=0.02)
    assert masks[30.0].sum() == pytest.approx(4 / 3 * np.pi * 10 ** 3, rel=0.02)
    band = isodose_band_map(sitk.GetImageFromArray(dose), levels)
    assert band.dtype == np.uint8 and band.max() == 2
    np.testing.assert_array_equal(band, masks[20.0].astype(np.uint8) + masks[30.0])


def test_contour_lines_are_circles_in_mm():
    """A radial 2D field on anisotropic pixels (0.5 × 0.8 mm): the level L line is the circle of radius
    40 - L around the centre, in mm; marching squares interpolates linearly between pixel centres, so the
    radius error is below the chord sag of a pixel, < 0.02 mm here."""
    spacing, origin = (0.5, 0.8), (-30.0, -24.0)
    x = origin[0] + spacing[0] * np.arange(121)
    y = origin[1] + spacing[1] * np.arange(61)
    field = 40.0 - np.hypot(*np.meshgrid(x, y, indexing="xy"))
    lines = isodose_contours_2d(field, [IsodoseLevel(25.0, "Gy"), 30.0, 100.0], spacing=spacing, origin=origin)
    assert set(lines) == {25.0, 30.0, 100.0} and lines[100.0] == []
    for level, radius in ((25.0, 15.0), (30.0, 10.0)):
        assert len(lines[level]) == 1
        line = lines[level][0]
        assert line.shape[1] == 2 and np.allclose(line[0], line[-1])  # closed
        np.testing.assert_allclose(np.hypot(line[:, 0], line[:, 1]), radius, atol=0.02)


def test_contour_lines_refuse_non_2d_input():
    with pytest.raises(DeepDoseInputError, match="2D"):
        isodose_contours_2d(np.zeros((3, 3, 3)), [1.0])
