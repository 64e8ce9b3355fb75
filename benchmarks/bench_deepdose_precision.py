"""Deep-dose on the demo torso with the network in float32 and in bfloat16, in the same run: the time of one
network pass and of the default method (its mirrored passes), and how much bfloat16 moves the output.

Prints each time, the ratio float32 / bfloat16, and the relative change of the default method's dose rate and
uncertainty in the voxels above 10 % of the maximum (median, 99th percentile, maximum, share above 1 %), and the
change of the fallback mask. ``precision=auto`` picks bfloat16 only on a CPU with native bfloat16 instructions
(:mod:`DeepDoseLib.deepdose.precision`); the script says whether this CPU has them.

    python benchmarks/bench_deepdose_precision.py [--model M.pt] [--nuclide Ga68] [--threads 2] [--repeats 2]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from DeepDoseLib.deepdose.inference import deepdose_dose_rate
from DeepDoseLib.deepdose.precision import cpu_has_native_bf16
from DeepDoseLib.deepdose.safety import safe_deepdose
from DeepDoseLib.deepdose_rule import SafetyRule
from deepdose_demo_setup import add_arguments, best_of, demo_torso_and_model  # benchmarks/, the script's folder


def relative_change(new: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> str:
    r = np.abs(new[mask] / np.where(ref[mask] > 0, ref[mask], 1.0) - 1.0)
    return (f"median {100 * np.median(r):.3f} %, p99 {100 * np.percentile(r, 99):.3f} %, max {100 * r.max():.2f} %, "
            f"{100 * np.mean(r > 0.01):.3f} % of the voxels above 1 %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args()
    a, rho, spacing, model = demo_torso_and_model(args)
    warm = np.full((24, 24, 24), 1e3, np.float32)
    for precision in ("float32", "bfloat16"):  # TorchScript's first call, per precision
        deepdose_dose_rate(warm, np.ones_like(warm), model.spacing_mm, model, precision=precision)
    print(f"{model.path.name}, demo torso {a.shape[::-1]} voxels, {torch.get_num_threads()} thread(s); "
          f"native bfloat16 on this CPU: {'yes' if cpu_has_native_bf16() else 'no'}\n")
    print("| run | float32 [s] | bfloat16 [s] | ratio |\n|---|---|---|---|")
    results = {}
    for label, fn in {
            "one pass": lambda p: deepdose_dose_rate(a, rho, spacing, model, precision=p),
            "default method": lambda p: safe_deepdose(a, rho, spacing, model, SafetyRule(), precision=p)}.items():
        times = {}
        for precision in ("float32", "bfloat16"):
            results[label, precision], times[precision] = best_of(lambda: fn(precision), args.repeats)
        print(f"| {label} | {times['float32']:.1f} | {times['bfloat16']:.1f} | "
              f"{times['float32'] / times['bfloat16']:.2f} |", flush=True)
    ref, new = results["default method", "float32"], results["default method", "bfloat16"]
    dose = ref.dose_rate_mGy_per_h
    mask = (dose > 0.1 * dose.max()) & (rho >= 0.05)
    print(f"\nbfloat16 vs float32, default method, {int(mask.sum())} voxels above 10 % of the maximum:")
    print(f"- dose rate: {relative_change(new.dose_rate_mGy_per_h, dose, mask)}")
    if ref.relative_uncertainty is not None:
        du = np.abs(new.relative_uncertainty[mask] - ref.relative_uncertainty[mask])
        print(f"- relative uncertainty: absolute change median {100 * np.median(du):.3f}, p99 "
              f"{100 * np.percentile(du, 99):.3f} percentage points")
    changed = int(np.sum(new.fallback != ref.fallback))
    print(f"- fallback mask: {int(ref.fallback.sum())} voxels in float32, {int(new.fallback.sum())} in bfloat16, "
          f"{changed} differ")


if __name__ == "__main__":
    main()
