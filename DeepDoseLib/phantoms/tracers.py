"""Tracer uptake tables (SUVmean ranges per compartment, with sources) and their per-case draws.

SUV here is the body-weight SUV of the decay-corrected activity concentration:
``SUV = C [Bq/mL] · W [g] / A_injected [Bq]`` (decay-corrected to injection). Ranges are rounded spans
of the mean (± about one SD) reported in the cited studies; where a study gives only SUVmax of
homogeneous organs, SUVmean was taken as 0.6–0.8 × SUVmax. ``bowel`` is the mean over the whole
intestine label (walls and contents, small bowel and colon): lower than the small-bowel wall SUVs that
the studies report (duodenum/jejunum ≈ 5–10 for PSMA). They are meant to give realistic training
data, not reference values for clinical decisions.

Mass balance: organ, lesion and excretion values are drawn in their ranges; the *background*
compartments (muscle, fat, soft tissue, bone, lung, blood pool, brain) share one patient-level
position u in their ranges, solved so that the activity in the body (torso + the rest of the body
outside the field of view) equals ``1 − voided fraction`` of the injected activity. Draws that would
need a background outside its range are redrawn, so every value stays in its cited range; that
u is rarely near 0 or 1 shows that the tables are consistent with mass conservation (tested).

Therapy (Lu-177): the uptake pattern at ``reference_time_h`` is that of the diagnostic analogue
(Ga-68 PSMA-11 for Lu-177 PSMA-617, Ga-68 DOTATATE for Lu-177 DOTATATE; same targets, similar
normal-organ patterns), then each compartment clears with its effective half-life:
C(t) = C(t_ref) · exp(−ln 2 (t − t_ref) / T_eff), so the biological clearance is
λ_bio = ln 2 / T_eff − λ_phys. What is not retained has been excreted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np

from ..errors import DeepDoseInputError

Range = Tuple[float, float]

#: Compartments scaled to close the mass balance.
BACKGROUND = ("muscle", "fat", "soft_tissue", "bone", "lung", "blood_pool", "brain")
#: Composition by mass of the body outside the torso field of view (head, arms, legs), after the
#: ICRP 89 reference male/female tissue masses (muscle ≈ 40 %, adipose ≈ 25–30 %, skeleton ≈ 15 %).
REST_OF_BODY_MASS_FRACTION = {"muscle": 0.45, "fat": 0.28, "bone": 0.17, "soft_tissue": 0.07, "brain": 0.03}
REST_OF_BODY_DENSITY_g_per_cm3 = {"muscle": 1.05, "fat": 0.95, "bone": 1.3, "soft_tissue": 1.03, "brain": 1.04}
TUMOUR_SITES = ("liver", "lymph_node", "bone", "lung")

REFERENCES = {
    "Pras16": "V. Prasad et al., Biodistribution of [68Ga]PSMA-HBED-CC in patients with prostate cancer: "
              "characterization of uptake in normal organs and tumour lesions. Mol Imaging Biol 18:428 (2016)",
    "Demi16": "E. Demirci et al., Normal distribution pattern and physiological variants of 68Ga-PSMA-11 PET/CT "
              "imaging. Nucl Med Commun 37:1169 (2016)",
    "Much20": "M. Muchnik Kurash et al., 68Ga-labeled PSMA-11 (68Ga-isoPROtrace-11) synthesized with ready to use "
              "kit: normal biodistribution and uptake characteristics of tumour lesions. Sci Rep 10:3109 (2020) "
              "(SUVmean kidneys 41.7, parotid 14.5, submandibular 13.0; lesion SUVmax 14.6 ± 13.7 nodes, "
              "15.9 ± 15.9 bone)",
    "Afsh16": "A. Afshar-Oromieh et al., Radiation dosimetry of 68Ga-PSMA-11 (HBED-CC) and preliminary "
              "evaluation of optimal imaging timing. Eur J Nucl Med Mol Imaging 43:1611 (2016)",
    "Kuyu13": "S. Kuyumcu et al., Physiological and tumoral uptake of 68Ga-DOTATATE: standardized uptake values "
              "and challenges in interpretation. Ann Nucl Med 27:538 (2013) (SUVmax spleen 24.7, kidneys 14.3, "
              "liver 9.1; lesions liver 28.7, bone 18.3, nodes 12.6)",
    "Ozgu21": "S. Özgüven et al., Physiological biodistribution of 68Ga-DOTA-TATE in normal subjects. "
              "Mol Imaging Radionucl Ther 30:39 (2021)",
    "Kim12": "J.H. Kim et al., Whole-body distribution and radiation dosimetry of 68Ga-NOTA-RGD, a positron "
             "emission tomography agent for angiogenesis imaging. Cancer Biother Radiopharm 27:65 (2012)",
    "Chen16": "H. Chen et al., Clinical application of radiolabeled RGD peptides for PET imaging of integrin "
              "αvβ3. Theranostics 6:78 (2016) (high renal/bladder, moderate liver/spleen/bowel, low background)",
    "Lee19": "M.S. Lee et al., Deep-dose: a voxel dose estimation method using deep convolutional neural "
             "network for personalized internal dosimetry. Sci Rep 9:10308 (2019) (68Ga-NOTA-RGD patients)",
    "Krat16": "C. Kratochwil et al., PSMA-targeted radionuclide therapy of metastatic castration-resistant "
              "prostate cancer with 177Lu-labeled PSMA-617. J Nucl Med 57:1170 (2016)",
    "Delk16": "A. Delker et al., Dosimetry for 177Lu-DKFZ-PSMA-617: a new radiopharmaceutical for the treatment "
              "of metastatic prostate cancer. Eur J Nucl Med Mol Imaging 43:42 (2016)",
    "Viol19": "J. Violet et al., Dosimetry of 177Lu-PSMA-617 in metastatic castration-resistant prostate cancer. "
              "J Nucl Med 60:517 (2019)",
    "Sand13": "M. Sandström et al., Individualized dosimetry of kidney and bone marrow in patients undergoing "
              "177Lu-DOTA-octreotate treatment. J Nucl Med 54:33 (2013)",
    "Gars12": "U. Garske et al., Minor changes in effective half-life during fractionated 177Lu-octreotate "
              "therapy. Acta Oncol 51:86 (2012)",
}


@dataclass(frozen=True)
class TracerModel:
    """Uptake model of one radiopharmaceutical (see the module docstring for the conventions).

    Attributes:
        suv: compartment → SUVmean range at the uptake time (diagnostic) or at ``reference_time_h``.
            ``kidney`` is the whole-organ mean, split into cortex and medulla with
            ``kidney_cortex_to_medulla``.
        tumour_suv: lesion site → SUVmean range; ``necrosis_suv`` for necrotic cores.
        bladder_fraction, voided_fraction: injected-activity fractions in the bladder at the scan and
            voided before it (decay-corrected).
        effective_half_life_h: therapy only: compartment → T_eff range [h] (``default`` for the rest).
        heterogeneity: compartment → relative SD of the smooth intra-organ variation (``default``).
        sources: key → what the ranges rest on (keys of :data:`REFERENCES`).
    """

    name: str
    nuclide: str
    modality: str
    injected_MBq: Range
    uptake_time_h: Range
    suv: Dict[str, Range]
    kidney_cortex_to_medulla: Range
    bladder_fraction: Range
    voided_fraction: Range
    tumour_suv: Dict[str, Range]
    necrosis_suv: Range
    sources: Dict[str, str]
    analogue: Optional[str] = None
    reference_time_h: float = 1.0
    effective_half_life_h: Dict[str, Range] = field(default_factory=dict)
    heterogeneity: Dict[str, float] = field(default_factory=lambda: {
        "default": 0.08, "bowel": 0.25, "stomach": 0.15, "kidney_cortex": 0.1, "urine": 0.0, "tumour": 0.25})


_PSMA11 = TracerModel(
    name="Ga68-PSMA-11", nuclide="Ga68", modality="PET", injected_MBq=(100.0, 200.0), uptake_time_h=(0.83, 1.25),
    suv={"kidney": (20.0, 45.0), "parotid": (9.0, 17.0), "submandibular": (9.0, 17.0), "liver": (4.0, 8.0),
         "spleen": (5.0, 11.0), "bowel": (1.5, 4.0), "stomach": (1.2, 3.5), "pancreas": (1.5, 4.0),
         "thyroid": (1.0, 3.0), "blood_pool": (1.0, 2.5), "lung": (0.3, 0.9), "muscle": (0.45, 1.1),
         "fat": (0.15, 0.5), "soft_tissue": (0.5, 1.3), "bone": (0.7, 1.8), "brain": (0.03, 0.2)},
    kidney_cortex_to_medulla=(1.5, 2.5), bladder_fraction=(0.03, 0.12), voided_fraction=(0.0, 0.1),
    tumour_suv={"lymph_node": (5.0, 30.0), "bone": (5.0, 30.0), "liver": (5.0, 25.0), "lung": (4.0, 20.0)},
    necrosis_suv=(0.3, 1.5),
    sources={"organs": "Pras16, Demi16, Much20", "excretion": "Afsh16", "tumours": "Much20, Pras16"})

_DOTATATE = TracerModel(
    name="Ga68-DOTATATE", nuclide="Ga68", modality="PET", injected_MBq=(100.0, 200.0), uptake_time_h=(0.75, 1.25),
    suv={"spleen": (12.0, 28.0), "kidney": (7.0, 16.0), "liver": (4.5, 9.0), "stomach": (2.0, 6.0),
         "bowel": (1.0, 3.5), "pancreas": (2.0, 7.0), "thyroid": (1.5, 5.0), "parotid": (1.0, 3.0),
         "submandibular": (1.0, 3.0), "blood_pool": (0.8, 2.0), "lung": (0.3, 0.8), "muscle": (0.4, 1.0),
         "fat": (0.15, 0.45), "soft_tissue": (0.4, 1.1), "bone": (0.6, 1.6), "brain": (0.02, 0.12)},
    kidney_cortex_to_medulla=(1.5, 2.5), bladder_fraction=(0.03, 0.12), voided_fraction=(0.0, 0.1),
    tumour_suv={"liver": (10.0, 30.0), "lymph_node": (6.0, 20.0), "bone": (6.0, 20.0), "lung": (5.0, 20.0)},
    necrosis_suv=(0.3, 1.5), sources={"organs": "Kuyu13, Ozgu21", "tumours": "Kuyu13"})

_NOTA_RGD = TracerModel(
    name="Ga68-NOTA-RGD", nuclide="Ga68", modality="PET", injected_MBq=(150.0, 250.0), uptake_time_h=(0.75, 1.25),
    suv={"kidney": (4.0, 10.0), "liver": (1.5, 3.5), "spleen": (1.5, 4.0), "bowel": (0.8, 2.5),
         "stomach": (0.8, 2.5), "pancreas": (0.8, 2.0), "thyroid": (0.8, 2.5), "parotid": (0.6, 1.8),
         "submandibular": (0.6, 1.8), "blood_pool": (0.8, 2.0), "lung": (0.25, 0.7), "muscle": (0.35, 0.9),
         "fat": (0.12, 0.4), "soft_tissue": (0.4, 1.2), "bone": (0.5, 1.3), "brain": (0.03, 0.2)},
    kidney_cortex_to_medulla=(1.3, 2.0), bladder_fraction=(0.08, 0.3), voided_fraction=(0.0, 0.15),
    tumour_suv={"lymph_node": (2.0, 7.0), "bone": (2.0, 7.0), "liver": (2.0, 6.0), "lung": (2.0, 8.0)},
    necrosis_suv=(0.3, 1.0), sources={"organs": "Kim12, Chen16, Lee19", "tumours": "Chen16"})

_LU_PSMA = TracerModel(
    name="Lu177-PSMA-617", nuclide="Lu177", modality="SPECT", injected_MBq=(6000.0, 7600.0),
    uptake_time_h=(20.0, 28.0), suv=_PSMA11.suv, kidney_cortex_to_medulla=(1.5, 2.5),
    bladder_fraction=(0.005, 0.03), voided_fraction=(0.0, 0.0), tumour_suv=_PSMA11.tumour_suv,
    necrosis_suv=(0.2, 1.0), analogue="Ga68-PSMA-11", reference_time_h=1.0,
    effective_half_life_h={"kidney": (30.0, 45.0), "parotid": (30.0, 45.0), "submandibular": (30.0, 45.0),
                           "liver": (35.0, 55.0), "spleen": (35.0, 55.0), "bowel": (25.0, 45.0),
                           "tumour": (45.0, 80.0), "blood_pool": (10.0, 25.0), "default": (20.0, 40.0)},
    sources={"pattern": "analogue Ga68-PSMA-11", "effective half-lives": "Krat16, Delk16, Viol19"})

_LU_DOTATATE = TracerModel(
    name="Lu177-DOTATATE", nuclide="Lu177", modality="SPECT", injected_MBq=(7000.0, 7800.0),
    uptake_time_h=(20.0, 28.0), suv=_DOTATATE.suv, kidney_cortex_to_medulla=(1.5, 2.5),
    bladder_fraction=(0.005, 0.03), voided_fraction=(0.0, 0.0), tumour_suv=_DOTATATE.tumour_suv,
    necrosis_suv=(0.2, 1.0), analogue="Ga68-DOTATATE", reference_time_h=1.0,
    effective_half_life_h={"kidney": (40.0, 70.0), "spleen": (55.0, 90.0), "liver": (55.0, 90.0),
                           "tumour": (60.0, 110.0), "blood_pool": (15.0, 35.0), "default": (30.0, 60.0)},
    sources={"pattern": "analogue Ga68-DOTATATE", "effective half-lives": "Sand13, Gars12"})

TRACERS: Dict[str, TracerModel] = {t.name: t for t in (_PSMA11, _DOTATATE, _NOTA_RGD, _LU_PSMA, _LU_DOTATATE)}
_ALIASES = {"psma": "Ga68-PSMA-11", "psma-11": "Ga68-PSMA-11", "dotatate": "Ga68-DOTATATE",
            "rgd": "Ga68-NOTA-RGD", "nota-rgd": "Ga68-NOTA-RGD", "lu-psma": "Lu177-PSMA-617",
            "psma-617": "Lu177-PSMA-617", "lu-dotatate": "Lu177-DOTATATE"}


def get_tracer(name: "str | TracerModel") -> TracerModel:
    """Tracer by name (``Ga68-PSMA-11``, ``Ga68-DOTATATE``, ``Ga68-NOTA-RGD``, ``Lu177-PSMA-617``,
    ``Lu177-DOTATATE``; case-insensitive, short aliases such as ``psma`` or ``rgd`` accepted)."""
    if isinstance(name, TracerModel):
        return name
    by_lower = {k.lower(): k for k in TRACERS}
    key = by_lower.get(str(name).lower()) or _ALIASES.get(str(name).lower())
    if key is None:
        raise DeepDoseInputError(f"Unknown tracer {name!r}; known: {', '.join(TRACERS)}.")
    return TRACERS[key]


def effective_half_life_range(tracer: TracerModel, compartment: str) -> Optional[Range]:
    """T_eff range [h] of a compartment (tumour sites share ``tumour``), None for diagnostic tracers."""
    if not tracer.effective_half_life_h:
        return None
    key = "tumour" if compartment.startswith("tumour") else compartment
    if key in ("kidney_cortex", "kidney_medulla"):
        key = "kidney"
    return tracer.effective_half_life_h.get(key, tracer.effective_half_life_h["default"])


def uniform(rng: np.random.Generator, r: Range) -> float:
    """A uniform draw in the closed range r (r[0] when the range is a point)."""
    return float(r[0]) if r[1] <= r[0] else float(rng.uniform(r[0], r[1]))
