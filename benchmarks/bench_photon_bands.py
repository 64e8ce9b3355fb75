"""The photon part of the density-scaled VSV baseline against Monte Carlo: one bone factor, photon bands,
photon bands with the scatter-medium correction.

Two checks, each with the MC split tally as reference (photon part only; the charged part does not
change with either):

* a two-voxel bone layer at the centre of uniform soft-tissue cubes of 16, 23 and 30 cm (41, 57, 75 voxels
  of 4 mm): the baseline's error in the bone layer and in the tissue 4–8 voxels beside it, in the central half;
  the bone error relative to the tissue one is what the photon factors decide;
* the held-out anatomies of ``../shared/data`` (ICRP-110 AF, TotalSegmentator slab; synthetic uptake as in
  ``bench_deepdose.py``): mass-weighted photon and total dose-rate error per organ, and in the skeleton per
  material class.

    python benchmarks/bench_photon_bands.py [--nuclides Ga68 Lu177] [--device cuda] [--decays 1e7]
        [--kernel-decays 1e6] [--no-anatomies]
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from DeepDoseLib.mc import run_monte_carlo
from DeepDoseLib.methods.scaled_vsv import (compute_scaled_kernels, layered_soft_tissue_source, photon_dose_rate,
                                            scaled_vsv_components)
from DeepDoseLib.tissue import materials

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_deepdose import SHARED, load_anatomy  # noqa: E402

SPACING = (4.0, 4.0, 4.0)
TRACERS = {"Ga68": "Ga68-PSMA-11", "Lu177": "Lu177-PSMA-617"}


def cubes(nuc: str, kernels: dict, device: str, decays: int, log) -> None:
    for n in (41, 57, 75):
        z = n // 2
        activity, rho, labels = layered_soft_tissue_source((n, n, n), {"bone": z})
        mc = run_monte_carlo(activity, rho, labels, SPACING, nuc, decays, seed=5, device=device,
                             split_photons=True).photon_dose_rate_mGy_per_h
        c = slice(n // 4, n - n // 4)
        cells = []
        for k in kernels.values():
            p = photon_dose_rate(activity.astype(np.float64) * 0.064, rho, k, device=device)
            b = p[z:z + 2, c, c].mean() / mc[z:z + 2, c, c].mean()
            t = p[z - 8:z - 4, c, c].mean() / mc[z - 8:z - 4, c, c].mean()
            cells.append(f"{100 * (b - 1):+.1f} / {100 * (t - 1):+.1f} / {100 * (b / t - 1):+.1f}")
        log(f"| {nuc} | {n * 4 / 10:.0f} cm cube | " + " | ".join(cells) + " |")


def anatomies(nuc: str, kernels: dict, device: str, decays: int, shared: Path, log) -> None:
    import SimpleITK as sitk

    from DeepDoseLib.deepdose.evaluation import organ_masks
    from DeepDoseLib.phantoms.case import case_from_anatomy

    for name in ("icrp110_af", "totalsegmentator"):
        anatomy = load_anatomy(name, SPACING[0], shared, 11)
        case = case_from_anatomy(anatomy, TRACERS[nuc], 11)
        a = sitk.GetArrayFromImage(case.true_activity).astype(np.float32)
        rho = sitk.GetArrayFromImage(case.density).astype(np.float32)
        organs = organ_masks(sitk.GetArrayFromImage(case.labels), case.label_names, float(np.prod(SPACING)) * 1e-3)
        mc = run_monte_carlo(a, rho, case.material_labels, SPACING, nuc, decays, seed=3, device=device,
                             split_photons=True)
        base = {name: scaled_vsv_components(a, rho, k, device=device) for name, k in kernels.items()}

        def mean(dose, mask):
            return float((dose[mask] * rho[mask]).sum() / rho[mask].sum())

        rows = [(org, organs[org]) for org in ("bone", "lungs", "liver", "kidneys") if org in organs and organs[org].any()]
        names = {v.label: k for k, v in materials().items()}
        rows += [(f"bone: {names[int(m)]} voxels", organs["bone"] & (case.material_labels == m))
                 for m in np.unique(case.material_labels[organs["bone"]])]
        for org, mask in rows:
            cells = [f"{100 * (mean(ph, mask) / mean(mc.photon_dose_rate_mGy_per_h, mask) - 1):+.1f} / "
                     f"{100 * (mean(ch + ph, mask) / mean(mc.dose_rate_mGy_per_h, mask) - 1):+.1f}"
                     for ch, ph in base.values()]
            share = mean(mc.photon_dose_rate_mGy_per_h, mask) / mean(mc.dose_rate_mGy_per_h, mask)
            log(f"| {nuc} | {name} {org} ({int(mask.sum())} voxels, photon share {share:.2f}) | " + " | ".join(cells) + " |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nuclides", nargs="+", default=["Ga68", "Lu177"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--decays", type=float, default=1e7, help="MC decays per cube (twice that per anatomy)")
    ap.add_argument("--kernel-decays", type=float, default=1e6)
    ap.add_argument("--shared", type=Path, default=SHARED)
    ap.add_argument("--no-anatomies", action="store_true")
    args = ap.parse_args(argv)
    start = time.perf_counter()

    def log(line: str) -> None:
        print(f"{line}  [{time.perf_counter() - start:.0f} s]", flush=True)

    for nuc in args.nuclides:
        banded = compute_scaled_kernels(nuc, SPACING, n_decays=int(args.kernel_decays), device=args.device)
        kernels = {"one factor": compute_scaled_kernels(nuc, SPACING, n_decays=int(args.kernel_decays),
                                                        device=args.device, photon_bands=False),
                   "bands": dataclasses.replace(banded, scatter_medium=(), photon_scatter_fractions=()),
                   "bands + scatter medium": banded}
        print(f"\n{nuc}: photon error vs MC, %, " + " | ".join(kernels))
        print("| nuclide | geometry | one factor: bone / tissue / bone÷tissue | bands: same | + scatter medium: same |"
              "\n|---|---|---|---|---|")
        cubes(nuc, kernels, args.device, int(args.decays), log)
        if not args.no_anatomies:
            print("| nuclide | anatomy, organ | one factor: photon / total | bands: same | + scatter medium: same |"
                  "\n|---|---|---|---|---|")
            anatomies(nuc, kernels, args.device, int(2 * args.decays), args.shared, log)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
