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

The parts of :func:`train`: :class:`.training_config.TrainConfig`, :func:`.training_data.load_training_data`
(cases and kernels), :class:`ValidationPatches`,
:class:`.training_state.TrainingRun` (network, optimiser, weight average, random state, progress),
:class:`.checkpoint.Checkpoint` (save, resume and its refusal rules), :func:`train_round`, :func:`stop_reason`
and :func:`export_trained_model` (validation on the held-out cases, :func:`model_card`, export).
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .._version import __version__
from ..methods.scaled_vsv import ScaledKernels, scaled_vsv_dose_rate
from ..tissue import TISSUE_MIN_DENSITY_g_per_cm3, material_names
from .channels import CHANNEL_NAMES, CHARGED_MODE
from .checkpoint import Checkpoint
from .data import TrainingCase, find_cases, load_case
from .evaluation import compare, summarise
from .inference import predict_on_model_grid
from ..errors import DeepDoseInputError
from .model_io import export_model, load_model, network_weights, sha256_file
from .patches import PreparedCase, sample_batch, sample_patch
from .tiling import TilePlan
from .training_config import TrainConfig
from .training_data import TrainingData, load_training_data, mc_decays
from .training_range import training_range
from .training_state import TrainingRun
from .unet import DeepDoseUNet

__all__ = ["TrainConfig", "evaluate_cases", "export_trained_model", "model_card", "patch_loss", "refresh_card_validation",
           "stop_reason", "train", "train_round", "ValidationPatches"]

logger = logging.getLogger(__name__)


def patch_loss(model: DeepDoseUNet, x: torch.Tensor, y: torch.Tensor, margin: int) -> torch.Tensor:
    """Unbiased relative MSE of the normalised dose (see the module docstring).

    Parameters
    ----------
    model : DeepDoseUNet
        The network (not its TorchScript export: the loss needs its normalised inputs).
    x : torch.Tensor
        (N, 5, P, P, P) input channels (:mod:`.channels`).
    y : torch.Tensor
        (N, 1, P, P, P) Monte Carlo dose rate [mGy/h].
    margin : int
        Voxels next to the patch faces that carry no loss.

    Returns
    -------
    torch.Tensor
        The weighted loss, a dimensionless scalar.
    """
    scale = model.patch_scale(x)
    a_n, rho, c_n, p_n, surround = model.normalised_inputs(x, scale)
    pred = model.forward_normalised(a_n, rho, c_n, p_n, surround)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    y_n = y / (safe * model.k)
    crop = (slice(None), slice(None)) + (slice(margin, -margin),) * 3 if margin > 0 else (slice(None),) * 5
    w = (rho[crop] > TISSUE_MIN_DENSITY_g_per_cm3).float() / (c_n[crop] + p_n[crop] + 0.1) ** 2
    return ((pred[crop] - y_n[crop]) ** 2 * w).sum() / w.sum().clamp_min(1e-12)


def evaluate_cases(model: torch.nn.Module, kernels: ScaledKernels, cases: List[TrainingCase], config: TrainConfig,
                   device: str = "cpu") -> Tuple[List[Dict[str, float]], List[Dict[str, float]]]:
    """Whole-volume metrics of Deep-dose and of its baseline (density-scaled VSV) against the MC targets.

    Parameters
    ----------
    model : torch.nn.Module or callable
        The network (or its TorchScript export).
    kernels : ScaledKernels
        The model's kernels.
    cases : list of TrainingCase
        Cases with a Monte Carlo dose rate [mGy/h].
    config : TrainConfig
        Inference tiling and architecture (``inference_tile``, ``inference_margin``, ``overlap``, ``depth``,
        ``base_channels``).
    device : str
        ``"cpu"`` or ``"cuda[:n]"``.

    Returns
    -------
    tuple of list of dict
        Per case, the metrics of :func:`.evaluation.compare` for Deep-dose and for the baseline.
    """
    ours, base = [], []
    if hasattr(model, "eval"):
        model.eval()
    for case in cases:
        voxel_mL = float(np.prod(case.spacing_mm)) * 1e-3
        plan = TilePlan.for_volume(case.activity_Bq_per_mL.shape, config.inference_tile, config.inference_margin,
                                   config.overlap, 2 ** (config.depth - 1))
        dose = predict_on_model_grid(model, kernels, case.activity_Bq_per_mL, case.density_g_per_cm3, case.spacing_mm,
                                     plan, base_channels=config.base_channels, device=device)
        baseline = scaled_vsv_dose_rate(case.activity_Bq_per_mL, case.density_g_per_cm3, kernels, mode=CHARGED_MODE)
        for store, d in ((ours, dose), (base, baseline)):
            store.append(compare(d, case.dose_rate_mGy_per_h, case.density_g_per_cm3, case.labels, case.label_names,
                                 voxel_mL))
    return ours, base


class ValidationPatches:
    """Fixed patches of the held-out cases, drawn once, on which every round is judged.

    Parameters
    ----------
    cases : list of PreparedCase
        Held-out cases; patch ``i`` comes from case ``i mod len(cases)``.
    count, size : int
        Number of patches and their edge [voxels].
    rng : numpy.random.Generator
        Draws the patch centres.
    """

    def __init__(self, cases: List[PreparedCase], count: int, size: int, rng: np.random.Generator):
        batch = [sample_patch(cases[i % len(cases)], size, rng) for i in range(count)]
        self.x = torch.as_tensor(np.stack([b[0] for b in batch]).astype(np.float32))
        self.y = torch.as_tensor(np.stack([b[1] for b in batch]).astype(np.float32))

    def loss(self, model: DeepDoseUNet, margin: int, device: str = "cpu", chunk: int = 8) -> float:
        """Mean :func:`patch_loss` of ``model`` (in eval mode, without gradients) over the patches, ``chunk`` at a time."""
        model.eval()
        with torch.no_grad():
            losses = [patch_loss(model, self.x[i:i + chunk].to(device), self.y[i:i + chunk].to(device), margin).item()
                      for i in range(0, len(self.x), chunk)]
        return float(np.mean(losses))


def train_round(run: TrainingRun, cases: List[PreparedCase], cfg: TrainConfig, device: str = "cpu",
                on_step: Callable[[], None] = lambda: None) -> float:
    """``cfg.iterations_per_round`` optimiser steps on random batches of ``cases``; returns the mean training loss.

    Parameters
    ----------
    run : TrainingRun
        Network, optimiser, weight average and the random state that draws the batches.
    cases : list of PreparedCase
        Training cases.
    cfg : TrainConfig
        Batch and patch sizes, loss margin, steps per round.
    device : str
        Where the batches go.
    on_step : callable
        Called after every step (progress bar).
    """
    run.model.train()
    losses = []
    for _ in range(cfg.iterations_per_round):
        x, y = sample_batch(cases, cfg.batch_size, cfg.patch_size, run.rng)
        loss = patch_loss(run.model, torch.as_tensor(x, device=device), torch.as_tensor(y, device=device), cfg.margin)
        run.step(loss)
        losses.append(loss.item())
        on_step()
    return float(np.mean(losses))


def stop_reason(progress: Dict, cfg: TrainConfig) -> Optional[str]:
    """Why training stops before ``cfg.max_rounds`` after the round in ``progress`` (:attr:`TrainingRun.progress`):
    no improvement for ``cfg.patience`` rounds, or the time limit; None to go on."""
    if progress["round"] - max(progress["best_round"], 0) >= cfg.patience:
        return f"early stopping (no improvement for {cfg.patience} rounds)"
    if progress["seconds"] > 60 * cfg.time_limit_min:
        return f"time limit ({cfg.time_limit_min:g} min)"
    return None


def starting_weights(path: str | Path, nuclide: str, base_channels: int, depth: int) -> Dict[str, torch.Tensor]:
    """The network weights of the model file ``path`` (hash-checked, never unpickled) for a run of ``nuclide``
    with that architecture; a :class:`DeepDoseInputError` when its nuclide or architecture differs."""
    loaded = load_model(path)
    arch = loaded.card.get("architecture", {})
    theirs = (loaded.card.get("nuclide"), arch.get("base_channels"), arch.get("depth"))
    ours = (nuclide, base_channels, depth)
    if theirs != ours:
        raise DeepDoseInputError(f"--init-from {Path(path).name}: nuclide, base channels and depth are {theirs}, "
                                 f"this run's {ours}; a warm start needs the same network.")
    return network_weights(loaded)


def train(data_dir: str | Path | List[str | Path], out: str | Path, config: Optional[TrainConfig] = None, *, device: str = "cpu",
          resume: bool = True, command: str = "", log: Callable[[str], None] = logger.info,
          show_progress: bool = True, kernels_override: Optional[ScaledKernels] = None) -> Path:
    """Train on the cases of ``config.nuclide`` under ``data_dir`` and export the best model to ``out``.

    Parameters
    ----------
    data_dir : path or list of paths
        Folders with training cases (:mod:`.data`).
    out : str or Path
        The model file to write (:func:`.model_io.export_model`; its card beside it). The checkpoint is
        ``out`` with the suffix ``.ckpt`` (:class:`.checkpoint.Checkpoint`).
    config : TrainConfig, optional
        Hyper-parameters (defaults: :class:`TrainConfig`).
    device : str
        ``"cpu"`` or ``"cuda[:n]"``.
    resume : bool
        Continue from the checkpoint when there is one.
    command : str
        The command line, recorded in the model card.
    log : callable
        Receives progress messages.
    show_progress : bool
        Show a tqdm progress bar.
    kernels_override : ScaledKernels, optional
        Kernels instead of the Monte Carlo kernels of the nuclide (tests).

    Returns
    -------
    Path
        ``out``.
    """
    cfg = config or TrainConfig()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(out)
    data = load_training_data(data_dir, cfg, device=device, kernels_override=kernels_override, log=log)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    validation = ValidationPatches(data.val, cfg.val_patches, cfg.patch_size, np.random.default_rng(cfg.seed + 1))
    net = DeepDoseUNet(data.k, cfg.base_channels, cfg.depth)
    if cfg.init_from:
        net.load_state_dict(starting_weights(cfg.init_from, cfg.nuclide, cfg.base_channels, cfg.depth))
        log(f"network weights start from {Path(cfg.init_from).name}")
    run = TrainingRun.start(net.to(device), rng,
                            learning_rate=cfg.learning_rate, lr_patience=cfg.lr_patience, ema_decay=cfg.ema_decay)
    checkpoint = Checkpoint.beside(out, asdict(cfg))
    if resume and checkpoint.exists():
        run.load_state_dict(checkpoint.load(device))
        log(f"resumed from {checkpoint.path.name} at round {run.progress['round']}")
    if run.progress["round"] == 0 and not run.progress["history"]:
        val = validation.loss(run.judged, cfg.margin, device)
        run.progress["history"].append({"round": 0, "train_loss": None, "val_loss": val})
        run.progress["best_val"] = val
    from tqdm import tqdm

    start = time.perf_counter() - run.progress["seconds"]
    bar = tqdm(total=cfg.max_rounds * cfg.iterations_per_round, initial=run.progress["round"] * cfg.iterations_per_round,
               desc=f"train {cfg.nuclide}", disable=not show_progress, unit="it")
    stopped = "max_rounds"
    while run.progress["round"] < cfg.max_rounds:
        train_loss = train_round(run, data.train, cfg, device, on_step=lambda: bar.update(1))
        val = validation.loss(run.judged, cfg.margin, device)
        run.end_round(train_loss, val, time.perf_counter() - start)
        bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val:.4f}")
        checkpoint.save(run.state_dict())
        early = stop_reason(run.progress, cfg)
        if early:
            stopped = early
            break
    bar.close()
    progress = run.progress
    log(f"stopped: {stopped}; best validation loss {progress['best_val']:.5f} at round {progress['best_round']}")
    if progress["best_round"] < 1:
        log("warning: no training round beat the untrained network (the density-scaled VSV baseline, validation "
            "loss of round 0); that is what is exported — train longer")
    model = run.model
    model.load_state_dict(run.best_weights)
    model.eval()
    return export_trained_model(model, data, cfg, progress, stopped, out, command=command, device=device, log=log)


def model_card(model: DeepDoseUNet, data: TrainingData, cfg: TrainConfig, progress: Dict, stopped: str,
               ours: List[Dict[str, float]], base: List[Dict[str, float]], *, command: str = "",
               device: str = "cpu") -> dict:
    """The model card of a trained model: grid, inputs and baseline, architecture, training record, validation.

    Parameters
    ----------
    model : DeepDoseUNet
        The exported weights.
    data : TrainingData
        Cases, voxel size and kernels of the run.
    cfg : TrainConfig
        Its settings.
    progress : dict
        :attr:`TrainingRun.progress` at the end.
    stopped : str
        Why training stopped.
    ours, base : list of dict
        Per held-out case, the metrics of Deep-dose and of the density-scaled VSV baseline (:func:`evaluate_cases`).
    command : str
        The command line.
    device : str
        The training device.
    """
    kernels = data.kernels
    return {
        "name": f"Deep-dose {cfg.nuclide}", "nuclide": cfg.nuclide, "voxel_size_mm": list(data.spacing_mm),
        "grid": {"tile_size_voxels": cfg.patch_size, "inference_tile_voxels": cfg.inference_tile,
                 "margin_voxels": cfg.inference_margin, "overlap_voxels": cfg.overlap,
                 "size_multiple": 2 ** (cfg.depth - 1), "axes": "(z, y, x)"},
        "inputs": {"channels": list(CHANNEL_NAMES),
                   "normalisation": "per patch: s = max(max A, max(charged + photon)/k); A/s, doses/(s·k); "
                                    f"output × s·k (exactly linear in activity); k = {data.k:.6g} mGy/h per Bq/mL",
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
        "training": {"command": command, "config": asdict(cfg), "stop_reason": stopped,
                     "initial_weights_sha256": sha256_file(cfg.init_from) if cfg.init_from else None,
                     "rounds": progress["round"], "best_round": progress["best_round"],
                     "seconds": round(progress["seconds"], 1), "device": device,
                     "train_cases": [c.name for c in data.train_cases], "val_cases": [c.name for c in data.val_cases],
                     "mc_decays_per_case": sorted({mc_decays(c) for c in data.train_cases}),
                     "datasets": data.datasets,
                     "history": progress["history"]},
        # what the network saw: the fallback rule refuses inputs outside it (training_range.py)
        "training_range": training_range(data.train_cases),
        "validation": {"cases": [c.name for c in data.val_cases], "deepdose": summarise(ours),
                       "vsv_scaled": summarise(base),
                       "note": "against MC of the held-out cases (targets themselves noisy: see training decays)"},
        "deepdose_version": __version__,
    }


def export_trained_model(model: DeepDoseUNet, data: TrainingData, cfg: TrainConfig, progress: Dict, stopped: str,
                         out: str | Path, *, command: str = "", device: str = "cpu",
                         log: Callable[[str], None] = logger.info) -> Path:
    """Validate ``model`` on the held-out cases, build its card (:func:`model_card`) and export both to ``out``."""
    ours, base = evaluate_cases(model, data.kernels, data.val_cases, cfg, device)
    card = model_card(model, data, cfg, progress, stopped, ours, base, command=command, device=device)
    export_model(model, data.kernels, out, card)
    log(f"model written to {out}")
    return Path(out)


def refresh_card_validation(model_path: str | Path, data_dir: str | Path, device: str = "cpu") -> dict:
    """Recompute the ``validation`` section of a model card on the held-out cases it lists (e.g. after
    a change of the metrics); the weights and their hash are untouched.

    Parameters
    ----------
    model_path : str or Path
        The model file; its card beside it is rewritten.
    data_dir : str or Path
        Folder with the held-out cases the card names.
    device : str
        ``"cpu"`` or ``"cuda[:n]"``.

    Returns
    -------
    dict
        The new ``validation`` section.
    """
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


def card_names(case: TrainingCase) -> set:
    """The names under which a card may list ``case``: "<dataset folder>/<case id>", or the bare case id of cards
    written before case ids repeated across datasets."""
    return {case.name, case.name.split("/")[-1]}


def refresh_card_training_range(model_path: str | Path, data_dirs: List[str | Path]) -> dict:
    """Measure the ``training_range`` section of a model card (:mod:`.training_range`) on the training cases it
    lists (``training.train_cases``, found under ``data_dirs``), for a model trained before the section existed;
    the weights and their hash are untouched. Returns the section.

    Raises
    ------
    DeepDoseInputError
        If a listed training case is not found.
    """
    from .model_io import card_path, load_model

    model = load_model(model_path)
    names = list(model.card["training"]["train_cases"])
    found = {}
    for folder in find_cases([Path(d) for d in data_dirs], model.nuclide):
        case = load_case(folder)
        for name in card_names(case) & set(names):
            found[name] = case
    missing = [n for n in names if n not in found]
    if missing:
        raise DeepDoseInputError(f"{len(missing)} training case(s) of the card not found under "
                                 f"{', '.join(map(str, data_dirs))}: {', '.join(missing[:5])}")
    card = dict(model.card, training_range=training_range(found[n] for n in names))
    card_path(model_path).write_text(json.dumps(card, indent=1))
    return card["training_range"]


def refresh_card_uncertainty_floor(model_path: str | Path, data_dirs: List[str | Path],
                                   splits: Sequence[str] = ("val", "test"), device: str = "cpu",
                                   log: Callable[[str], None] = logger.info) -> dict:
    """Measure the ``uncertainty_floor`` section of a model card (:mod:`.uncertainty_floor`) on the cases of
    ``splits`` under ``data_dirs`` that the card does not list as training cases; the weights and their hash are
    untouched. Each case runs the method's default (:func:`.safety.safe_deepdose`, the map without a floor)
    against its MC reference and that reference's σ. Returns the section.

    Raises
    ------
    DeepDoseInputError
        If no such case with an MC uncertainty map is found.
    """
    from ..deepdose_rule import SafetyRule
    from .model_io import card_path, load_model
    from .safety import safe_deepdose
    from .uncertainty_floor import CARD_KEY, measure_floors

    model = load_model(model_path, device)
    trained = set(model.card["training"]["train_cases"])
    cases = []
    for folder in find_cases([Path(d) for d in data_dirs], model.nuclide):
        case = load_case(folder)
        if case.split in splits and case.relative_uncertainty is not None and not card_names(case) & trained:
            cases.append(case)
    if not cases:
        raise DeepDoseInputError(f"no {model.nuclide} case of split {'/'.join(splits)} with an MC uncertainty map "
                                 f"outside the model's training cases under {', '.join(map(str, data_dirs))}")
    rule = SafetyRule()

    def samples():
        for case in cases:
            r = safe_deepdose(case.activity_Bq_per_mL, case.density_g_per_cm3, case.spacing_mm, model, rule,
                              device=device, error_floor=False)
            log(f"uncertainty floor: {case.name} done")
            if r.relative_uncertainty is None:
                continue
            ref = case.dose_rate_mGy_per_h
            yield (case.name, r.dose_rate_mGy_per_h, r.relative_uncertainty, ref,
                   case.relative_uncertainty * ref, case.density_g_per_cm3)

    section = measure_floors(samples())
    section.update({
        "cases": [c.name for c in cases], "splits": list(splits),
        "mc_decays_per_case": sorted({mc_decays(c) for c in cases}),
        "rule": rule.describe(),
        "definition": "f_c = the smallest floor with which |D - MC| <= 2 sqrt((u_D^2 + f_c^2) D^2 + sigma_MC^2) holds "
                      "in 95 % of the metric voxels (tissue above 10 % of the MC maximum) of material class c on these "
                      "cases; the map is sqrt(u_D^2 + f_c^2); rms_floor: the noise-subtracted mean of squares, for "
                      "comparison, not used",
        "limits": "one constant per material class, measured on the uptake of these cases; an error concentrated "
                  "in a few structures is spread over the whole class; references noisier than a benchmark's are "
                  "covered with smaller floors, so the floors are a lower bound there; a class with fewer than 200 "
                  "metric voxels gets the largest floor",
        "date": time.strftime("%Y-%m-%d")})
    card = dict(model.card)
    card[CARD_KEY] = section
    card_path(model_path).write_text(json.dumps(card, indent=1))
    return section
