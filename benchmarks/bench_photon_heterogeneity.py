"""The photon heterogeneity correction of ``vsv_scaled`` against the MC engine in a thorax phantom.

A 25.6 × 25.6 × 28.8 cm soft-tissue block at 4 mm with two lung blocks (0.26 g/cm³, 16 × 12.8 × 8 cm each), a hot
"heart" between them (20× the body level of 500 Bq/mL), a "liver" layer below (10×) and the body level elsewhere; the lungs without activity, then at the body level. For each nuclide it prints, by depth below the lung
surface, the photon part of ``vsv_scaled`` without and with the correction over the MC's photon tally, the same for
the whole dose rate, and the whole-structure ratios; then the seconds of the correction against the baseline's.
Nothing here was tuned: the correction has no fitted constant (docs/validation/photon_heterogeneity.md).

    python benchmarks/bench_photon_heterogeneity.py [--nuclides Lu177 Ga68] [--decays 1e7] [--seed 5]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage

from DeepDoseLib.mc import run_monte_carlo
from DeepDoseLib.methods.photon_heterogeneity import primary_excess_dose_rate, primary_terms
from DeepDoseLib.methods.scaled_vsv import compute_scaled_kernels, scaled_vsv_components
from DeepDoseLib.nuclides import get_nuclide
from DeepDoseLib.tissue import density_to_material

SPACING_mm = (4.0, 4.0, 4.0)
DEPTHS_mm = ((0, 4), (4, 8), (8, 12), (12, 20), (20, 30), (30, 80))


def thorax(lung_activity: float):
    """(activity [Bq/mL], density [g/cm³], lung mask, structures {name: mask}) of the phantom, (z, y, x)."""
    shape = (72, 64, 64)
    rho = np.ones(shape, np.float32)
    lung = np.zeros(shape, bool)
    lung[10:50, 16:48, 6:26] = True
    lung[10:50, 16:48, 38:58] = True
    rho[lung] = 0.26
    body = 500.0
    activity = np.full(shape, body, np.float32)
    heart = np.zeros(shape, bool)
    heart[14:40, 20:44, 28:36] = True
    activity[heart] = 20 * body
    activity[52:66] = 10 * body
    activity[lung] = lung_activity * body
    liver = np.zeros(shape, bool)
    liver[52:66] = True
    return activity, rho, lung, {"lung": lung, "heart": heart, "liver": liver, "rest of body": ~(lung | heart | liver)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nuclides", nargs="+", default=["Lu177", "Ga68"])
    parser.add_argument("--decays", type=float, default=1e7)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    for name in args.nuclides:
        nuclide = get_nuclide(name)
        kernels = compute_scaled_kernels(nuclide, SPACING_mm)
        terms = primary_terms(nuclide)
        for lung_activity in (0.0, 1.0):
            activity, rho, lung, structures = thorax(lung_activity)
            start = time.perf_counter()
            charged, photon = scaled_vsv_components(activity, rho, kernels)
            t_base = time.perf_counter() - start
            start = time.perf_counter()
            excess = primary_excess_dose_rate(activity, rho, SPACING_mm, terms)
            t_excess = time.perf_counter() - start
            mc = run_monte_carlo(activity, rho, density_to_material(rho), SPACING_mm, nuclide, int(args.decays),
                                 seed=args.seed, split_photons=True)
            mc_photon, mc_total = mc.photon_dose_rate_mGy_per_h, mc.dose_rate_mGy_per_h
            corrected = np.maximum(photon + excess, 0.0)
            depth = ndimage.distance_transform_edt(lung, sampling=SPACING_mm)
            state = "without activity" if lung_activity == 0 else "at the body level"
            print(f"\n## {name}, lungs {state} ({args.decays:.0e} decays; {len(terms[0])} line terms; baseline "
                  f"{t_base:.2f} s, correction {t_excess:.2f} s)\n")
            print("| depth in the lung | photon: vsv_scaled / MC | corrected / MC | whole dose: vsv_scaled / MC "
                  "| corrected / MC |\n|---|---|---|---|---|")
            for lo, hi in DEPTHS_mm:
                m = lung & (depth > lo + 0.1) & (depth <= hi + 0.1)
                print(f"| {lo}–{hi} mm | {photon[m].sum() / mc_photon[m].sum():.3f} | "
                      f"{corrected[m].sum() / mc_photon[m].sum():.3f} | "
                      f"{(charged + photon)[m].sum() / mc_total[m].sum():.3f} | "
                      f"{(charged + corrected)[m].sum() / mc_total[m].sum():.3f} |")
            for label, m in structures.items():
                print(f"| {label} (mean) | {photon[m].sum() / mc_photon[m].sum():.3f} | "
                      f"{corrected[m].sum() / mc_photon[m].sum():.3f} | "
                      f"{(charged + photon)[m].sum() / mc_total[m].sum():.3f} | "
                      f"{(charged + corrected)[m].sum() / mc_total[m].sum():.3f} |")


if __name__ == "__main__":
    main()
