"""Generalization benchmark of Deep-dose (issue 19, item 4): cases no training case resembles, against stored MC.

Cases are held out twice:

- **by anatomy**: procedural torsos of the ``heldout`` family (habitus and deformations outside the training
  ranges) and, when ``../shared/data`` is present, the real anatomies (TotalSegmentator abdomen CT, ICRP-110 AF);
- **by uptake generator**: the activity does not come from the tracer tables that trained the models. Every
  labelled structure gets a concentration log-uniform over two decades (0.1–10 × a body level), lungs and
  bone get activity in half of the cases, lesions (sizes from 0.5 to 150 mL, solid or necrotic) get 1–100× their
  host, organs get a smooth ±30 % heterogeneity, then a PET blur of 4–8 mm FWHM.

The MC reference of each case is stored (``--reference-dir``, keyed by case, nuclide, decays and seed) so that
the benchmark reruns in minutes. Per case and overall it reports, for ``deepdose`` (the bounded, self-checking
method of :mod:`DeepDoseLib.deepdose.safety`), ``deepdose_raw`` (the unbounded network), ``vsv``, ``vsv_scaled``
and ``led``: the error of each organ group and each lesion ≥ 2 mL, lung, bone, the voxel median |error| above
10 % of the maximum, and the seconds of each method; then the worst case. For Deep-dose it also reports the
coverage of its uncertainty map (share of metric voxels where |D − MC| ≤ 2·sqrt(σ_D² + σ_MC²)) and how much fell
back to the baseline.

The acceptance run of issue 19 is ≥ 20 cases at ≥ 2e7 decays. Anything smaller is printed as a SMALL RUN:
its numbers show the method works end to end, not that the acceptance holds.

    python benchmarks/bench_generalization.py --nuclide Ga68 --cases 20 --decays 2e7 --reference-dir refs/ \
        [--spacing 4] [--device cuda] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import SimpleITK as sitk
import torch
from scipy import ndimage

from DeepDoseLib.deepdose.evaluation import compare, metric_voxels
from DeepDoseLib.deepdose.inference import deepdose_dose_rate
from DeepDoseLib.deepdose.model_io import resolve_model
from DeepDoseLib.deepdose.precision import resolve_precision
from DeepDoseLib.deepdose.safety import safe_deepdose
from DeepDoseLib.deepdose.uncertainty_floor import coverage_pct
from DeepDoseLib.deepdose_rule import PHOTON_HETEROGENEITY, PRECISIONS, SafetyRule
from DeepDoseLib.dose_methods.deepdose import DeepDoseOptions
from DeepDoseLib.methods import led_dose_rate
from DeepDoseLib.dose_methods.vsv_scaled import ScaledVSVOptions
from DeepDoseLib.methods.scaled_vsv import compute_scaled_kernels, scaled_vsv_dose_rate
from DeepDoseLib.methods.vsv import compute_kernel, vsv_dose_rate
from DeepDoseLib.nuclides import get_nuclide
from mc_reference import mc_reference  # benchmarks/, the script's folder

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
ACCEPTANCE_CASES = 20
ACCEPTANCE_DECAYS = 2e7
#: Lesion sites and diameter ranges [mm] of the held-out uptake generator (0.5–150 mL: 10–66 mm).
LESION_DIAMETERS_mm = (10.0, 66.0)
LESION_SITES = ("liver", "lymph_node", "bone", "lung")


def table_free_activity(labels: np.ndarray, label_names: Dict[int, str], density: np.ndarray,
                        spacing_mm: Tuple[float, float, float], rng: np.random.Generator) -> Tuple[np.ndarray, dict]:
    """Activity [Bq/mL] independent of the tracer tables (see the module docstring) and its settings."""
    body_level = float(10 ** rng.uniform(3.0, 4.0))  # Bq/mL
    lower = {int(k): str(v).lower() for k, v in label_names.items()}
    activity = np.zeros(labels.shape, np.float32)
    lungs_active = bool(rng.random() < 0.5)
    bone_active = bool(rng.random() < 0.5)
    settings = {"body_level_Bq_per_mL": body_level, "lungs_active": lungs_active, "bone_active": bone_active}
    hosts = {}
    smooth = ndimage.gaussian_filter(rng.standard_normal(labels.shape).astype(np.float32), 3.0)
    smooth /= max(float(np.abs(smooth).max()), 1e-9)
    for k, name in lower.items():
        mask = labels == k
        if k == 0 or not mask.any() or "lesion" in name:
            continue
        if "lung" in name or "airway" in name or "gas" in name:
            c = body_level * float(10 ** rng.uniform(-1, 0)) if lungs_active else 0.0
        elif any(b in name for b in ("spine", "pelvis", "rib", "bone", "skull", "femur", "humer", "shoulder")):
            c = body_level * float(10 ** rng.uniform(-1, 1)) if bone_active else 0.0
        else:
            c = body_level * float(10 ** rng.uniform(-1, 1))
        hosts[k] = c
        activity[mask] = c * (1.0 + 0.3 * smooth[mask])
    for k, name in lower.items():
        if "lesion" in name:
            mask = labels == k
            if not mask.any():
                continue
            host = ndimage.binary_dilation(mask, iterations=2) & ~mask
            host_level = float(np.median(activity[host])) if host.any() else body_level
            contrast = float(10 ** rng.uniform(0, 2))
            activity[mask] = max(host_level, 0.1 * body_level) * contrast * (0.2 if "core" in name else 1.0)
            settings[f"contrast:{name}"] = contrast
    activity[density < 0.05] = 0.0
    fwhm = float(rng.uniform(4.0, 8.0))
    settings["pet_fwhm_mm"] = fwhm
    sigma = [fwhm / 2.3548 / s for s in spacing_mm[::-1]]
    return np.clip(ndimage.gaussian_filter(activity, sigma), 0, None).astype(np.float32), settings


def make_case(index: int, spacing_mm: float, seed: int, shared: Path):
    """Case ``index``: (name, activity, density, material labels, labels, label names, settings)."""
    from DeepDoseLib.phantoms.case import case_from_anatomy
    from DeepDoseLib.phantoms.lesions import LesionSpec
    from DeepDoseLib.phantoms.torso import generate_torso, sample_torso_parameters

    rng = np.random.default_rng([seed, index, 19])
    real = [n for n in ("totalsegmentator", "icrp110_af") if shared.is_dir()]
    specs = []
    # the real anatomies have no lymph-node stations to place a node in (add_lesions refuses them there)
    sites = LESION_SITES if index >= len(real) else tuple(s for s in LESION_SITES if s != "lymph_node")
    for _ in range(int(rng.integers(2, 5))):
        d = float(np.exp(rng.uniform(*np.log(LESION_DIAMETERS_mm))))
        site = str(rng.choice(sites))
        lo, hi = {"liver": (10, 66), "lymph_node": (10, 30), "bone": (10, 40), "lung": (10, 30)}[site]
        specs.append(LesionSpec(site, float(np.clip(d, lo, hi)), float(rng.uniform(0.35, 0.6)) if d >= 25 and
                                rng.random() < 0.5 else 0.0))
    if index < len(real):
        from DeepDoseLib.phantoms.lesions import add_lesions
        from DeepDoseLib.phantoms.reference_anatomies import load_icrp110_af, load_totalsegmentator_example

        name = real[index]
        anatomy = (load_totalsegmentator_example(shared, spacing_mm) if name == "totalsegmentator"
                   else load_icrp110_af(shared, spacing_mm, seed=7))
        anatomy = add_lesions(anatomy, specs, rng)
    else:
        name = f"heldout_torso_{index:02d}"
        anatomy = generate_torso(sample_torso_parameters(rng, "heldout"), spacing_mm, specs)
    case = case_from_anatomy(anatomy, "Ga68-PSMA-11", seed + index)  # CT and labels; activity replaced below
    rho = sitk.GetArrayFromImage(case.density).astype(np.float32)
    labels = sitk.GetArrayFromImage(case.labels)
    spacing = tuple(float(s) for s in case.density.GetSpacing())
    a, settings = table_free_activity(labels, case.label_names, rho, spacing, rng)
    return name, a, rho, case.material_labels, labels, case.label_names, spacing, settings


def reference(args, name: str, nuclide: str, a, rho, materials, spacing):
    """The case's MC reference: stored in ``--reference-dir`` or computed now (:mod:`mc_reference`)."""
    return mc_reference(args.reference_dir, name, nuclide, a, rho, materials, spacing, args.decays, args.seed,
                        args.device)


def structure_errors(dose, ref, rho, labels, names, voxel_mL) -> Dict[str, float]:
    """compare()'s metrics plus every lesion ≥ 2 mL, lung and bone (mass-weighted mean error, %)."""
    out = compare(dose, ref, rho, labels, names, voxel_mL)
    lower = {int(k): str(v).lower() for k, v in names.items()}
    groups = {"lung": [k for k, n in lower.items() if "lung" in n and "lesion" not in n],
              "bone": [k for k, n in lower.items() if any(b in n for b in ("spine", "pelvis", "rib", "bone"))
                       and "lesion" not in n]}
    if "organ:lungs" in out:
        groups.pop("lung")
    if "organ:bone" in out:
        groups.pop("bone")
    for k, n in lower.items():
        if "lesion" in n and "core" not in n and f"organ:tumour:{n}" not in out:
            ids = [j for j, m in lower.items() if m == n or (m.startswith(n + "_") and "core" in m)]
            if np.isin(labels, ids).sum() * voxel_mL >= 2.0:
                groups[f"lesion:{n}"] = ids
    for g, ids in groups.items():
        mask = np.isin(labels, ids)
        if not mask.any():
            continue
        w = rho[mask].astype(np.float64)
        r = float((ref[mask] * w).sum() / w.sum())
        if r > 0:
            out[g] = 100 * (float((dose[mask] * w).sum() / w.sum()) / r - 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nuclide", default="Ga68")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--cases", type=int, default=ACCEPTANCE_CASES)
    parser.add_argument("--decays", type=float, default=ACCEPTANCE_DECAYS)
    parser.add_argument("--spacing", type=float, default=4.0, help="isotropic voxel size of the cases [mm]")
    parser.add_argument("--reference-dir", type=Path)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--flips", type=int, default=SafetyRule().flips)
    parser.add_argument("--fallback-photon", default=SafetyRule().fallback_photon_heterogeneity,
                        choices=PHOTON_HETEROGENEITY, help="photon heterogeneity correction of Deep-dose's fallback")
    parser.add_argument("--precision", default=DeepDoseOptions().precision, choices=PRECISIONS,
                        help="the network's arithmetic (default: the method's, auto)")
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--no-real", action="store_true", help="procedural held-out torsos only")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--from-json", type=Path, help="summarise a stored run (its --json) instead of running")
    parser.add_argument("--write-card", action="store_true",
                        help="store the summary in the model's card (the weights and their hash are untouched)")
    args = parser.parse_args()
    nuc = get_nuclide(args.nuclide)
    model = resolve_model(args.model, nuc.name, args.device)
    if args.from_json:
        stored = json.loads(args.from_json.read_text())
        report(args, model, stored["cases"], stored.get("decays", args.decays), stored.get("run", {}))
        return
    small = args.cases < ACCEPTANCE_CASES or args.decays < ACCEPTANCE_DECAYS
    kernel = compute_kernel(nuc, model.spacing_mm, n_decays=int(model.card["inputs"].get("kernel_decays", 1_000_000)),
                            device=args.device)
    # what `--method vsv_scaled` runs with its defaults: its kernels may be newer than the model's baseline
    defaults = ScaledVSVOptions()
    method_kernels = compute_scaled_kernels(nuc, model.spacing_mm, n_decays=defaults.kernel_decays,
                                            device=args.device, photon_radius_mm=defaults.photon_radius_mm)
    print(f"model {model.path.name} ({model.card['weights_sha256'][:12]}…); torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s), device {args.device}, network in "
          f"{resolve_precision(args.precision, args.device)}")
    if small:
        print(f"SMALL RUN: {args.cases} case(s) at {args.decays:.0e} decays (acceptance: ≥ {ACCEPTANCE_CASES} cases "
              f"at ≥ {ACCEPTANCE_DECAYS:.0e}); the numbers below do not decide issue 19's acceptance.")
    # one untimed pass on a small volume: TorchScript's first call and thread start-up stay out of the timings
    warm = np.full((24, 24, 24), 1e3, np.float32)
    deepdose_dose_rate(warm, np.ones_like(warm), model.spacing_mm, model, device=args.device, precision=args.precision)
    shared = Path("/nonexistent") if args.no_real else args.shared
    rule = SafetyRule(flips=args.flips, fallback_photon_heterogeneity=args.fallback_photon)
    results = {}
    for index in range(args.cases):
        name, a, rho, materials, labels, names, spacing, settings = make_case(index, args.spacing, args.seed, shared)
        voxel_mL = float(np.prod(spacing)) * 1e-3
        ref, unc, t_mc = reference(args, name, nuc.name, a, rho, materials, spacing)
        maps, seconds, extra = {}, {}, {}

        def run(key, fn):
            start = time.perf_counter()
            maps[key] = fn()
            seconds[key] = time.perf_counter() - start

        safe = {}
        run("deepdose", lambda: safe.setdefault("r", safe_deepdose(a, rho, spacing, model, rule, device=args.device,
                                                                    precision=args.precision)).dose_rate_mGy_per_h)
        run("deepdose_raw", lambda: deepdose_dose_rate(a, rho, spacing, model, device=args.device,
                                                       precision=args.precision))
        run("vsv", lambda: vsv_dose_rate(a, rho, kernel, device=args.device))
        run("vsv_scaled", lambda: scaled_vsv_dose_rate(a, rho, model.kernels, device=args.device, mode="source"))
        run("vsv_scaled_primary", lambda: scaled_vsv_dose_rate(a, rho, model.kernels, device=args.device,
                                                               mode="source", photon_heterogeneity="primary"))
        run("vsv_scaled_method", lambda: scaled_vsv_dose_rate(a, rho, method_kernels, device=args.device,
                                                              mode="source",
                                                              photon_heterogeneity=defaults.photon_heterogeneity))
        run("led", lambda: led_dose_rate(a, rho, nuc, device=args.device))
        metrics = {k: structure_errors(d, ref, rho, labels, names, voxel_mL) for k, d in maps.items()}
        hot = metric_voxels(ref, rho)
        r = safe["r"]
        sd_mc = unc * ref
        disagreement = np.abs(r.network_mGy_per_h - r.baseline_mGy_per_h) / (2 * np.maximum(r.dose_rate_mGy_per_h,
                                                                                          1e-30))
        for key, u in (("uncertainty", r.relative_uncertainty), ("spread_only", r.network_spread),
                       ("disagreement_only", disagreement)):
            # the written map u_D, and each of its two terms alone (the mirrored spread; half the network-baseline
            # difference, which needs no flips), with and without the MC's σ
            if u is not None:
                extra[f"{key}_coverage_2sigma_pct"] = coverage_pct(r.dose_rate_mGy_per_h, ref, sd_mc, u, hot)
                extra[f"{key}_coverage_2sigma_without_mc_sigma_pct"] = coverage_pct(
                    r.dose_rate_mGy_per_h, ref, np.zeros_like(sd_mc), u, hot)
        extra["fallback_pct_of_metric_voxels"] = float(100 * r.fallback[hot].mean())
        extra["mc_median_rel_unc_pct"] = float(100 * np.median(unc[hot]))
        results[name] = {"settings": settings, "mc_seconds": t_mc, "seconds": seconds, "metrics": metrics,
                         "deepdose_checks": extra, "shape_zyx": list(a.shape)}
        print(f"\n## {name}: {a.shape[::-1]} voxels, MC {args.decays:.0e} decays ({t_mc:.0f} s, median uncertainty "
              f"{extra['mc_median_rel_unc_pct']:.1f} %), uptake {json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in settings.items()})}")
        keys = sorted({k for v in metrics.values() for k in v if not k.startswith("dvh:")})
        print("\n| error vs MC (%) | " + " | ".join(maps) + " |\n|---|" + "---|" * len(maps))
        for k in keys:
            print(f"| {k} | " + " | ".join(f"{metrics[m].get(k, float('nan')):+.1f}" for m in maps) + " |")
        print("| seconds | " + " | ".join(f"{seconds[m]:.1f}" for m in maps) + " |")
        print("deepdose checks: " + ", ".join(f"{k} {v:.1f}" for k, v in extra.items()))
    run = {"command": "python benchmarks/bench_generalization.py " + " ".join(sys.argv[1:]),
           "weights_sha256": model.card["weights_sha256"], "torch_threads": torch.get_num_threads(),
           "network_precision": resolve_precision(args.precision, args.device), "date": time.strftime("%Y-%m-%d")}
    if args.json:
        args.json.write_text(json.dumps({"small_run": small, "nuclide": nuc.name, "decays": args.decays,
                                         "network_precision": run["network_precision"], "run": run,
                                         "cases": results}, indent=1))
    report(args, model, results, args.decays, run)


#: ``vsv_scaled``: Deep-dose's own baseline (the model's kernels, every photon as in water: what the network refines);
#: ``vsv_scaled_primary``: the same with the photon heterogeneity correction (what Deep-dose's fallback gives);
#: ``vsv_scaled_method``: the `vsv_scaled` method with its defaults, what a user gets from ``--method vsv_scaled``
#: (each absent from runs made before it was added)
METHODS = ("deepdose", "deepdose_raw", "vsv", "vsv_scaled", "vsv_scaled_primary", "vsv_scaled_method", "led")


def summarize(results: dict, decays: float) -> dict:
    """Overall figures of a run: per method the mean voxel median |error|, the worst structure, the share of
    structures within 3 % (organs, lesions ≥ 2 mL, lung, bone) and the mean time; for Deep-dose the cases where
    its voxel median exceeds vsv_scaled's and the coverage of its uncertainty map."""
    out = {"cases": len(results), "decays": decays,
           "small_run": len(results) < ACCEPTANCE_CASES or decays < ACCEPTANCE_DECAYS, "methods": {}}
    for m in METHODS:
        if not all(m in c["metrics"] for c in results.values()):
            continue
        rows = [c["metrics"][m] for c in results.values()]
        structures = [(abs(v), n, k) for n, c in results.items() for k, v in c["metrics"][m].items()
                      if not k.startswith(("dvh:", "voxel_"))]
        worst = max(structures, default=(float("nan"), "-", "-"))
        out["methods"][m] = {
            "mean_voxel_median_abs_pct": float(np.mean([r["voxel_median_abs_pct"] for r in rows])),
            "worst_structure_abs_pct": worst[0], "worst_structure": f"{worst[1]}: {worst[2]}",
            "structures_within_3pct_pct": float(100 * np.mean([e <= 3.0 for e, _, _ in structures])),
            "mean_seconds": float(np.mean([c["seconds"][m] for c in results.values()]))}
    for base in ("vsv_scaled", "vsv_scaled_primary", "vsv_scaled_method"):
        if base in out["methods"]:
            out[f"deepdose_voxel_median_above_{base}"] = [
                n for n, c in results.items()
                if c["metrics"]["deepdose"]["voxel_median_abs_pct"] > c["metrics"][base]["voxel_median_abs_pct"]]
    for key in ("uncertainty_coverage_2sigma_pct", "uncertainty_coverage_2sigma_without_mc_sigma_pct",
                "spread_only_coverage_2sigma_pct", "disagreement_only_coverage_2sigma_pct",
                "fallback_pct_of_metric_voxels", "mc_median_rel_unc_pct"):
        values = [c["deepdose_checks"][key] for c in results.values() if key in c["deepdose_checks"]]
        if values:
            out[key] = {"mean": float(np.mean(values)), "min": float(np.min(values)), "max": float(np.max(values))}
    return out


def report(args, model, results: dict, decays: float, run: dict) -> None:
    """Print the overall table and the worst case; with ``--write-card`` store the summary in the card, with
    ``run`` (the command, weights hash, threads and precision of the run that measured ``results``)."""
    summary = summarize(results, decays)
    print(f"\n## overall ({summary['cases']} case(s){', SMALL RUN' if summary['small_run'] else ''})")
    print("\n| method | mean voxel median |err| % | structures within 3 % | worst structure |err| % (case: structure) "
          "| mean seconds |\n|---|---|---|---|---|")
    for m, v in summary["methods"].items():
        print(f"| {m} | {v['mean_voxel_median_abs_pct']:.2f} | {v['structures_within_3pct_pct']:.0f} % | "
              f"{v['worst_structure_abs_pct']:.1f} ({v['worst_structure']}) | {v['mean_seconds']:.1f} |")
    d = summary["methods"]["deepdose"]
    print(f"\nworst case for deepdose: {d['worst_structure']} ({d['worst_structure_abs_pct']:.1f} %)")
    for base in ("vsv_scaled", "vsv_scaled_primary", "vsv_scaled_method"):
        if f"deepdose_voxel_median_above_{base}" in summary:
            above = ", ".join(summary[f"deepdose_voxel_median_above_{base}"]) or "none"
            print(f"cases where its voxel median error exceeds {base}'s: {above}")
    for key in ("uncertainty_coverage_2sigma_pct", "uncertainty_coverage_2sigma_without_mc_sigma_pct",
                "spread_only_coverage_2sigma_pct", "disagreement_only_coverage_2sigma_pct",
                "fallback_pct_of_metric_voxels"):
        if key in summary:
            v = summary[key]
            print(f"{key}: mean {v['mean']:.1f}, min {v['min']:.1f}, max {v['max']:.1f}")
    if args.write_card:  # the card only: the weights and their hash are untouched
        from DeepDoseLib.deepdose.model_io import card_path

        path = card_path(model.path)
        card = json.loads(path.read_text())
        card["benchmark_generalization"] = {
            "command": ("python benchmarks/bench_generalization.py --nuclide N --from-json J --write-card (J: the "
                        "--json of the run)") if args.from_json else run["command"],
            "run": run or {"note": "the stored run does not record how it was made"},
            "held_out": "anatomies (heldout procedural torsos, TotalSegmentator slab, ICRP-110 AF) and uptake "
                        "(table-free generator: log-uniform concentrations over two decades, lesions 0.5-150 mL at "
                        "1-100x, active lung and bone in half the cases, 4-8 mm FWHM)",
            "fallback_rule": SafetyRule(flips=args.flips,
                                        fallback_photon_heterogeneity=args.fallback_photon).describe(),
            "uncertainty_map": "sqrt(mirrored spread^2 + (|network - baseline| / 2 dose)^2 + (c X / dose)^2 + f_c^2), "
                               "X the baseline's charged-particle dose rate that crossed a density interface, c the "
                               f"rule's interface_sigma ({SafetyRule().interface_sigma:g}), f_c the card's "
                               "uncertainty_floor of the voxel's material class; coverage = share of voxels above 10 % "
                               "of the MC maximum with |D - MC| <= 2 sqrt(sigma_D^2 + sigma_MC^2)",
            **summary}
        path.write_text(json.dumps(card, indent=1))
        print(f"\nsummary written into {path}")


if __name__ == "__main__":
    main()
