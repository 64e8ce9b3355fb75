"""Organ statistics: analytic values on synthetic dose maps, fractional masks on other grids, tables."""
from __future__ import annotations

import csv
import math
import time

import numpy as np
import pytest
import SimpleITK as sitk

from DeepDoseLib.analysis import (CroppedMask, format_organ_table, fractional_mask, fractional_masks, organ_statistics,
                                  write_organ_table)
from DeepDoseLib.errors import DeepDoseInputError


def image(array, spacing=(2.0, 2.0, 2.0), origin=(0.0, 0.0, 0.0), direction=None, dtype=np.float32):
    im = sitk.GetImageFromArray(np.asarray(array, dtype=dtype))
    im.SetSpacing(spacing)
    im.SetOrigin(origin)
    if direction is not None:
        im.SetDirection(direction)
    return im


def ramp_case():
    """Dose = column index x (0..39) on a 4×6×40 grid; label 1 = columns 10..29, label 2 = columns 30..39."""
    x = np.broadcast_to(np.arange(40, dtype=np.float32), (4, 6, 40))
    labels = np.zeros((4, 6, 40), np.uint8)
    labels[:, :, 10:30] = 1
    labels[:, :, 30:] = 2
    return image(x), image(labels, dtype=np.uint8)


def test_statistics_of_a_uniform_ramp_are_exact():
    dose, labels = ramp_case()
    density = np.where(np.arange(40) < 20, 1.0, 3.0) * np.ones((4, 6, 40))
    rows = organ_statistics(dose, labels, {1: "target", 2: "rim"}, density_g_per_cm3=density, unit="Gy",
                            dose_levels=(25.0, 5.0))
    target = rows[0]
    assert [r.name for r in rows] == ["target", "rim"] and target.unit == "Gy"
    n_voxels = 4 * 6 * 20
    assert target.volume_mL == pytest.approx(n_voxels * 8e-3) == target.structure_volume_mL
    assert target.mass_g == pytest.approx(4 * 6 * (10 * 1.0 + 10 * 3.0) * 8e-3)
    # columns 10..29 each hold the same number of voxels: the voxel mean is 19.5, the mass-weighted mean
    # (145 × 1 + 245 × 3) / (10 + 30) = 22.0
    assert target.mean_voxel_weighted == pytest.approx(19.5)
    assert target.mean_mass_weighted == pytest.approx(22.0) == target.mean
    assert target.mean_weighting == "mass"
    # hottest 2 % → the top column (29); 50 % of 20 columns → the 10th hottest (20); 98 % → 10
    assert (target.D2, target.D50, target.median, target.D98) == (29.0, 20.0, 20.0, 10.0)
    assert (target.min, target.max) == (10.0, 29.0)
    assert target.v_percent == {25.0: pytest.approx(25.0), 5.0: pytest.approx(100.0)}  # columns 25..29 = 5/20


def test_without_density_means_are_voxel_weighted_and_mass_is_nan():
    dose, labels = ramp_case()
    row = organ_statistics(dose, labels, {1: "target"})[0]
    assert math.isnan(row.mass_g) and math.isnan(row.mean_mass_weighted)
    assert row.mean_weighting == "voxel" and row.mean == pytest.approx(19.5)
    assert row.mean_mGy_per_h == pytest.approx(19.5) and row.max_mGy_per_h == 29.0  # default unit mGy/h
    assert row.name == "target" and organ_statistics(dose, labels, {})[1].name == "label 2"


def test_fractional_masks_weight_every_statistic():
    dose = image(np.arange(8, dtype=np.float32).reshape(2, 2, 2))
    fractions = np.zeros((2, 2, 2), np.float32)
    fractions[0, 0, 1] = 0.5  # dose 1
    fractions[1, 1, 1] = 1.0  # dose 7
    row = organ_statistics(dose, {"partial": fractions}, density_g_per_cm3=np.full((2, 2, 2), 2.0))[0]
    assert row.volume_mL == pytest.approx(1.5 * 8e-3)
    assert row.mass_g == pytest.approx(2.0 * 1.5 * 8e-3)
    assert row.mean_voxel_weighted == pytest.approx((0.5 * 1 + 7) / 1.5)
    # 1/3 of the volume is at dose 1, 2/3 at dose 7: D50 = 7, D98 = 1
    assert (row.D50, row.D98, row.min, row.max) == (7.0, 1.0, 1.0, 7.0)


def sphere_labels(radius_mm, centre_mm, spacing_mm=0.6, half_width_mm=30.0):
    """A sphere on a 0.6 mm grid (0.6 mm keeps the sub-sample points of 3–4 mm dose voxels off the label
    voxel faces, where nearest neighbour would have to break ties and shift the boundary by 0.3 mm)."""
    n = int(round(2 * half_width_mm / spacing_mm))
    coords = -half_width_mm + spacing_mm * (np.arange(n) + 0.5)
    z, y, x = np.meshgrid(coords, coords, coords, indexing="ij")
    inside = (x - centre_mm[0]) ** 2 + (y - centre_mm[1]) ** 2 + (z - centre_mm[2]) ** 2 <= radius_mm ** 2
    return image(inside.astype(np.uint8), (spacing_mm,) * 3, (coords[0],) * 3, dtype=np.uint8)


def rotation_z(deg):
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return (c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0)


@pytest.mark.parametrize("direction", [None, rotation_z(30.0)], ids=["axial", "oblique"])
def test_labels_on_a_finer_grid_become_fractions_with_the_analytic_volume(direction):
    """A 12 mm sphere drawn on a 0.6 mm grid, dose on a 4 mm grid (oblique or not)."""
    labels = sphere_labels(12.0, (1.3, -0.7, 0.4))
    dose_array = np.ones((16, 16, 16), np.float32)
    dose = image(dose_array, (4.0, 4.0, 4.0), (-30.0, -30.0, -30.0), direction)
    if direction is not None:  # keep the sphere inside the rotated grid
        centre = dose.TransformContinuousIndexToPhysicalPoint([7.5, 7.5, 7.5])
        dose.SetOrigin(tuple(np.array(dose.GetOrigin()) - np.array(centre)))
    analytic_mL = 4 / 3 * np.pi * 12.0 ** 3 * 1e-3
    row = organ_statistics(dose, labels, {1: "sphere"}, oversampling=4)[0]
    # the 0.6 mm label map itself is within 0.5 % of the sphere; 64 sub-samples per 4 mm voxel add
    # a sampling error well below 1 % for a sphere of ~110 dose voxels
    assert row.structure_volume_mL == pytest.approx(analytic_mL, rel=5e-3)
    assert row.volume_mL == pytest.approx(row.structure_volume_mL, rel=1e-2)
    mask = fractional_masks(labels, dose, [1], oversampling=4)[1]
    partial = (mask.fraction > 0) & (mask.fraction < 1)
    assert partial.sum() > 50  # the border voxels are partial, not rounded to 0 or 1


def test_structure_half_outside_the_dose_grid():
    labels = sphere_labels(15.0, (0.0, 0.0, 0.0))
    dose = image(np.full((10, 20, 20), 2.0), (3.0, 3.0, 3.0), (-28.5, -28.5, 1.5))  # covers z > 0 only
    row = organ_statistics(dose, labels, {1: "sphere"}, oversampling=3)[0]
    assert row.volume_mL / row.structure_volume_mL == pytest.approx(0.5, abs=0.01)
    assert row.mean == pytest.approx(2.0)
    outside = image(np.ones((4, 4, 4)), (3.0, 3.0, 3.0), (100.0, 100.0, 100.0))
    empty = organ_statistics(outside, labels, {1: "sphere"})[0]
    assert empty.volume_mL == 0.0 and math.isnan(empty.mean) and empty.structure_volume_mL > 0


def test_identical_grids_give_exact_binary_fractions():
    dose, labels = ramp_case()
    mask = fractional_masks(labels, dose, [1, 2, 7], oversampling=3)
    assert set(np.unique(mask[1].fraction)) == {0.0, 1.0} and mask[1].full().sum() == 4 * 6 * 20
    assert mask[7].is_empty  # absent label
    assert isinstance(fractional_mask(labels, dose, 2), CroppedMask)


def test_bad_inputs_are_refused():
    dose, labels = ramp_case()
    with pytest.raises(DeepDoseInputError, match="unit"):
        organ_statistics(dose, labels, {}, unit="Sv")
    with pytest.raises(DeepDoseInputError, match="oversampling"):
        organ_statistics(dose, labels, {}, oversampling=0)
    with pytest.raises(DeepDoseInputError, match="shape"):
        organ_statistics(dose, {"x": np.ones((2, 2, 2))})
    with pytest.raises(DeepDoseInputError, match="density"):
        organ_statistics(dose, labels, {}, density_g_per_cm3=-np.ones((4, 6, 40)))
    nan_dose = sitk.GetArrayFromImage(dose)
    nan_dose[0, 0, 0] = np.nan
    with pytest.raises(DeepDoseInputError, match="NaN"):
        organ_statistics(image(nan_dose), labels, {})


@pytest.mark.parametrize("suffix, delimiter", [(".csv", ","), (".tsv", "\t")])
def test_organ_table_files(tmp_path, suffix, delimiter):
    dose, labels = ramp_case()
    rows = organ_statistics(dose, labels, {1: "target", 2: "rim"}, unit="Gy", dose_levels=(25.0,))
    path = write_organ_table(rows, tmp_path / f"organs{suffix}")
    with open(path, newline="") as handle:
        table = list(csv.DictReader(handle, delimiter=delimiter))
    assert [r["organ"] for r in table] == ["target", "rim"]
    assert float(table[0]["mean_voxel_weighted_Gy"]) == pytest.approx(19.5)
    assert float(table[0]["D50_Gy"]) == 20.0 and float(table[0]["V25_Gy_percent"]) == pytest.approx(25.0)
    assert table[0]["mass_g"] == "nan"
    with pytest.raises(DeepDoseInputError, match="csv"):
        write_organ_table(rows, tmp_path / "organs.xlsx")


def test_compact_table_keeps_its_columns():
    dose, labels = ramp_case()
    text = format_organ_table(organ_statistics(dose, labels, {1: "target"}))
    assert text.splitlines()[0] == "organ\tvolume_mL\tmass_g\tmean_mGy_per_h\tmax_mGy_per_h\tmean_weighting"
    assert text.splitlines()[1].split("\t")[3] == "19.5"


def test_large_grid_is_fast():
    """200×200×400 voxels with three organs: same-grid labels and labels on a coarser shifted grid."""
    rng = np.random.default_rng(0)
    shape = (400, 200, 200)
    dose = image(rng.random(shape, dtype=np.float32), (2.0, 2.0, 2.0))
    z, y, x = np.ogrid[:400, :200, :200]
    labels = np.zeros(shape, np.uint8)
    labels[:] = (x - 100) ** 2 + (y - 100) ** 2 < 80 ** 2
    labels[(x - 70) ** 2 + (y - 100) ** 2 + (z - 200) ** 2 < 30 ** 2] = 2
    labels[(x - 130) ** 2 + (y - 100) ** 2 + (z - 150) ** 2 < 20 ** 2] = 3
    start = time.perf_counter()
    same = organ_statistics(dose, image(labels, (2.0, 2.0, 2.0), dtype=np.uint8), {}, dose_levels=(0.5,))
    coarse = organ_statistics(dose, image(labels[::2, ::2, ::2], (4.0, 4.0, 4.0), (1.0, 1.0, 1.0), dtype=np.uint8), {},
                              oversampling=2)
    elapsed = time.perf_counter() - start
    assert elapsed < 30.0, f"{elapsed:.1f} s"  # ~6 s on 2 shared cores
    for a, b in zip(same, coarse):  # uniform random dose: mean 0.5 (σ of the mean ≤ 0.0016 for ≥ 33,000 voxels: 6σ), volumes to a few %
        assert a.mean == pytest.approx(0.5, abs=0.01) and b.mean == pytest.approx(0.5, abs=0.01)
        assert b.volume_mL == pytest.approx(a.volume_mL, rel=0.03)
    assert same[0].v_percent[0.5] == pytest.approx(50.0, abs=0.2)
