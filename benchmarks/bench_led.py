"""Benchmark of the local-energy-deposition method on the demo case (and a whole-body-sized grid).

Prints wall-clock times and voxels per second for DeepDose's torch LED on CPU (and CUDA when
available) against a plain-numpy LED measured in the same run, plus the time of the input
preparation (CT resampling and tissue model), so that ratios are comparable across machines.

    python benchmarks/bench_led.py [--repeat 5] [--shape 200 200 400]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import DeepDoseLib as dd
from DeepDoseLib.demo import make_demo_case
from DeepDoseLib.dose import prepare_inputs
from DeepDoseLib.methods import led_dose_rate, local_energy_per_decay_MeV
from DeepDoseLib.units import MGY_PER_H_PER_BQ_PER_ML_MEV_PER_G_PER_CM3


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--shape", type=int, nargs=3, default=[200, 200, 400], help="z y x of the large grid")
    args = parser.parse_args()
    nuclide = dd.get_nuclide("Ga68")
    energy = local_energy_per_decay_MeV(nuclide)

    case = make_demo_case()
    t_prep = best_of(args.repeat, lambda: prepare_inputs(case.ct, case.pet))
    inputs = prepare_inputs(case.ct, case.pet)
    rng = np.random.default_rng(0)
    large_a = rng.uniform(0, 1e5, args.shape).astype(np.float32)
    large_rho = rng.uniform(0.2, 2.0, args.shape).astype(np.float32)

    def numpy_led(a, rho):
        return (a.astype(np.float64) * energy * MGY_PER_H_PER_BQ_PER_ML_MEV_PER_G_PER_CM3 / rho).astype(np.float32)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"CUDA: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}")
    print(f"demo case {inputs.activity_Bq_per_mL.shape} voxels: input preparation {t_prep * 1e3:.1f} ms")
    print("grid\tbackend\ttime_ms\tMvoxel_per_s\tratio_vs_numpy")
    for label, a, rho in (("demo", inputs.activity_Bq_per_mL, inputs.density_g_per_cm3),
                          ("x".join(map(str, args.shape)), large_a, large_rho)):
        t_np = best_of(args.repeat, lambda: numpy_led(a, rho))
        rows = [("numpy", t_np)]
        rows.append(("torch-cpu", best_of(args.repeat, lambda: led_dose_rate(a, rho, nuclide, device="cpu"))))
        if torch.cuda.is_available():
            rows.append(("torch-cuda", best_of(args.repeat, lambda: led_dose_rate(a, rho, nuclide, device="cuda"))))
        for backend, t in rows:
            print(f"{label}\t{backend}\t{t * 1e3:.1f}\t{a.size / t / 1e6:.1f}\t{t_np / t:.2f}")


if __name__ == "__main__":
    main()
