"""Deep-dose against Monte Carlo, VSV (plain, density-corrected, density-scaled) and LED on held-out real anatomy.

Anatomies never used in training: the TotalSegmentator abdomen CT and the ICRP-110 adult female of
``../shared/data`` (skipped with a message when absent), at the model's voxel size, with synthetic
tracer uptake from the phantom generator. MC (``--decays``) is the reference (``--reference-dir``
keeps it between runs, keyed by anatomy, nuclide, decays and seed, with its original timing); every
other method is timed in the same run on the same machine (on CUDA after one untimed warm-up call each; the MC
reference's own run includes the CUDA start-up, so give ``--timing-decays`` there). Prints, per anatomy: wall-clock seconds of each method, the MC
time extrapolated to 2 % median uncertainty (tissue voxels above 10 % of the tissue maximum, as in
:func:`DeepDoseLib.deepdose.evaluation.compare`) and the speed-up of
Deep-dose over it, the voxel-wise median/95th-percentile |relative error| above 10 % of the maximum,
the organ mass-weighted mean errors and the largest DVH (D2/D50/D98) difference, as Markdown
tables (for the README and the model card).

    python benchmarks/bench_deepdose.py --nuclide Ga68 [--model M.pt] [--decays 1e7] [--anatomies totalsegmentator]
        [--reference-dir DIR] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from DeepDoseLib.deepdose.data import DEFAULT_TRACERS
from DeepDoseLib.deepdose.evaluation import compare, metric_voxels
from DeepDoseLib.deepdose.inference import deepdose_dose_rate
from DeepDoseLib.deepdose.safety import safe_deepdose
from DeepDoseLib.deepdose_rule import SafetyRule
from DeepDoseLib.deepdose.model_io import resolve_model
from DeepDoseLib.mc import run_monte_carlo
from DeepDoseLib.methods import led_dose_rate
from DeepDoseLib.methods.scaled_vsv import scaled_vsv_dose_rate
from DeepDoseLib.methods.vsv import compute_kernel, vsv_dose_rate
from DeepDoseLib.nuclides import get_nuclide
from mc_reference import mc_reference  # benchmarks/, the script's folder

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


#: Tumours painted into the real anatomies (seeded placement in the host organ): a liver metastasis
#: with a necrotic core, a solid lung nodule, a bone metastasis; the ones > 5 mL are scored.
BENCH_LESIONS = (("liver", 32.0, 0.4), ("lung", 25.0, 0.0), ("bone", 40.0, 0.0))


def load_anatomy(name: str, spacing_mm: float, shared: Path, seed: int):
    from DeepDoseLib.phantoms.lesions import LesionSpec, add_lesions
    from DeepDoseLib.phantoms.reference_anatomies import load_icrp110_af, load_totalsegmentator_example

    if name == "totalsegmentator":
        anatomy = load_totalsegmentator_example(shared, spacing_mm)
    else:
        anatomy = load_icrp110_af(shared, spacing_mm, seed=7)
    return add_lesions(anatomy, [LesionSpec(*spec) for spec in BENCH_LESIONS], np.random.default_rng([seed, 3]))


def reference_dose(args, name: str, nuclide: str, a, rho, materials, spacing):
    """MC dose rate, relative uncertainty and the seconds it took (reused from ``--reference-dir``)."""
    return mc_reference(args.reference_dir, name, nuclide, a, rho, materials, spacing, args.decays, args.seed,
                        args.device)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def timed_warm(fn, device: str):
    """(result, seconds) of ``fn``; on CUDA after one untimed call that takes the one-off start-up (context,
    cuFFT plans, kernel loading), so that the figure is what every further case costs."""
    if device.startswith("cuda"):
        fn()
        torch.cuda.synchronize()
    return timed(fn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nuclide", default="Ga68")
    parser.add_argument("--model", type=Path, default=None, help="default: the bundled model of the nuclide")
    parser.add_argument("--decays", type=float, default=1e7, help="MC decays of the reference")
    parser.add_argument("--reference-dir", type=Path, help="keep/reuse the MC references here (.npz)")
    parser.add_argument("--timing-decays", type=float, default=0,
                        help="time this many MC decays in this run and scale to --decays (for stored references)")
    parser.add_argument("--anatomies", nargs="+", default=["totalsegmentator", "icrp110_af"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    parser.add_argument("--write-card", action="store_true", help="store the results in the model's card")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.shared.is_dir():
        print(f"shared reference data not found at {args.shared}: nothing to benchmark")
        return
    from DeepDoseLib.phantoms.case import case_from_anatomy

    nuc = get_nuclide(args.nuclide)
    model = resolve_model(args.model, nuc.name, args.device)
    spacing = model.spacing_mm
    print(f"model {model.path.name} ({model.card['weights_sha256'][:12]}…), {spacing[0]:g} mm; torch "
          f"{torch.__version__}, {torch.get_num_threads()} CPU thread(s), device {args.device}")
    results = {}
    for name in args.anatomies:
        anatomy = load_anatomy(name, spacing[0], args.shared, args.seed)
        case = case_from_anatomy(anatomy, DEFAULT_TRACERS[nuc.name], args.seed)
        a = sitk.GetArrayFromImage(case.true_activity).astype(np.float32)
        rho = sitk.GetArrayFromImage(case.density).astype(np.float32)
        labels = sitk.GetArrayFromImage(case.labels)
        voxel_mL = float(np.prod(spacing)) * 1e-3
        ref, unc, t_mc = reference_dose(args, name, nuc.name, a, rho, case.material_labels, spacing)
        # the voxels of the voxel-wise metric: tissue above 10 % of the tissue maximum (a voxel of air with
        # activity blurred into it has a huge dose per gram and would set the maximum)
        hot = metric_voxels(ref, rho)
        u = float(np.median(unc[hot]))
        if args.timing_decays:  # MC speed measured now, beside the other methods (the reference may be old)
            _, t_timing = timed(lambda: run_monte_carlo(a, rho, case.material_labels, spacing, nuc,
                                                        int(args.timing_decays), seed=args.seed + 1,
                                                        device=args.device))
            t_mc = t_timing * args.decays / args.timing_decays
        t_mc_2pct = t_mc * (u / 0.02) ** 2
        kernel_decays = int(model.card["inputs"].get("kernel_decays", 1_000_000))
        kernel, _ = timed(lambda: compute_kernel(nuc, spacing, n_decays=kernel_decays, device=args.device))
        maps, seconds = {}, {}
        dev = args.device
        methods = {
            # the method as a user runs it (bound, mirrored passes, fallback, precision auto), and one raw pass
            "deepdose": lambda: safe_deepdose(a, rho, spacing, model, SafetyRule(), device=dev,
                                              precision="auto").dose_rate_mGy_per_h,
            "deepdose_raw": lambda: deepdose_dose_rate(a, rho, spacing, model, device=dev),
            "vsv": lambda: vsv_dose_rate(a, rho, kernel, device=dev),
            "vsv_dc": lambda: vsv_dose_rate(a, rho, kernel, density_correction=True, device=dev),
            "vsv_scaled": lambda: scaled_vsv_dose_rate(a, rho, model.kernels, device=dev, mode="source"),
            "led": lambda: led_dose_rate(a, rho, nuc, device=dev),
        }
        for m, fn in methods.items():
            maps[m], seconds[m] = timed_warm(fn, dev)
        metrics = {m: compare(d, ref, rho, labels, case.label_names, voxel_mL) for m, d in maps.items()}
        # RMS relative error with the MC variance removed (unbiased estimate), over the voxels whose MC
        # uncertainty is ≤ 20 % (a few noisy voxels would otherwise dominate both terms)
        tissue_hot = hot & (unc <= 0.2)
        for m, d in maps.items():
            rel2 = ((d[tissue_hot] - ref[tissue_hot]) / ref[tissue_hot]) ** 2
            metrics[m]["voxel_rms_pct_noise_corrected"] = float(100 * np.sqrt(max(
                0.0, float(np.mean(rel2)) - float(np.mean(unc[tissue_hot].astype(np.float64) ** 2)))))
        # the noise floor: a perfect method would still differ from this MC by its statistical noise
        floor = float(100 * np.median(np.abs(np.random.default_rng(0).standard_normal(int(hot.sum())))
                                      * unc[hot]))
        results[name] = {"shape_zyx": list(a.shape), "mc_decays": int(args.decays), "mc_seconds": t_mc,
                         "voxel_median_abs_pct_noise_floor": floor,
                         "mc_median_rel_unc_above_10pct": u, "mc_seconds_at_2pct": t_mc_2pct,
                         "seconds": seconds, "speedup_vs_mc_2pct": t_mc_2pct / seconds["deepdose"],
                         "metrics": metrics}
        print(f"\n## {name}: {a.shape[::-1]} voxels of {spacing[0]:g} mm, {nuc.name}, MC {int(args.decays):,} decays "
              f"in {t_mc:.0f} s (median uncertainty {100 * u:.1f} % in tissue above 10 % of its max; 2 % would take "
              f"{t_mc_2pct:.0f} s{'; MC speed timed now on ' + format(int(args.timing_decays), ',') + ' decays' if args.timing_decays else ''}); MC noise alone gives a voxel median |error| of {floor:.1f} %")
        print("\n| method | seconds | speed-up vs MC@2 % |")
        print("|---|---|---|")
        for m, s in seconds.items():
            print(f"| {m} | {s:.2f} | {t_mc_2pct / s:.0f}× |")
        keys = sorted({k for v in metrics.values() for k in v}, key=lambda k: (k.split(":")[0] != "voxel_median_abs_pct", k))
        print("\n| metric (error vs MC, %) | " + " | ".join(maps) + " |")
        print("|---|" + "---|" * len(maps))
        for k in keys:
            print(f"| {k} | " + " | ".join(f"{metrics[m].get(k, float('nan')):+.1f}" for m in maps) + " |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.write_card:  # the card only: the weights and their hash are untouched
        from DeepDoseLib.deepdose.model_io import card_path

        path = card_path(model.path)
        card = json.loads(path.read_text())
        card["benchmark_real_anatomy"] = {
            "command": "python benchmarks/bench_deepdose.py " + " ".join(sys.argv[1:]),
            "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread(s), "
                       f"torch {torch.__version__}, device {args.device}",
            "anatomies": results}
        path.write_text(json.dumps(card, indent=1))
        print(f"\nbenchmark written into {path}")


if __name__ == "__main__":
    main()
