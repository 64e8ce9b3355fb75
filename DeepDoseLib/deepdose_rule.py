"""The rule that bounds Deep-dose around its physics baseline and says when it falls back to it
(declared once; applied by :mod:`DeepDoseLib.deepdose.safety`). Pure data: no torch import, so that the method
registry can read the defaults cheaply."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

#: How the note on Deep-dose's fallback begins (:func:`DeepDoseLib.deepdose.safety.fallback_notes`); the report
#: and the Slicer panel find that note by it (:func:`fallback_note`).
FALLBACK_NOTE_PREFIX = "Deep-dose fell back to the density-scaled VSV baseline"

#: Values of the network-precision option (:mod:`DeepDoseLib.deepdose.precision` resolves ``auto``).
PRECISIONS: Tuple[str, ...] = ("auto", "float32", "bfloat16")

#: How the density-scaled VSV baseline treats photons crossing lung and bone (:mod:`DeepDoseLib.methods.scaled_vsv`):
#: ``primary`` (unscattered photons follow the voxels' densities) or ``none`` (every photon as in water: the input
#: baseline of the bundled Deep-dose networks). Here because the fallback rule picks one too.
PHOTON_HETEROGENEITY: Tuple[str, ...] = ("primary", "none")

#: Flip sets of the test-time augmentation, in the order they are used (axes of (z, y, x)).
FLIP_SETS: Tuple[Tuple[int, ...], ...] = ((), (2,), (1,), (0,), (1, 2), (0, 2), (0, 1), (0, 1, 2))


@dataclass(frozen=True)
class SafetyRule:
    """How far Deep-dose may move away from its physics baseline, and when it must not.

    Attributes
    ----------
    max_correction : float
        b: the output stays within B·(1 ± b). 0.3 by default: on an in-distribution torso 99.9 % of the network's
        corrections in tissue above 10 % of the maximum dose rate are smaller (p99 5.6 %), and the card's held-out
        validation gives |MC/B − 1| a 95th voxel percentile of 21.5 % (vsv_scaled, Ga-68), so corrections up to
        ≈ 30 % can be genuine (docs/validation/deepdose_generalization.md).
    flips : int
        Number of flipped copies for the uncertainty (0: none, no uncertainty map, no uncertainty fallback;
        at most 7; each costs one more network pass). 1 by default: on the 20-case held-out benchmark one flipped
        copy gave the same structure errors, voxel medians, fallback and coverage of the map as three (Ga-68:
        lungs within 5 % 16 against 14 of 20, coverage 95.6 against 95.7 %; Lu-177: all structures within 3 % 94
        against 95 %, coverage 96.7 against 96.6 %) in 0.6× the time (Deep-dose 7.6–7.9 s against 13.1–13.2 s a case
        on two cores; docs/validation/deepdose_generalization.md, "Eighth pass"). More copies estimate the spread
        with more degrees of freedom.
    min_tile_scale_fraction : float
        Fallback in tissue where the baseline is below this fraction of the scale s·k of the tiles that predicted
        the voxel (each tile is normalised by its own maximum; the network's error is close to absolute in those
        units, so it grows as 1/fraction in low-uptake tissue next to hot regions). 0.01 by default, measured on the
        validation and test cases of both bundled models (10 Lu-177, 18 Ga-68; structures whose MC mean is known
        to < 1 %): below 0.005 of the tile scale the network's structure mean was further from MC than its
        baseline's in 74 % (Lu-177) and 91 % (Ga-68) of the structures, from 0.005 to 0.01 in 57 % and 39 %,
        above 0.01 in 31 % and 18 % (docs/validation/deepdose_generalization.md, "Eighth pass"). 0 switches the
        check off.
    max_relative_uncertainty : float
        Fallback where σ/N̄ exceeds this (see ``uncertainty_dose_fraction``).
    uncertainty_dose_fraction : float
        The uncertainty fallback applies to tissue (≥ 0.05 g/cm³, lung included) whose dose rate exceeds this
        fraction of the maximum. 0 by default: a lung without activity gets < 1 % of the maximum and is exactly where
        the network fails (docs/validation/deepdose_generalization.md).
    voxel_size_range_mm : (float, float)
        Input voxel sizes the model supports (every axis); outside it the whole volume falls back.
    max_density_g_per_cm3 : float
        Density above which voxels fall back (the training CTs reach cortical bone, ≈ 1.9 g/cm³).
    max_activity_contrast : float
        Activity / median activity of the tissue above which voxels fall back.
    hot_contrast : float
        Activity / median activity of the tissue that makes a voxel part of a hot region.
    max_hot_volume_mL : float
        Hot regions larger than this fall back.
    fallback_margin_mm : float
        Flagged regions are grown by this distance.
    fallback_photon_heterogeneity : str
        The physics the fallback voxels get: the baseline B plus, with ``primary`` (the default), the dose of the
        unscattered photons that B's water kernel attenuates in lung (:mod:`DeepDoseLib.methods.photon_heterogeneity`;
        the photon dose of inactive lungs is 12–19 % low in B against MC, 5–7 % with it for Lu-177, 0–3 % for
        Ga-68, docs/validation/photon_heterogeneity.md). The networks refine B as they were trained; only the
        fallback changes. ``none``: B itself.
    interface_sigma : float
        c: the uncertainty map takes c × the baseline's charged-particle dose rate that crossed a density interface
        as one standard uncertainty (:func:`DeepDoseLib.methods.scaled_vsv.charged_dose_rates`; 0 switches the term
        off). 0.5 by default, no fitted constant: ±2σ spans the whole of that part. The density-scaled kernels are
        exact inside a homogeneous region and approximate only there (tissue next to lung or bone, lesions in lung);
        a network trained on homogeneous lungs refines the same approximation. On the 20-case held-out benchmarks
        the map without it covered the MC within ±2σ in 80 % of a real-CT slab's voxels above 10 % of the maximum
        (lung beside a 55× lesion: 51 %; docs/validation/deepdose_generalization.md, "Tenth pass").
    """

    max_correction: float = 0.3
    flips: int = 1
    min_tile_scale_fraction: float = 0.01
    max_relative_uncertainty: float = 0.1
    uncertainty_dose_fraction: float = 0.0
    voxel_size_range_mm: Tuple[float, float] = (2.0, 6.0)
    max_density_g_per_cm3: float = 2.3
    max_activity_contrast: float = 300.0
    hot_contrast: float = 100.0
    max_hot_volume_mL: float = 150.0
    fallback_margin_mm: float = 12.0
    fallback_photon_heterogeneity: str = "primary"
    interface_sigma: float = 0.5

    def __post_init__(self):
        if not 0.0 <= self.max_correction < 1.0:
            raise ValueError("max_correction must lie in [0, 1)")
        if not 0.0 <= self.min_tile_scale_fraction < 1.0:
            raise ValueError("min_tile_scale_fraction must lie in [0, 1)")
        if not 0 <= int(self.flips) < len(FLIP_SETS):
            raise ValueError(f"flips must lie in [0, {len(FLIP_SETS) - 1}]")
        if not 0.0 <= self.interface_sigma <= 1.0:
            raise ValueError("interface_sigma must lie in [0, 1]")
        if self.fallback_photon_heterogeneity not in PHOTON_HETEROGENEITY:
            raise ValueError(f"fallback_photon_heterogeneity must be one of {PHOTON_HETEROGENEITY}")

    def describe(self) -> str:
        return (f"bounded correction ±{100 * self.max_correction:g} % of the density-scaled VSV baseline; "
                f"uncertainty from {self.flips} flipped cop{'y' if self.flips == 1 else 'ies'}; fallback to the "
                f"baseline where it is below {100 * self.min_tile_scale_fraction:g} % of its tiles' scale, σ/dose > "
                f"{100 * self.max_relative_uncertainty:g} %, voxel size outside "
                f"{self.voxel_size_range_mm[0]:g}–{self.voxel_size_range_mm[1]:g} mm, density > "
                f"{self.max_density_g_per_cm3:g} g/cm³, activity > {self.max_activity_contrast:g}× the tissue "
                f"median or hot regions (> {self.hot_contrast:g}×) above {self.max_hot_volume_mL:g} mL, lungs less "
                f"active than in every training case (the card's training_range) (grown by "
                f"{self.fallback_margin_mm:g} mm)"
                + ("; the fallback adds the unscattered photons that cross lung and bone by their density"
                   if self.fallback_photon_heterogeneity == "primary" else "")
                + (f"; the uncertainty map takes {self.interface_sigma:g} × the charged-particle dose that crossed a "
                   "density interface as a standard uncertainty" if self.interface_sigma > 0 else ""))


def fallback_note(notes: Sequence[str]) -> Optional[str]:
    """The note that says where and how much Deep-dose fell back to its baseline (voxels, mL, % of the tissue,
    % of the activity), or None when ``notes`` hold none (another method, or no fallback)."""
    return next((n for n in notes if n.startswith(FALLBACK_NOTE_PREFIX)), None)
