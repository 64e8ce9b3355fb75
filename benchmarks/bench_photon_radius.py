"""vsv_scaled with its soft-tissue photon kernel cut at 150 mm (the default) and at 300 mm, against the stored
Monte Carlo references of the generalization benchmark (``bench_generalization.py --reference-dir R``).

A 150 mm kernel leaves out the photons that deposit farther from their source (43 % of Ga-68's photon energy in
an infinite water medium); in a large body with uptake everywhere they are part of every organ's dose. Prints,
per case, the mass-weighted mean error of each organ and lesion for both radii, then the mean |error| and the
share of structures within 3 %.

    python benchmarks/bench_photon_radius.py --reference-dir R [--cases 8] [--nuclide Ga68] [--decays 2e7]
"""
from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np

from DeepDoseLib.methods.scaled_vsv import compute_scaled_kernels, scaled_vsv_dose_rate
from mc_reference import reference_path, stored_reference  # benchmarks/, the script's folder

_spec = importlib.util.spec_from_file_location("bench_generalization",
                                               Path(__file__).with_name("bench_generalization.py"))
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-dir", type=Path, required=True)
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--nuclide", default="Ga68")
    parser.add_argument("--decays", type=float, default=2e7, help="decays of the stored references")
    parser.add_argument("--seed", type=int, default=19, help="seed of the stored references")
    parser.add_argument("--radii", type=float, nargs="+", default=[150.0, 300.0])
    parser.add_argument("--kernel-decays", type=float, default=1e6)
    parser.add_argument("--shared", type=Path, default=bench.SHARED)
    args = parser.parse_args()
    start = time.perf_counter()
    kernels = {r: compute_scaled_kernels(args.nuclide, (4.0,) * 3, n_decays=int(args.kernel_decays), device="cpu",
                                         photon_radius_mm=r) for r in args.radii}
    print(f"kernels {', '.join(f'{r:g} mm {k.photon.shape}' for r, k in kernels.items())} "
          f"({time.perf_counter() - start:.0f} s)")
    print("case\tstructure\t" + "\t".join(f"{r:g} mm" for r in args.radii))
    errors = {r: [] for r in args.radii}
    for index in range(args.cases):
        name, a, rho, _, labels, names, spacing, _ = bench.make_case(index, 4.0, args.seed, args.shared)
        path = reference_path(args.reference_dir, name, args.nuclide, args.decays, args.seed)
        stored = stored_reference(path, a)
        if stored is None:
            print(f"{name}\tno stored reference of this activity ({path.name})")
            continue
        ref = stored[0]
        voxel_mL = float(np.prod(spacing)) * 1e-3
        per = {r: bench.structure_errors(scaled_vsv_dose_rate(a, rho, k, device="cpu", mode="source"), ref, rho,
                                         labels, names, voxel_mL) for r, k in kernels.items()}
        first = per[args.radii[0]]
        for key in sorted(first):
            if key.startswith(("organ:", "lesion:")):
                print(f"{name}\t{key}\t" + "\t".join(f"{per[r][key]:+.1f}" for r in args.radii))
                for r in args.radii:
                    errors[r].append(abs(per[r][key]))
        print(f"{name}\tvoxel median |err|\t" + "\t".join(f"{per[r]['voxel_median_abs_pct']:.2f}" for r in args.radii))
    for r in args.radii:
        e = np.asarray(errors[r])
        print(f"{r:g} mm: {e.size} structures, mean |error| {e.mean():.2f} %, "
              f"within 3 %: {100 * np.mean(e <= 3):.0f} %")


if __name__ == "__main__":
    main()
