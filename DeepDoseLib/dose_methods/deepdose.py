"""Deep-dose (``deepdose``): a 3D U-Net that refines the density-scaled VSV towards Monte Carlo, bounded around
that baseline, with its own uncertainty and a fallback to the baseline (:mod:`DeepDoseLib.deepdose.safety`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..deepdose_rule import PRECISIONS
from .base import DoseMethod, MethodOutput, RunContext, option


def _default(name: str):
    from ..deepdose_rule import SafetyRule

    return getattr(SafetyRule(), name)


@dataclass
class DeepDoseOptions:
    model_path: Optional[str] = option(None, "deepdose: TorchScript model file (.pt with its .json card beside it; "
                                             "torch.export .pt2 files are refused); default: the bundled model of "
                                             "the nuclide", flag="model", label="TorchScript model file",
                                       slicer_name="modelFile", is_path=True, extensions=(".pt",))
    max_correction: float = option(_default("max_correction"), "deepdose: largest correction of the density-scaled "
                                   "VSV baseline, as a fraction (output within baseline·(1 ± b))",
                                   flag="deepdose-max-correction", minimum=0.0, maximum=0.9,
                                   label="Max correction")
    flips: int = option(_default("flips"), "deepdose: mirrored copies for the per-voxel uncertainty (0: none; each "
                        "costs one network pass)", flag="deepdose-flips", minimum=0, maximum=7,
                        label="Uncertainty passes")
    max_uncertainty: float = option(_default("max_relative_uncertainty"), "deepdose: fall back to the baseline "
                                    "where the relative uncertainty exceeds this fraction",
                                    flag="deepdose-max-uncertainty", minimum=0.0, maximum=10.0,
                                    label="Fallback uncertainty")
    min_tile_scale: float = option(_default("min_tile_scale_fraction"), "deepdose: fall back to the baseline in "
                                   "tissue whose baseline dose rate is below this fraction of the scale of the tiles "
                                   "that predicted it (low uptake next to hot regions; 0: off)",
                                   flag="deepdose-min-tile-scale", minimum=0.0, maximum=0.5,
                                   label="Fallback below tile scale")
    # native by default: the round trip through the model's 4 mm grid loses 9-13 % of a 4-6 mL lesion's mean dose rate
    # at 3.9x3.9x4.4 mm (docs/validation/deepdose_generalization.md); the compiled MC kernel makes the kernels of a
    # new voxel size a one-off of 1-2 min on 2 cores (cached), where they took > 10 min before
    baseline_grid: str = option("native", "deepdose: grid of the physics baseline that the correction multiplies: "
                                "native (computed on the input voxels; the kernels of a new voxel size are computed "
                                "once, 1-2 min on 2 cores, then cached) or model (resampled from the model's voxels: "
                                "no new kernels, but small lesions lose about 10 % of their dose rate)",
                                flag="deepdose-baseline-grid", choices=("model", "native"), label="Baseline grid")
    # auto: bfloat16 where the CPU computes it natively (0.61x the float32 time, output p99 change 0.036 %), float32
    # elsewhere and on CUDA (DeepDoseLib/deepdose/precision.py)
    precision: str = option("auto", "deepdose: arithmetic of the network's layers (the baseline and the residual sum "
                            "stay float32): auto (bfloat16 on a CPU with native bfloat16 instructions, else float32), "
                            "float32 or bfloat16", flag="deepdose-precision", choices=PRECISIONS,
                            label="Network precision")


def baseline_photon_radius_mm(card: dict) -> float:
    """The photon-kernel extent [mm] of the baseline a model was trained with (its card's training settings;
    150 mm for the models made before the setting existed)."""
    config = (card.get("training") or {}).get("config") or {}
    return float(config.get("photon_radius_mm", 150.0))


class DeepDoseUNetMethod(DoseMethod):
    name = "deepdose"
    title = "Deep-dose 3D U-Net"
    label = "Deep-dose"
    guidance = ("Seconds; Monte Carlo accuracy on cases like its training set (see the model card); bounded around "
                "the density-scaled VSV and falls back to it where unsure.")
    assumptions = ("A network trained on Monte Carlo dose rates predicts the dose rate from the activity and density "
                   "patches (after Lee et al., Sci Rep 2019).",
                   "Its correction of the density-scaled VSV baseline is bounded; where its inputs leave the training "
                   "range, its mirrored predictions disagree or the dose is a small fraction of its tile's scale, the "
                   "output is the baseline.")
    Options = DeepDoseOptions
    order = 60
    has_uncertainty = True
    has_fallback = True

    def run(self, inputs, nuclide, options: DeepDoseOptions, context: RunContext) -> MethodOutput:
        from ..deepdose.model_io import resolve_model
        from ..deepdose.precision import resolve_precision
        from ..deepdose.safety import safe_deepdose
        from ..deepdose_rule import SafetyRule
        from ..progress import sub_progress

        model = resolve_model(options.model_path, nuclide.name, device=context.device)
        rule = SafetyRule(max_correction=float(options.max_correction), flips=int(options.flips),
                          max_relative_uncertainty=float(options.max_uncertainty),
                          min_tile_scale_fraction=float(options.min_tile_scale))
        native_kernels = None
        if options.baseline_grid == "native":
            import numpy as np

            if not np.allclose(tuple(inputs.spacing_mm), model.spacing_mm, rtol=1e-3):
                from ..methods.scaled_vsv import compute_scaled_kernels

                # the same kind of baseline as the model's own (photon bands, scatter medium), at the input voxels
                own = model.kernels
                native_kernels = compute_scaled_kernels(
                    nuclide, inputs.spacing_mm, densities_g_per_cm3=own.densities_g_per_cm3,
                    n_decays=int(own.n_decays or 1_000_000), device=context.device,
                    material_factors=bool(own.photon_factors), photon_bands=bool(own.photon_material_kernels),
                    scatter_medium=bool(own.scatter_medium), photon_radius_mm=baseline_photon_radius_mm(model.card),
                    progress=sub_progress(context.progress, 0.0, 0.5, "baseline kernels of the input voxel size "
                                                                       "(once, then cached): "))
        result = safe_deepdose(inputs.activity_Bq_per_mL, inputs.density_g_per_cm3, inputs.spacing_mm, model, rule,
                               baseline_grid=options.baseline_grid, native_kernels=native_kernels,
                               device=context.device, cancel=context.cancel, precision=options.precision,
                               progress=context.progress if native_kernels is None else
                               sub_progress(context.progress, 0.5, 1.0))
        notes = list(result.notes)
        arithmetic = resolve_precision(options.precision, context.device)
        notes.append(f"Deep-dose model {model.path.name} (SHA-256 {model.card['weights_sha256'][:12]}…, "
                     f"{'×'.join(f'{s:g}' for s in model.spacing_mm)} mm, network in {arithmetic}); {rule.describe()}")
        return MethodOutput(result.dose_rate_mGy_per_h, relative_uncertainty=result.relative_uncertainty, notes=notes,
                            fallback=result.fallback)
