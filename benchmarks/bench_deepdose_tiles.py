"""Deep-dose's network on the card's tiles of the demo torso: the previous CPU setting against the current one, in
the same run.

- previous: all tiles in one batch, default (contiguous) memory layout;
- current: one tile per batch, channels-last layout (:class:`DeepDoseLib.deepdose.inference.TileRunner`).

Prints the time of one pass over all tiles for each setting and precision, the ratio, and how far the two blended
dose rates lie apart (the same tiles: only the order of the sums differs). Then the whole default method (3
mirrored passes, physics channels included) and its baseline vsv_scaled.

    python benchmarks/bench_deepdose_tiles.py [--model M.pt] [--nuclide Ga68] [--threads 2] [--repeats 2]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from DeepDoseLib.deepdose.channels import input_channels
from DeepDoseLib.deepdose.inference import TileRunner, model_tile_plan, predict_tiles
from DeepDoseLib.deepdose.safety import safe_deepdose
from DeepDoseLib.deepdose_rule import SafetyRule
from DeepDoseLib.methods.scaled_vsv import scaled_vsv_dose_rate
from deepdose_demo_setup import add_arguments, best_of, demo_torso_and_model  # benchmarks/, the script's folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args()
    a, rho, spacing, model = demo_torso_and_model(args)
    plan = model_tile_plan(model, a.shape)
    settings = {"previous": (len(plan.corners), False), "current": (1, True)}
    print(f"\n{model.path.name}, demo torso {a.shape[::-1]} voxels, {torch.get_num_threads()} thread(s), "
          f"{len(plan.corners)} tiles of {plan.tile_shape}\n")
    inputs = input_channels(*plan.pad(a, rho), model.kernels)
    for name, (batch, channels_last) in settings.items():
        print(f"{name}: {batch} tile(s) per batch, {'channels-last' if channels_last else 'contiguous'}")
    print("\n| precision | previous [s] | current [s] | ratio | p99 \\|current − previous\\| above 10 % of max |"
          "\n|---|---|---|---|---|")
    for precision in ("float32", "bfloat16"):
        times, doses = {}, {}
        for name, (batch, channels_last) in settings.items():
            runner = TileRunner(model.module, "cpu", batch, [], precision, cpu_channels_last=channels_last)
            runner.predict(inputs[None, :, :plan.tile_shape[0], :plan.tile_shape[1], :plan.tile_shape[2]])
            doses[name], times[name] = best_of(lambda: predict_tiles(runner, inputs, plan).finalize(), args.repeats)
        ref = doses["previous"]
        hot = ref > 0.1 * ref.max()
        p99 = np.percentile(np.abs(doses["current"][hot] - ref[hot]) / ref[hot], 99)
        print(f"| {precision} | {times['previous']:.2f} | {times['current']:.2f} | "
              f"{times['previous'] / times['current']:.2f} | {100 * p99:.2f} % |", flush=True)
    method_s = best_of(lambda: safe_deepdose(a, rho, spacing, model, SafetyRule(), precision="auto"),
                       args.repeats)[1]
    baseline_s = best_of(lambda: scaled_vsv_dose_rate(a, rho, model.kernels, mode="source"), 1)[1]
    print(f"\ndefault method ({SafetyRule().flips} mirrored pass(es) more, precision auto, physics channels "
          f"included): {method_s:.1f} s; its baseline vsv_scaled with the model's kernels: {baseline_s:.1f} s")


if __name__ == "__main__":
    main()
