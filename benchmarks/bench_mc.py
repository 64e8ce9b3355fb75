"""Monte Carlo speed on a torso-sized 4 mm case, against LED and VSV measured in the same run.

For Ga-68 and Lu-177 on the demo torso (36 × 24 × 32 cm, 4 mm voxels) it prints decays per second
(CPU, and CUDA when available), the median relative uncertainty in tissue voxels above half the
maximum tissue dose rate, and the extrapolated time to reach 2 % there (uncertainty ∝ 1/√N).

    python benchmarks/bench_mc.py [--decays 1e6] [--devices cpu cuda]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from DeepDoseLib.demo import make_demo_case
from DeepDoseLib.dose import prepare_inputs
from DeepDoseLib.mc import run_monte_carlo
from DeepDoseLib.methods import led_dose_rate
from DeepDoseLib.methods.vsv import compute_kernel, vsv_dose_rate
from DeepDoseLib.nuclides import get_nuclide


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decays", type=float, default=1e6)
    parser.add_argument("--devices", nargs="+", default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    parser.add_argument("--nuclides", nargs="+", default=["Ga68", "Lu177"])
    args = parser.parse_args()
    case = make_demo_case()
    inputs = prepare_inputs(case.ct, case.pet)
    a, rho, mat = inputs.activity_Bq_per_mL, inputs.density_g_per_cm3, inputs.material_labels
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads (set OMP_NUM_THREADS); case {a.shape[::-1]} voxels of "
          f"{inputs.spacing_mm[0]:g} mm")
    print("nuclide\tmethod\tdevice\tdecays\tseconds\tdecays_per_s\tmedian_rel_unc_above_half_max\t"
          "time_to_2pct_s\tspeed_vs_MC")
    for name in args.nuclides:
        nuc = get_nuclide(name)
        t0 = time.perf_counter()
        led_dose_rate(a, rho, nuc)
        t_led = time.perf_counter() - t0
        kernel = compute_kernel(nuc, inputs.spacing_mm, n_decays=200_000)  # cached after the first run
        t0 = time.perf_counter()
        vsv_dose_rate(a, rho, kernel)
        t_vsv = time.perf_counter() - t0
        for dev in args.devices:
            run_monte_carlo(a, rho, mat, inputs.spacing_mm, nuc, 10_000, device=dev)  # warm-up
            res = run_monte_carlo(a, rho, mat, inputs.spacing_mm, nuc, int(args.decays), seed=1, device=dev)
            tissue = rho >= 0.05  # the maximum in air voxels (PET blur into air, dose per gram of air) is no target
            hot = tissue & (res.dose_rate_mGy_per_h > 0.5 * res.dose_rate_mGy_per_h[tissue].max())
            u = float(np.median(res.relative_uncertainty[hot]))
            t2 = res.seconds * (u / 0.02) ** 2
            print(f"{name}\tMC\t{dev}\t{res.n_decays:.2g}\t{res.seconds:.2f}\t{res.decays_per_second:,.0f}\t"
                  f"{100 * u:.2f}%\t{t2:.1f}\t1")
            print(f"{name}\tLED\tcpu\t-\t{t_led:.4f}\t-\t-\t-\t{t2 / t_led:,.0f}x faster than MC to 2 %")
            print(f"{name}\tVSV\tcpu\t-\t{t_vsv:.4f}\t-\t-\t-\t{t2 / t_vsv:,.0f}x faster than MC to 2 %")


if __name__ == "__main__":
    main()
