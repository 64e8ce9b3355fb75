"""Monte Carlo (``mc``): DeepDose's reference transport engine, with a relative-uncertainty map."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import DeepDoseInputError
from .base import DoseMethod, MethodOutput, RunContext, option


@dataclass
class MCOptions:
    # no upper bound: the command line estimates the run time from a short run and asks for --yes beyond an hour
    n_decays: int = option(10_000_000, "MC: number of decays to simulate (e.g. 1e7)", flag="decays", minimum=1,
                           label="Decays")
    seed: int = option(0, "MC: random seed (results are reproducible for a seed)", flag="seed", minimum=0,
                       maximum=2**31 - 1, label="Seed")
    n_batches: int = option(10, "MC: batches for the statistical uncertainty", flag="batches", minimum=2,
                            maximum=1000, label="Batches")
    mc_engine: str = option("kernel", "MC: kernel (compiled transport kernel, default) or torch (the reference engine)",
                            flag="engine", choices=("kernel", "torch"), label="MC engine", slicer_name="mcEngine")
    target_uncertainty: Optional[float] = option(
        None, "MC: after --decays, simulate on until the median relative uncertainty in tissue voxels above half the "
              "maximum reaches this (0.02 or 2%; kernel engine)", flag="target-uncertainty", minimum=1e-4, maximum=0.5,
        percent=True, label="Target uncertainty")
    max_decays: Optional[int] = option(None, "MC: decay limit of --target-uncertainty (default 100 × --decays)",
                                       flag="max-decays", minimum=1, label="Maximum decays")
    # stratified: the same expected dose, less count noise (Lu-177 on the demo torso: 8.1 → 5.2 % at 4e6 decays)
    source_sampling: str = option(
        "auto", "MC: decay positions stratified per batch (each voxel gets its expected number of decays; the "
                "kernel's default) or drawn independently (the torch engine's only way); auto = the engine's default",
        flag="source-sampling", choices=("auto", "stratified", "independent"), label="Source sampling")


class MonteCarlo(DoseMethod):
    name = "mc"
    title = "Monte Carlo (DeepDose reference engine)"
    guidance = "The reference: photons and electrons transported through the CT; minutes, statistical uncertainty " \
               "per voxel."
    assumptions = (
        "Decays sampled from the activity map, particles transported through the CT-derived materials and "
        "densities; energy scored per voxel. The statistical uncertainty is reported per voxel.",
    )
    Options = MCOptions
    order = 40
    has_uncertainty = True

    def validate(self, options: MCOptions) -> None:
        if options.mc_engine == "torch" and (options.target_uncertainty is not None or options.max_decays is not None):
            raise DeepDoseInputError("mc: --target-uncertainty and --max-decays need --engine kernel.")
        if options.mc_engine == "torch" and options.source_sampling == "stratified":
            raise DeepDoseInputError("mc: --source-sampling stratified needs --engine kernel (the torch engine draws "
                                     "decay positions independently).")

    def run(self, inputs, nuclide, options: MCOptions, context: RunContext) -> MethodOutput:
        from ..mc import run_monte_carlo

        stop = {k: v for k, v in (("target_uncertainty", options.target_uncertainty),
                                  ("max_decays", options.max_decays)) if v is not None}
        if options.mc_engine == "kernel" and options.source_sampling != "auto":
            stop["stratified_source"] = options.source_sampling == "stratified"
        mc = run_monte_carlo(inputs.activity_Bq_per_mL, inputs.density_g_per_cm3, inputs.material_labels,
                             inputs.spacing_mm, nuclide, options.n_decays, seed=options.seed, device=context.device,
                             n_batches=options.n_batches, progress=context.progress, cancel=context.cancel,
                             engine=options.mc_engine, **stop)
        notes = list(mc.notes) + [f"MC: {mc.n_decays:,} decays, seed {mc.seed}, {mc.decays_per_second:,.0f} "
                                  f"decays/s on {mc.device}"]
        return MethodOutput(mc.dose_rate_mGy_per_h, mc.relative_uncertainty, notes)
