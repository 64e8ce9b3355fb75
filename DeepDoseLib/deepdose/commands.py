"""``deepdose train`` and ``deepdose evaluate`` (argparse wiring called from :mod:`DeepDoseLib.cli`)."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np


def add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train a Deep-dose U-Net on Monte Carlo dose rates and export it (.pt + card)")
    p.add_argument("--data", type=Path, nargs="+", required=True,
                   help="folder(s) of cases (`deepdose dataset` output or cases made with --generate-train; "
                        "generated cases go into the first)")
    p.add_argument("--nuclide", default="Ga68", help="nuclide of the cases and of the model")
    p.add_argument("--out", type=Path, required=True, help="model file (.pt); the card is written beside it (.json)")
    p.add_argument("--generate-train", type=int, default=0,
                   help="first generate this many procedural training cases with MC into --data (kept on re-runs)")
    p.add_argument("--generate-val", type=int, default=0, help="... and this many held-out-anatomy validation cases")
    p.add_argument("--decays", type=float, default=1e6, help="MC decays per generated case")
    p.add_argument("--case-seed", type=int, default=1000, help="seed of the first generated case")
    p.add_argument("--time-limit-min", type=float, default=60.0, help="stop training after this many minutes")
    p.add_argument("--max-rounds", type=int, default=200, help="validation rounds (100 iterations each)")
    p.add_argument("--patience", type=int, default=8, help="early stopping: rounds without improvement")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--ema-decay", type=float, default=0.0,
                   help="validate and export an exponential moving average of the weights (e.g. 0.995; 0: off)")
    p.add_argument("--base-channels", type=int, default=12)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--patch-size", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint <out>.ckpt")
    p.add_argument("--no-photon-bands", action="store_true",
                   help="baseline with one photon factor for bone (the models before photon bands) instead of "
                        "bone's own photon kernel from energy bands")
    p.add_argument("--photon-radius-mm", type=float, default=150.0,
                   help="extent of the baseline's soft-tissue photon kernel [mm] (default 150, the bundled Lu-177 "
                        "model; 300, the bundled Ga-68 model, keeps the photon cross-fire of large bodies)")
    p.add_argument("--no-scatter-medium", action="store_true",
                   help="baseline without the scatter-medium correction of the photon kernel (the models before it)")
    p.add_argument("--init-from", type=Path, default=None,
                   help="start from the network weights of this model file (same nuclide and architecture; e.g. a "
                        "bundled model when retraining on a changed baseline or more data)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_evaluate_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="accuracy of a Deep-dose model against the MC of held-out cases")
    p.add_argument("--model", type=Path, required=True, help="TorchScript model file (.pt with its card)")
    p.add_argument("--data", type=Path, nargs="+", required=True, help="folder(s) of cases with MC dose rates")
    p.add_argument("--splits", nargs="+", default=["val", "test"], help="case splits to evaluate (default val test)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--write-uncertainty-floor", action="store_true",
                   help="measure the error floor of the uncertainty map on these cases (those the card does not list "
                        "as training cases) and write it into the model card; the weights are untouched")


def run_train(args: argparse.Namespace) -> int:
    import torch

    from ..devices import resolve_device
    from .data import generate_cases
    from .training import TrainConfig, train

    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.generate_train or args.generate_val:
        generate_cases(args.data[0], args.nuclide, args.generate_train, args.generate_val, n_decays=int(args.decays),
                       first_seed=args.case_seed, device=device, log=lambda m: print(m, flush=True))
    cfg = TrainConfig(nuclide=args.nuclide, base_channels=args.base_channels, depth=args.depth,
                      patch_size=args.patch_size, batch_size=args.batch_size, max_rounds=args.max_rounds,
                      patience=args.patience, time_limit_min=args.time_limit_min, seed=args.seed, threads=args.threads,
                      learning_rate=args.learning_rate, ema_decay=args.ema_decay,
                      photon_bands=not args.no_photon_bands,
                      scatter_medium=not (args.no_scatter_medium or args.no_photon_bands),
                      photon_radius_mm=args.photon_radius_mm,
                      init_from=str(args.init_from) if args.init_from else "")
    command = "deepdose " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    out = train(args.data, args.out, cfg, device=device, resume=not args.no_resume, command=command,
                log=lambda m: print(m, flush=True), show_progress=not args.quiet)
    print(f"Deep-dose model written to {out} (card {out.with_suffix('.json').name})")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    import time

    from ..devices import resolve_device
    from .data import find_cases, load_case
    from .evaluation import compare
    from .inference import deepdose_dose_rate
    from .model_io import load_model

    device = resolve_device(args.device)
    if args.write_uncertainty_floor:
        from .training import refresh_card_uncertainty_floor

        section = refresh_card_uncertainty_floor(args.model, args.data, args.splits, device,
                                                 log=lambda m: print(m, flush=True))
        print("uncertainty floor (fraction): " + ", ".join(f"{k} {v:.4f}" for k, v in section["floors"].items()))
        print("coverage within ±2σ before -> after (%): " + ", ".join(
            f"{n} {section['coverage_2sigma_pct_before'][n]:.1f} -> {section['coverage_2sigma_pct_after'][n]:.1f}"
            for n in section["coverage_2sigma_pct_after"]))
        return 0
    model = load_model(args.model, device)
    folders = find_cases(args.data, model.nuclide)
    cases = [c for c in (load_case(f) for f in folders) if c.split in args.splits]
    if not cases:
        print(f"no {model.nuclide} cases of split {'/'.join(args.splits)} under {' '.join(map(str, args.data))}")
        return 2
    print("case\tsplit\tseconds\tmetric\terror_pct")
    for case in cases:
        start = time.perf_counter()
        dose = deepdose_dose_rate(case.activity_Bq_per_mL, case.density_g_per_cm3, case.spacing_mm, model,
                                  device=device)
        seconds = time.perf_counter() - start
        metrics = compare(dose, case.dose_rate_mGy_per_h, case.density_g_per_cm3, case.labels, case.label_names,
                          float(np.prod(case.spacing_mm)) * 1e-3)
        for key, value in metrics.items():
            print(f"{case.name}\t{case.split}\t{seconds:.1f}\t{key}\t{value:+.2f}")
    return 0
