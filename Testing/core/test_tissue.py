"""HU → density and HU → material calibration."""
from __future__ import annotations

import numpy as np
import pytest

from DeepDoseLib.errors import DeepDoseInputError
from DeepDoseLib.tissue import (HUDensityCalibration, default_density_calibration, hu_to_density, hu_to_material,
                                material_names, materials)


def test_reference_points():
    # Schneider et al. 2000 anchors: air 0.00121, water-like tissue ~1.02 at 0 HU, cortical bone ~1.96 at 1600 HU
    rho = hu_to_density(np.array([-1000.0, 0.0, 1600.0, 3000.0]))
    np.testing.assert_allclose(rho, [0.00121, 1.0174, 1.9642, 2.8], rtol=1e-4)


def test_clamped_outside_table_and_monotonic_segments():
    assert hu_to_density(np.array([-3000.0]))[0] == pytest.approx(0.00121)
    assert hu_to_density(np.array([10000.0]))[0] == pytest.approx(2.8)
    hu = np.linspace(-1000, 100, 500)
    assert np.all(np.diff(hu_to_density(hu)) >= 0)


def test_lung_density_range():
    # inflated lung parenchyma -850..-700 HU is 0.15..0.30 g/cm³ (ICRP 89 lung with blood ~0.26 g/cm³)
    rho = hu_to_density(np.array([-850.0, -700.0]))
    assert 0.12 < rho[0] < 0.2 and 0.25 < rho[1] < 0.35


def test_matches_gate_schneider_table(shared_data):
    """Our anchor points equal the Schneider 2000 table distributed with GATE (independent copy)."""
    rows = []
    for line in (shared_data / "schneider2000" / "Schneider2000DensitiesTable.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and not line.startswith("#"):
            rows.append((float(parts[0]), float(parts[1])))
    ref = np.array(rows)
    np.testing.assert_allclose(hu_to_density(ref[:, 0]), ref[:, 1], rtol=1e-5)


def test_user_table(tmp_path):
    path = tmp_path / "scanner.csv"
    path.write_text("# my scanner\nhu,density_g_per_cm3\n-1000,0.001\n0,1.0\n1000,1.5\n")
    cal = HUDensityCalibration.from_csv(path)
    assert hu_to_density(np.array([500.0]), cal)[0] == pytest.approx(1.25)


@pytest.mark.parametrize("content,match", [
    ("hu,density\n0,1\n", "expected header"),
    ("hu,density_g_per_cm3\n0,1\n-10,1\n", "increase strictly"),
    ("hu,density_g_per_cm3\n0,1\n10,-1\n", "> 0"),
    ("hu,density_g_per_cm3\n0,1\nten,1\n", "non-numeric"),
])
def test_bad_user_tables(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DeepDoseInputError, match=match):
        HUDensityCalibration.from_csv(path)


def test_material_classes():
    names = material_names()
    hu = np.array([-1000, -800, -100, 40, 1000])
    assert [names[int(v)] for v in hu_to_material(hu)] == ["air", "lung", "adipose", "soft_tissue", "bone"]


def test_compositions_are_normalised_and_plausible():
    for m in materials().values():
        assert sum(m.mass_fractions.values()) == pytest.approx(1.0, abs=1e-9)
    # hydrogen: ~10 % in soft tissue (ICRU 46), 3.4 % in cortical bone, calcium only in bone
    assert materials()["soft_tissue"].mass_fractions["H"] == pytest.approx(0.105)
    assert materials()["bone"].mass_fractions["Ca"] == pytest.approx(0.225)
    assert "Ca" not in materials()["lung"].mass_fractions


def test_default_calibration_is_cached():
    assert default_density_calibration() is default_density_calibration()
