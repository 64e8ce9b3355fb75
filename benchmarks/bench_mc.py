"""Monte Carlo speed: the compiled kernel (1 and 2 CPU threads, CUDA when present) against the torch engine.

For Lu-177, Ga-68 and Y-90 on the demo torso (4 mm voxels) and on a water cube (64³ voxels of 4 mm,
activity uniform in the central 16³) it prints decays per second, the ratio to the torch engine
measured in the same run, the median relative uncertainty in tissue voxels above half the maximum
tissue dose rate, and the time to reach 2 % there (uncertainty ∝ 1/√N, so t·(u/2 %)²). The load
average of the machine is printed before and after: on a shared machine, compare ratios, not rates;
``decays_per_cpu_s`` (decays per CPU-second of this process, all threads) is what one unloaded core gives.

    python benchmarks/bench_mc.py [--decays 2e6] [--torch-decays 3e5] [--threads 1 2] [--cases torso water]
        [--plain-source] [--variance-reduction]

"kernel" rows use the kernel's defaults (source points stratified per batch); ``--plain-source`` adds rows with
independent source draws, the sampling of the torch engine.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from DeepDoseLib.demo import make_demo_case
from DeepDoseLib.dose import prepare_inputs
from DeepDoseLib.mc import run_monte_carlo
from DeepDoseLib.mc.kernel_build import cuda_available
from DeepDoseLib.mc.kernel_engine import hot_tissue_median_uncertainty
from DeepDoseLib.tissue import materials


def cases(names):
    out = {}
    if "torso" in names:
        case = make_demo_case()
        inputs = prepare_inputs(case.ct, case.pet)
        out["torso"] = (inputs.activity_Bq_per_mL, inputs.density_g_per_cm3, inputs.material_labels,
                        inputs.spacing_mm)
    if "water" in names:
        n = 64
        a = np.zeros((n, n, n), np.float32)
        a[24:40, 24:40, 24:40] = 1e4
        out["water"] = (a, np.ones(a.shape, np.float32), np.full(a.shape, materials()["water"].label, np.uint8),
                        (4.0, 4.0, 4.0))
    return out


def timed(*args, **kwargs):
    """run_monte_carlo plus the CPU time [s] this process spent in it (all threads)."""
    c0 = time.process_time()
    res = run_monte_carlo(*args, **kwargs)
    return res, time.process_time() - c0


def row(case, nuclide, engine, device, threads, res_cpu, rho, torch_rate):
    res, cpu_s = res_cpu
    u = hot_tissue_median_uncertainty(res.dose_rate_mGy_per_h, res.relative_uncertainty, rho)
    t2 = res.seconds * (u / 0.02) ** 2
    ratio = f"{res.decays_per_second / torch_rate:.1f}" if torch_rate else "1"
    print(f"{case}\t{nuclide}\t{engine}\t{device}\t{threads}\t{res.n_decays:.3g}\t{res.seconds:.2f}\t"
          f"{res.decays_per_second:,.0f}\t{res.n_decays / max(cpu_s, 1e-9):,.0f}\t{ratio}\t{100 * u:.2f}%\t{t2:.1f}",
          flush=True)
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decays", type=float, default=2e6, help="kernel decays per row")
    parser.add_argument("--torch-decays", type=float, default=3e5, help="torch-engine decays per row (0: skip)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--nuclides", nargs="+", default=["Lu177", "Ga68", "Y90"])
    parser.add_argument("--cases", nargs="+", default=["torso", "water"])
    parser.add_argument("--variance-reduction", action="store_true", help="also rows with photon VR on")
    parser.add_argument("--plain-source", action="store_true",
                        help="also rows with independent source draws (the kernel stratifies them by default)")
    args = parser.parse_args()
    import numba
    import torch

    print(f"load average before: {os.getloadavg()}; {os.cpu_count()} CPUs; numba {numba.__version__} "
          f"({numba.config.NUMBA_NUM_THREADS} threads), torch {torch.__version__} ({torch.get_num_threads()} threads); "
          f"numba CUDA: {cuda_available()}")
    print("case\tnuclide\tengine\tdevice\tthreads\tdecays\tseconds\tdecays_per_s\tdecays_per_cpu_s\tx_torch\t"
          "median_rel_unc_hot_tissue\ttime_to_2pct_s")
    for case, (a, rho, mat, spacing) in cases(args.cases).items():
        for nuclide in args.nuclides:
            run_monte_carlo(a, rho, mat, spacing, nuclide, 2000, device="cpu")  # compile / load the cache
            torch_rate = 0.0
            if args.torch_decays > 0:
                res = row(case, nuclide, "torch", "cpu", torch.get_num_threads(),
                          timed(a, rho, mat, spacing, nuclide, int(args.torch_decays), seed=1, device="cpu",
                                engine="torch"), rho, 0.0)
                torch_rate = res.decays_per_second
            for threads in args.threads:
                row(case, nuclide, "kernel", "cpu", threads,
                    timed(a, rho, mat, spacing, nuclide, int(args.decays), seed=1, device="cpu", threads=threads),
                    rho, torch_rate)
                if args.plain_source:
                    row(case, nuclide, "kernel-plain", "cpu", threads,
                        timed(a, rho, mat, spacing, nuclide, int(args.decays), seed=1, device="cpu", threads=threads,
                              stratified_source=False), rho, torch_rate)
                if args.variance_reduction:
                    row(case, nuclide, "kernel+VR", "cpu", threads,
                        timed(a, rho, mat, spacing, nuclide, int(args.decays), seed=1, device="cpu", threads=threads,
                              variance_reduction=True), rho, torch_rate)
            if cuda_available() and torch.cuda.is_available():
                run_monte_carlo(a, rho, mat, spacing, nuclide, 10_000, device="cuda")  # compile
                res = row(case, nuclide, "kernel", "cuda", "-",
                          timed(a, rho, mat, spacing, nuclide, int(50 * args.decays), seed=1, device="cuda"), rho,
                          torch_rate)
                t = row(case, nuclide, "torch", "cuda", "-", timed(a, rho, mat, spacing, nuclide,
                                                                   int(10 * args.torch_decays), seed=1, device="cuda",
                                                                   engine="torch"), rho, 0.0)
                print(f"{case}\t{nuclide}\tGPU kernel / GPU torch = {res.decays_per_second / t.decays_per_second:.1f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - start:.0f} s")
