"""Training of the Deep-dose U-Net on Monte Carlo dose rates.

Loss (noisy MC targets): the mean squared error of the normalised dose rate, each voxel weighted by
1 / (B_n + 0.1)² (B_n: the normalised baseline dose, charged + photon) — a relative error whose weight depends on the *inputs* only, never on the noisy
target, so E[loss] = (prediction − E[target])² · w + var·w and its minimiser is the noise-free MC
dose (unbiased). Voxels of air and gas (< 0.05 g/cm³, dose per gram of air) and the ``margin`` voxels
next to the patch faces (they see zero padding, like discarded tile margins at inference) carry no loss.

Adam; the learning rate halves after ``lr_patience`` rounds without improvement. With ``ema_decay`` > 0
the validated and exported weights are an exponential moving average of the iterates (Polyak
averaging: with noisy MC targets it averages out the noise the last steps fit).
Seeded (numpy + torch), resumable (a checkpoint ``<out>.ckpt`` after every validation round holds
the weights, optimiser, random states and history), validation on fixed patches of held-out
anatomies (split ``val``), early stopping after ``patience`` rounds without improvement, a time limit,
and a tqdm progress bar. The best weights are exported with :func:`.model_io.export_model`.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from .._version import __version__
from ..errors import DeepDoseInputError
from ..nuclides import get_nuclide
from .data import TrainingCase, find_cases, load_case
from .evaluation import compare, summarise
from ..methods.scaled_vsv import ScaledKernels, compute_scaled_kernels, scaled_vsv_dose_rate
from ..tissue import material_names
from .channels import CHANNEL_NAMES, CHARGED_MODE, input_channels
from .inference import predict_on_model_grid
from .model_io import export_model
from .patches import LOSS_DENSITY_MIN_g_per_cm3, PreparedCase, pad_case, sample_batch, sample_patch
from .unet import DeepDoseUNet

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Hyper-parameters (all recorded in the model card)."""

    nuclide: str = "Ga68"
    base_channels: int = 12
    depth: int = 3
    patch_size: int = 40
    margin: int = 8
    batch_size: int = 4
    learning_rate: float = 1e-3
    iterations_per_round: int = 100
    max_rounds: int = 200
    patience: int = 8
    lr_patience: int = 3
    ema_decay: float = 0.0
    time_limit_min: float = 60.0
    val_patches: int = 48
    seed: int = 0
    kernel_decays: int = 1_000_000
    inference_tile: int = 96
    inference_margin: int = 12
    overlap: int = 8
    threads: int = 0
    #: baseline with bone's own photon kernel from energy bands (see :mod:`DeepDoseLib.methods.scaled_vsv`)
    photon_bands: bool = True
    #: photon baseline with the scatter-medium correction (:mod:`DeepDoseLib.methods.photon_scatter`; needs the bands)
    scatter_medium: bool = True
    extra: Dict[str, str] = field(default_factory=dict)


def _numpy_state(rng: np.random.Generator) -> str:
    return json.dumps(rng.bit_generator.state)


def prepare(case: TrainingCase, kernels: ScaledKernels, pad: int) -> PreparedCase:
    """Pad a case and compute its input channels (:mod:`.channels`) over the padded volume."""
    a, d = pad_case(case.activity_Bq_per_mL, case.density_g_per_cm3, pad)
    target = np.pad(case.dose_rate_mGy_per_h.astype(np.float32), pad)
    prepared = PreparedCase(case.name, input_channels(a, d, kernels), target, pad, tuple(case.spacing_mm))
    prepared.build_sampling()
    return prepared


def patch_loss(model: DeepDoseUNet, x: torch.Tensor, y: torch.Tensor, margin: int) -> torch.Tensor:
    """Unbiased relative MSE of the normalised dose (see the module docstring)."""
    scale = model.patch_scale(x)
    a_n, rho, c_n, p_n, surround = model.normalised_inputs(x, scale)
    pred = model.forward_normalised(a_n, rho, c_n, p_n, surround)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    y_n = y / (safe * model.k)
    crop = (slice(None), slice(None)) + (slice(margin, -margin),) * 3 if margin > 0 else (slice(None),) * 5
    w = (rho[crop] > LOSS_DENSITY_MIN_g_per_cm3).float() / (c_n[crop] + p_n[crop] + 0.1) ** 2
    return ((pred[crop] - y_n[crop]) ** 2 * w).sum() / w.sum().clamp_min(1e-12)


def dose_per_activity(kernels: ScaledKernels) -> float:
    """k [mGy/h per Bq/mL]: the dose rate of an infinite uniform source in unit-density tissue
    (reciprocity: the sum of a kernel × the voxel volume; charged part at 1 g/cm³ + photon part)."""
    ladder = np.asarray(kernels.densities_g_per_cm3)
    i = int(np.argmin(np.abs(ladder - 1.0)))
    energy = float(kernels.charged[i].sum(dtype=np.float64)) * ladder[i]  # ρ·D: the same at every density
    return (energy + float(kernels.photon.sum(dtype=np.float64))) * float(np.prod(kernels.spacing_mm)) * 1e-3


def mc_decays(case: TrainingCase) -> int:
    """Monte Carlo decays of a case's ground truth (either case layout; 0 when not recorded)."""
    return int(case.metadata.get("n_decays", case.metadata.get("dose", {}).get("n_decays", 0)))


def split_cases(folders: List[Path]) -> Tuple[List[TrainingCase], List[TrainingCase]]:
    cases = [load_case(f) for f in folders]
    train = [c for c in cases if c.split == "train"]
    val = [c for c in cases if c.split == "val"]  # "test" cases are kept for `deepdose evaluate`
    if not val and len(train) > 1:
        val = train[-max(1, len(train) // 5):]
        train = train[:len(train) - len(val)]
    if not train or not val:
        raise DeepDoseInputError("Training needs at least one training and one validation (held-out) case.")
    spacings = {tuple(round(s, 4) for s in c.spacing_mm) for c in cases}
    if len(spacings) != 1:
        raise DeepDoseInputError(f"All training cases must share one voxel size; found {sorted(spacings)} mm.")
    return train, val


def evaluate_cases(model: torch.nn.Module, kernels: ScaledKernels, cases: List[TrainingCase], config: TrainConfig,
                   device: str = "cpu") -> Tuple[List[Dict[str, float]], List[Dict[str, float]]]:
    """Whole-volume metrics of Deep-dose and of its baseline (density-scaled VSV) against the MC targets."""
    ours, base = [], []
    if hasattr(model, "eval"):
        model.eval()
    for case in cases:
        voxel_mL = float(np.prod(case.spacing_mm)) * 1e-3
        dose = predict_on_model_grid(model, kernels, case.activity_Bq_per_mL, case.density_g_per_cm3, case.spacing_mm,
                                     tile_size=config.inference_tile, margin=config.inference_margin,
                                     overlap=config.overlap, size_multiple=2 ** (config.depth - 1),
                                     base_channels=config.base_channels, device=device)
        baseline = scaled_vsv_dose_rate(case.activity_Bq_per_mL, case.density_g_per_cm3, kernels, mode=CHARGED_MODE)
        for store, d in ((ours, dose), (base, baseline)):
            store.append(compare(d, case.dose_rate_mGy_per_h, case.density_g_per_cm3, case.labels, case.label_names,
                                 voxel_mL))
    return ours, base


def train(data_dir: str | Path | List[str | Path], out: str | Path, config: Optional[TrainConfig] = None, *, device: str = "cpu",
          resume: bool = True, command: str = "", log: Callable[[str], None] = logger.info,
          show_progress: bool = True, kernels_override: Optional[ScaledKernels] = None) -> Path:
    """Train on the cases of ``config.nuclide`` under ``data_dir`` and export the best model to ``out``.

    ``kernels_override``: :class:`ScaledKernels` instead of the Monte Carlo kernels of the nuclide (tests).
    """
    cfg = config or TrainConfig()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(out)
    folders = find_cases(data_dir, cfg.nuclide)
    if not folders:
        raise DeepDoseInputError(f"No {cfg.nuclide} training cases under {data_dir}.")
    train_cases, val_cases = split_cases(folders)
    spacing = tuple(float(s) for s in train_cases[0].spacing_mm)
    nuc = get_nuclide(cfg.nuclide)
    kernels = kernels_override or compute_scaled_kernels(nuc, spacing, n_decays=cfg.kernel_decays, device=device,
                                                         photon_bands=cfg.photon_bands,
                                                         scatter_medium=cfg.scatter_medium)
    k = dose_per_activity(kernels)
    pad = cfg.patch_size // 2
    log(f"preparing {len(train_cases)} training and {len(val_cases)} validation cases (physics channels)")
    train_p = [prepare(c, kernels, pad) for c in train_cases]
    val_p = [prepare(c, kernels, pad) for c in val_cases]
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    val_rng = np.random.default_rng(cfg.seed + 1)
    val_batch = [sample_patch(val_p[i % len(val_p)], cfg.patch_size, val_rng) for i in range(cfg.val_patches)]
    val_x = torch.as_tensor(np.stack([b[0] for b in val_batch]).astype(np.float32))
    val_y = torch.as_tensor(np.stack([b[1] for b in val_batch]).astype(np.float32))
    model = DeepDoseUNet(k, cfg.base_channels, cfg.depth).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    # the learning rate halves after ``lr_patience`` rounds without a better validation loss
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=cfg.lr_patience)
    state = {"round": 0, "best_val": float("inf"), "best_round": -1, "history": [], "seconds": 0.0}
    best_state = {k_: v.detach().clone() for k_, v in model.state_dict().items()}
    ema = DeepDoseUNet(k, cfg.base_channels, cfg.depth).to(device) if cfg.ema_decay > 0 else None
    if ema is not None:
        ema.load_state_dict(model.state_dict())
    judged = ema if ema is not None else model  # the weights that are validated and exported
    ckpt = out.with_suffix(".ckpt")
    if resume and ckpt.is_file():
        saved = torch.load(ckpt, map_location=device, weights_only=True)
        # when to stop (and how many threads) may change on resume, e.g. a longer time limit; nothing else
        mutable = ("time_limit_min", "max_rounds", "patience", "threads")
        before = {k: v for k, v in json.loads(saved["config"]).items() if k not in mutable}
        before.setdefault("photon_bands", False)  # checkpoints from before the option had no bands
        before.setdefault("scatter_medium", False)  # ... nor the scatter-medium correction
        if before != {k: v for k, v in json.loads(json.dumps(asdict(cfg))).items() if k not in mutable}:
            raise DeepDoseInputError(f"Checkpoint {ckpt} was made with other settings; delete it or use the same ones "
                                     f"(only {', '.join(mutable)} may change on resume).")
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(json.loads(saved["scheduler"]))
        best_state = saved["best_model"]
        if ema is not None:
            ema.load_state_dict(saved["ema_model"])
        state = json.loads(saved["state"])
        rng.bit_generator.state = json.loads(saved["numpy_rng"])
        torch.set_rng_state(saved["torch_rng"])
        log(f"resumed from {ckpt.name} at round {state['round']}")

    def evaluate_val() -> float:
        judged.eval()
        with torch.no_grad():
            losses = [patch_loss(judged, val_x[i:i + 8].to(device), val_y[i:i + 8].to(device), cfg.margin).item()
                      for i in range(0, len(val_x), 8)]
        model.train()
        return float(np.mean(losses))

    if state["round"] == 0 and not state["history"]:
        state["history"].append({"round": 0, "train_loss": None, "val_loss": evaluate_val()})
        state["best_val"] = state["history"][0]["val_loss"]
    from tqdm import tqdm

    start = time.perf_counter() - state["seconds"]
    bar = tqdm(total=cfg.max_rounds * cfg.iterations_per_round, initial=state["round"] * cfg.iterations_per_round,
               desc=f"train {cfg.nuclide}", disable=not show_progress, unit="it")
    model.train()
    stop_reason = "max_rounds"
    while state["round"] < cfg.max_rounds:
        losses = []
        for _ in range(cfg.iterations_per_round):
            x, y = sample_batch(train_p, cfg.batch_size, cfg.patch_size, rng)
            loss = patch_loss(model, torch.as_tensor(x, device=device), torch.as_tensor(y, device=device), cfg.margin)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if ema is not None:
                with torch.no_grad():
                    for p_ema, p in zip(ema.parameters(), model.parameters()):
                        p_ema.mul_(cfg.ema_decay).add_(p.detach(), alpha=1.0 - cfg.ema_decay)
            losses.append(loss.item())
            bar.update(1)
        state["round"] += 1
        val = evaluate_val()
        state["history"].append({"round": state["round"], "train_loss": float(np.mean(losses)), "val_loss": val})
        bar.set_postfix(train=f"{np.mean(losses):.4f}", val=f"{val:.4f}")
        sched.step(val)
        if val < state["best_val"]:
            state.update(best_val=val, best_round=state["round"])
            best_state = {k_: v.detach().clone() for k_, v in judged.state_dict().items()}
        state["seconds"] = time.perf_counter() - start
        tmp = ckpt.with_name(ckpt.name + ".tmp")
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "best_model": best_state,
                    "scheduler": json.dumps(sched.state_dict()),
                    **({"ema_model": ema.state_dict()} if ema is not None else {}),
                    "state": json.dumps(state), "numpy_rng": _numpy_state(rng), "torch_rng": torch.get_rng_state(),
                    "config": json.dumps(asdict(cfg))}, tmp)
        tmp.replace(ckpt)
        if state["round"] - max(state["best_round"], 0) >= cfg.patience:
            stop_reason = f"early stopping (no improvement for {cfg.patience} rounds)"
            break
        if state["seconds"] > 60 * cfg.time_limit_min:
            stop_reason = f"time limit ({cfg.time_limit_min:g} min)"
            break
    bar.close()
    log(f"stopped: {stop_reason}; best validation loss {state['best_val']:.5f} at round {state['best_round']}")
    if state["best_round"] < 1:
        log("warning: no training round beat the untrained network (the density-scaled VSV baseline, validation "
            "loss of round 0); that is what is exported — train longer")
    model.load_state_dict(best_state)
    model.eval()
    ours, base = evaluate_cases(model, kernels, val_cases, cfg, device)
    card = {
        "name": f"Deep-dose {cfg.nuclide}", "nuclide": cfg.nuclide, "voxel_size_mm": list(spacing),
        "grid": {"tile_size_voxels": cfg.patch_size, "inference_tile_voxels": cfg.inference_tile,
                 "margin_voxels": cfg.inference_margin, "overlap_voxels": cfg.overlap,
                 "size_multiple": 2 ** (cfg.depth - 1), "axes": "(z, y, x)"},
        "inputs": {"channels": list(CHANNEL_NAMES),
                   "normalisation": "per patch: s = max(max A, max(charged + photon)/k); A/s, doses/(s·k); "
                                    f"output × s·k (exactly linear in activity); k = {k:.6g} mGy/h per Bq/mL",
                   "baseline": {"method": "density-scaled VSV (DeepDoseLib.methods.scaled_vsv)",
                                "charged_kernel_choice": CHARGED_MODE,
                                "charged_kernel_densities_g_per_cm3": list(kernels.densities_g_per_cm3),
                                "photon_kernel_medium": "soft_tissue",
                                "photon_material_factors": {name: round(kernels.photon_factors[label], 4)
                                                            for label, name in material_names().items()
                                                            if label < len(kernels.photon_factors)},
                                "photon_kernel_shape_zyx": list(kernels.photon.shape),
                                **kernels.photon_band_summary()}},
        "architecture": {"type": "3D U-Net, residual on the density-scaled VSV baseline", "depth": cfg.depth,
                         "base_channels": cfg.base_channels,
                         "parameters": int(sum(p.numel() for p in model.parameters()))},
        "training": {"command": command, "config": asdict(cfg), "stop_reason": stop_reason,
                     "rounds": state["round"], "best_round": state["best_round"],
                     "seconds": round(state["seconds"], 1), "device": device,
                     "train_cases": [c.name for c in train_cases], "val_cases": [c.name for c in val_cases],
                     "mc_decays_per_case": sorted({mc_decays(c) for c in train_cases}),
                     "history": state["history"]},
        "validation": {"cases": [c.name for c in val_cases], "deepdose": summarise(ours),
                       "vsv_scaled": summarise(base),
                       "note": "against MC of the held-out cases (targets themselves noisy: see training decays)"},
        "deepdose_version": __version__,
    }
    export_model(model, kernels, out, card)
    log(f"model written to {out}")
    return out


def refresh_card_validation(model_path: str | Path, data_dir: str | Path, device: str = "cpu") -> dict:
    """Recompute the ``validation`` section of a model card on the held-out cases it lists (e.g. after
    a change of the metrics); the weights and their hash are untouched. Returns the new section."""
    from .model_io import card_path, load_model

    model = load_model(model_path, device)
    names = set(model.card["validation"]["cases"])
    cases = [load_case(f) for f in find_cases(data_dir, model.nuclide) if f.name in names
             or json.loads((f / "case.json").read_text()).get("case_id") in names]
    arch, grid = model.card["architecture"], model.card["grid"]
    cfg = TrainConfig(nuclide=model.nuclide, base_channels=int(arch["base_channels"]), depth=int(arch["depth"]),
                      inference_tile=int(grid["inference_tile_voxels"]), inference_margin=int(grid["margin_voxels"]),
                      overlap=int(grid["overlap_voxels"]))
    ours, base = evaluate_cases(model.module, model.kernels, cases, cfg, device)
    card = dict(model.card)
    card["validation"] = dict(card["validation"], deepdose=summarise(ours), vsv_scaled=summarise(base))
    card_path(model_path).write_text(json.dumps(card, indent=1))
    return card["validation"]
