"""Deep-dose on the demo torso with fixed 96³ tiles and with the fewest-voxels tile plan (the default), in the
same run: one network pass and the default method (3 mirrored passes), beside its baseline vsv_scaled.

Prints each time and the ratio fixed / default. The plan changes only how the volume is cut
(docs/models.md, "Tile size").

    python benchmarks/bench_deepdose_tiles.py [--model M.pt] [--threads 2] [--repeats 2]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from DeepDoseLib.deepdose.inference import deepdose_dose_rate, model_tile_plan
from DeepDoseLib.deepdose.model_io import resolve_model
from DeepDoseLib.deepdose.safety import safe_deepdose
from DeepDoseLib.deepdose_rule import SafetyRule
from DeepDoseLib.demo import make_demo_case
from DeepDoseLib.dose import prepare_inputs
from DeepDoseLib.methods.scaled_vsv import scaled_vsv_dose_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="default: the bundled Ga-68 model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    case = make_demo_case()
    inputs = prepare_inputs(case.ct, case.pet)
    a, rho, spacing = inputs.activity_Bq_per_mL, inputs.density_g_per_cm3, inputs.spacing_mm
    model = resolve_model(args.model, "Ga68", "cpu")
    for tile in (96, None):
        plan = model_tile_plan(model, a.shape, "cpu", tile)
        print(f"tiles {'96' if tile else 'fewest voxels'}: {len(plan.corners)} of {plan.tile_shape}, "
              f"{plan.evaluated_voxels / a.size:.2f}× the volume evaluated")
    warm = np.full((24, 24, 24), 1e3, np.float32)
    deepdose_dose_rate(warm, np.ones_like(warm), model.spacing_mm, model)  # TorchScript's first call
    start = time.perf_counter()
    scaled_vsv_dose_rate(a, rho, model.kernels, mode="source")
    baseline_s = time.perf_counter() - start
    runs = {"one pass": lambda t: deepdose_dose_rate(a, rho, spacing, model, tile_size=t),
            "default (3 flips)": lambda t: safe_deepdose(a, rho, spacing, model, SafetyRule(flips=3), tile_size=t)}
    print(f"\n{model.path.name}, demo torso {a.shape[::-1]} voxels, {torch.get_num_threads()} thread(s)\n")
    print("| run | 96³ tiles [s] | fewest voxels [s] | ratio |\n|---|---|---|---|")
    for label, fn in runs.items():
        times = {}
        for tile in (96, None):
            best = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                fn(tile)
                best.append(time.perf_counter() - start)
            times[tile] = min(best)
        print(f"| {label} | {times[96]:.1f} | {times[None]:.1f} | {times[96] / times[None]:.2f} |", flush=True)
    print(f"\nits baseline, vsv_scaled with the model's kernels (no tiles): {baseline_s:.1f} s")


if __name__ == "__main__":
    main()
