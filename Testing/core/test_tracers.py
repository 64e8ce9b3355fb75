"""Tracer uptake: organ SUVs of generated cases in the cited ranges, whole-body mass balance
(mean SUV ≈ 1 − excretion), SUV ↔ Bq/mL conversion, therapy clearance by effective half-lives."""
from __future__ import annotations

import math

import numpy as np
import pytest

from DeepDoseLib.errors import DeepDoseInputError
from DeepDoseLib.nuclides import get_nuclide
from DeepDoseLib.phantoms import TRACERS, generate_torso, get_tracer, sample_torso_parameters
from DeepDoseLib.phantoms.activity import synthesize_activity
from DeepDoseLib.phantoms.ct_synthesis import synthesize_ct
from DeepDoseLib.phantoms.lesions import sample_lesions
from DeepDoseLib.phantoms.tracers import (REFERENCES, REST_OF_BODY_DENSITY_g_per_cm3, REST_OF_BODY_MASS_FRACTION,
                                          TUMOUR_SITES)
from DeepDoseLib.tissue import hu_to_density

DIAGNOSTIC = [name for name, t in TRACERS.items() if not t.effective_half_life_h]
THERAPY = [name for name, t in TRACERS.items() if t.effective_half_life_h]


@pytest.fixture(scope="module")
def anatomies():
    """(anatomy, density) for the nominal torso, two standard and one held-out random torso (4 mm)."""
    out = []
    for seed, family in ((None, None), (1, "standard"), (2, "standard"), (3, "heldout")):
        if seed is None:
            anatomy = generate_torso(spacing_mm=4.0)
        else:
            rng = np.random.default_rng(seed)
            anatomy = generate_torso(sample_torso_parameters(rng, family), 4.0, sample_lesions(rng, 5))
        out.append((anatomy, hu_to_density(synthesize_ct(anatomy, np.random.default_rng(0)).hu)))
    return out


def _organ_mean_suv(anatomy, suv, compartments):
    mask = np.isin(anatomy.labels, [v for v, i in anatomy.label_info.items() if i.compartment in compartments])
    return float(suv[mask].mean()) if mask.any() else None


@pytest.mark.parametrize("tracer", DIAGNOSTIC)
def test_organ_and_lesion_suvs_within_cited_ranges(anatomies, tracer):
    t = get_tracer(tracer)
    for k, (anatomy, density) in enumerate(anatomies):
        result = synthesize_activity(anatomy, density, t, np.random.default_rng(k))
        for compartment, (lo, hi) in t.suv.items():
            names = ("kidney_cortex", "kidney_medulla") if compartment == "kidney" else (compartment,)
            mean = _organ_mean_suv(anatomy, result.suv, names)
            if mean is None:
                continue  # e.g. no brain in the torso field of view
            # heterogeneity is exactly mean-preserving per label: float32 rounding only
            assert lo * 0.999 <= mean <= hi * 1.001, (tracer, compartment, mean, (lo, hi))
        for lesion in anatomy.lesions:
            lo, hi = t.tumour_suv[lesion.site]
            mean = float(result.suv[anatomy.labels == lesion.label].mean())
            assert lo * 0.999 <= mean <= hi * 1.001, (lesion.site, mean)
            if lesion.core_diameter_mm > 0 and (anatomy.labels == lesion.core_label).any():
                core = float(result.suv[anatomy.labels == lesion.core_label].mean())
                assert t.necrosis_suv[0] * 0.999 <= core <= t.necrosis_suv[1] * 1.001


def _whole_body(anatomy, density, result):
    """(activity fraction of the injected activity in the body, mass-weighted mean SUV of the body)."""
    voxel_mL = anatomy.voxel_volume_mL
    a_scan = result.activity_at_scan_Bq
    torso_fraction = float(result.activity_Bq_per_mL.sum(dtype=np.float64)) * voxel_mL / a_scan
    fraction = torso_fraction + result.rest_of_body["activity_fraction"]
    weight_g = result.weight_kg * 1000.0
    rest_g = result.rest_of_body["mass_kg"] * 1000.0
    rest_suv_mass = sum(result.compartment_suv[c] * f * rest_g for c, f in REST_OF_BODY_MASS_FRACTION.items())
    torso_suv_mass = float((result.suv.astype(np.float64) * density).sum()) * voxel_mL
    body = anatomy.labels > 0
    torso_g = float(density[body].sum(dtype=np.float64)) * voxel_mL
    return fraction, (torso_suv_mass + rest_suv_mass) / (torso_g + rest_g), weight_g


@pytest.mark.parametrize("tracer", DIAGNOSTIC)
def test_whole_body_mean_suv_is_one_minus_excretion(anatomies, tracer):
    levels = []
    for k, (anatomy, density) in enumerate(anatomies):
        for draw in range(3):
            result = synthesize_activity(anatomy, density, tracer, np.random.default_rng([k, draw]))
            fraction, mean_suv_mass, weight_g = _whole_body(anatomy, density, result)
            excreted = result.voided_fraction
            # activity in the body = injected × (1 − voided), computed from the Bq/mL image: float rounding only
            assert fraction == pytest.approx(1.0 - excreted, rel=2e-3)
            # mass-weighted mean SUV: SUV is per mL, so lungs (0.3 g/cm³), fat (0.95) and bone (1.1–1.9) make
            # it differ from the volume integral by a few per cent; 10 % tolerance
            assert mean_suv_mass == pytest.approx(1.0 - excreted, rel=0.1)
            levels.append(result.background_level)
    # the cited organ and background ranges are mutually consistent with mass conservation: the common
    # background position u that closes the balance sits inside its range, not piled up at an end
    assert 0.15 <= float(np.median(levels)) <= 0.85, levels


def test_suv_to_bq_per_ml_conversion(anatomies):
    anatomy, density = anatomies[0]
    result = synthesize_activity(anatomy, density, "Ga68-PSMA-11", np.random.default_rng(5), weight_kg=80.0,
                                 injected_MBq=150.0, uptake_time_h=1.0)
    half_life_h = get_nuclide("Ga68").half_life_s / 3600
    bq_per_suv = 150e6 * 2 ** (-1.0 / half_life_h) / 80_000.0  # A decayed to the scan / W [g]
    np.testing.assert_allclose(result.activity_Bq_per_mL, result.suv * bq_per_suv, rtol=1e-6)
    assert result.weight_kg == 80.0 and result.injected_MBq == 150.0


@pytest.mark.parametrize("tracer", THERAPY)
def test_therapy_clearance_follows_effective_half_lives(anatomies, tracer):
    anatomy, density = anatomies[1]
    t = get_tracer(tracer)
    early = synthesize_activity(anatomy, density, t, np.random.default_rng(9), injected_MBq=7400.0, uptake_time_h=24.0)
    late = synthesize_activity(anatomy, density, t, np.random.default_rng(9), injected_MBq=7400.0, uptake_time_h=72.0)
    lam_phys = math.log(2) / (get_nuclide(t.nuclide).half_life_s / 3600)
    for compartment in ("kidney_cortex", "liver", "spleen"):
        t_eff = early.effective_half_life_h[compartment]
        lo, hi = t.effective_half_life_h.get("kidney" if compartment.startswith("kidney") else compartment,
                                             t.effective_half_life_h["default"])
        assert lo <= t_eff <= hi
        # decay-corrected SUV clears with λ_eff − λ_phys; the physical concentration with λ_eff
        ratio = late.compartment_suv[compartment] / early.compartment_suv[compartment]
        assert ratio == pytest.approx(math.exp(-(math.log(2) / t_eff - lam_phys) * 48.0), rel=1e-9)
        mask = anatomy.labels == next(v for v, i in anatomy.label_info.items() if i.compartment == compartment)
        c_ratio = late.activity_Bq_per_mL[mask].mean() / early.activity_Bq_per_mL[mask].mean()
        assert c_ratio == pytest.approx(math.exp(-math.log(2) / t_eff * 48.0), rel=1e-4)
    for result in (early, late):  # what is not retained has been excreted
        fraction, _, _ = _whole_body(anatomy, density, result)
        assert fraction == pytest.approx(1.0 - result.voided_fraction, rel=2e-3)
    assert 0 < early.voided_fraction < late.voided_fraction < 1
    assert t.modality == "SPECT" and t.analogue in TRACERS


def test_tables_are_complete_and_cited():
    needed = {"kidney", "liver", "spleen", "bowel", "stomach", "pancreas", "thyroid", "parotid", "submandibular",
              "blood_pool", "lung", "muscle", "fat", "soft_tissue", "bone", "brain"}
    for t in TRACERS.values():
        assert set(t.suv) == needed and set(t.tumour_suv) == set(TUMOUR_SITES), t.name
        assert all(0 < lo <= hi for lo, hi in list(t.suv.values()) + list(t.tumour_suv.values()))
        cited = {key.strip() for text in t.sources.values() for key in text.replace("analogue", "").split(",")}
        assert {k for k in cited if not k.startswith(("Ga68", " Ga68"))} <= set(REFERENCES), t.name
        assert 0 <= t.bladder_fraction[0] <= t.bladder_fraction[1] < 0.5
    assert abs(sum(REST_OF_BODY_MASS_FRACTION.values()) - 1.0) < 1e-9
    assert set(REST_OF_BODY_MASS_FRACTION) == set(REST_OF_BODY_DENSITY_g_per_cm3)
    assert get_tracer("psma").name == "Ga68-PSMA-11" and get_tracer("RGD").name == "Ga68-NOTA-RGD"
    with pytest.raises(DeepDoseInputError, match="Unknown tracer"):
        get_tracer("FDG-XYZ")
