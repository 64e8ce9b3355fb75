"""Deep-dose's network on the tiles of the demo torso: the previous setting against the current one, in the same run.

- previous: every tile the card's edge long (96³), all tiles in one batch, default (contiguous) memory layout;
- current: per axis the shortest tiles that need no more of them (``TilePlan.for_volume(balanced=True)``), one
  tile per batch, channels-last layout on the CPU (:class:`DeepDoseLib.deepdose.inference.TileRunner`).

Prints the voxels evaluated, the time of one pass over all tiles for each setting and precision, the ratio, and
how far the two blended dose rates lie apart (the tiles differ, so does each tile's normalisation). Then the
whole default method (3 mirrored passes, physics channels included) and its baseline vsv_scaled.

    python benchmarks/bench_deepdose_tiles.py [--model M.pt] [--nuclide Ga68] [--threads 2] [--repeats 2]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from DeepDoseLib.deepdose.channels import input_channels
from DeepDoseLib.deepdose.inference import TileRunner, predict_tiles
from DeepDoseLib.deepdose.safety import safe_deepdose
from DeepDoseLib.deepdose.tiling import TilePlan
from DeepDoseLib.deepdose_rule import SafetyRule
from DeepDoseLib.methods.scaled_vsv import scaled_vsv_dose_rate
from deepdose_demo_setup import add_arguments, best_of, demo_torso_and_model  # benchmarks/, the script's folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args()
    a, rho, spacing, model = demo_torso_and_model(args)
    grid = model.card["grid"]
    edge, overlap = int(grid.get("inference_tile_voxels", model.tile_size)), int(grid.get("overlap_voxels", 8))
    plans = {balanced: TilePlan.for_volume(a.shape, edge, model.margin, overlap, model.size_multiple, balanced)
             for balanced in (False, True)}
    settings = {"previous": (plans[False], len(plans[False].corners), False),
                "current": (plans[True], 1, True)}
    print(f"\n{model.path.name}, demo torso {a.shape[::-1]} voxels, {torch.get_num_threads()} thread(s)\n")
    inputs = {}
    for name, (plan, batch, channels_last) in settings.items():
        padded = plan.pad(a, rho)
        inputs[name] = input_channels(*padded, model.kernels)
        print(f"{name}: {len(plan.corners)} tiles of {plan.tile_shape}, {batch} per batch, "
              f"{'channels-last' if channels_last else 'contiguous'}; {plan.evaluated_voxels / a.size:.2f}× the "
              "volume evaluated")
    print("\n| precision | previous [s] | current [s] | ratio | p99 \\|current − previous\\| above 10 % of max |"
          "\n|---|---|---|---|---|")
    for precision in ("float32", "bfloat16"):
        times, doses = {}, {}
        for name, (plan, batch, channels_last) in settings.items():
            runner = TileRunner(model.module, "cpu", batch, [], precision, cpu_channels_last=channels_last)
            runner.predict(inputs[name][None, :, :plan.tile_shape[0], :plan.tile_shape[1], :plan.tile_shape[2]])
            doses[name], times[name] = best_of(lambda: predict_tiles(runner, inputs[name], plan).finalize(),
                                               args.repeats)
        ref = doses["previous"]
        hot = ref > 0.1 * ref.max()
        p99 = np.percentile(np.abs(doses["current"][hot] - ref[hot]) / ref[hot], 99)
        print(f"| {precision} | {times['previous']:.2f} | {times['current']:.2f} | "
              f"{times['previous'] / times['current']:.2f} | {100 * p99:.2f} % |", flush=True)
    method_s = best_of(lambda: safe_deepdose(a, rho, spacing, model, SafetyRule(flips=3), precision="auto"),
                       args.repeats)[1]
    baseline_s = best_of(lambda: scaled_vsv_dose_rate(a, rho, model.kernels, mode="source"), 1)[1]
    print(f"\ndefault method (3 mirrored passes, precision auto, physics channels included): {method_s:.1f} s; "
          f"its baseline vsv_scaled with the model's kernels: {baseline_s:.1f} s")


if __name__ == "__main__":
    main()
