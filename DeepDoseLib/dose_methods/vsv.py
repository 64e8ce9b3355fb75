"""Voxel S-value convolution (``vsv``) with a kernel of one medium from DeepDose's Monte Carlo."""
from __future__ import annotations

from dataclasses import dataclass

from .base import DoseMethod, MethodOutput, RunContext, option

#: Kernel decays shared by ``vsv`` and ``vsv_scaled`` (the kernels are cached on disk).
KERNEL_DECAYS_DEFAULT = 2_000_000
KERNEL_DECAYS_HELP = "VSV: decays simulated for each kernel (cached on disk)"


def kernel_decays_option():
    """The ``--kernel-decays`` option (one declaration for both VSV methods)."""
    return option(KERNEL_DECAYS_DEFAULT, KERNEL_DECAYS_HELP, flag="kernel-decays", minimum=1000, maximum=1e10,
                  label="Kernel decays")


@dataclass
class VSVOptions:
    density_correction: bool = option(False, "VSV: scale the dose by kernel density / local density",
                                      flag="vsv-density-correction", label="Density correction")
    kernel_medium: str = option("soft_tissue", "VSV: kernel medium (soft_tissue, water, ...)", flag="kernel-medium",
                                label="Kernel medium")
    kernel_decays: int = kernel_decays_option()
    kernel_radius_mm: float = option(150.0, "VSV: kernel extent from its centre [mm]", flag="kernel-radius-mm",
                                     minimum=1.0, maximum=1000.0, label="Kernel radius [mm]")


class VoxelSValue(DoseMethod):
    name = "vsv"
    title = "Voxel S-value convolution (VSV)"
    guidance = "Seconds; accurate in soft tissue, errs at lung and bone interfaces (uniform-medium kernel)."
    assumptions = (
        "The activity map is convolved with a dose-point kernel tabulated for one medium; an optional "
        "density correction scales each voxel by kernel density / local density.",
        "Assumes a homogeneous medium around each source (interfaces such as lung or bone are approximate).",
    )
    Options = VSVOptions
    order = 20

    def run(self, inputs, nuclide, options: VSVOptions, context: RunContext) -> MethodOutput:
        from ..methods.vsv import compute_kernel, vsv_dose_rate
        from ..progress import sub_progress

        kernel = compute_kernel(nuclide, inputs.spacing_mm, options.kernel_medium, n_decays=options.kernel_decays,
                                radius_mm=options.kernel_radius_mm, device=context.device,
                                progress=sub_progress(context.progress, 0.0, 0.9, "VSV kernel: "))
        dose = vsv_dose_rate(inputs.activity_Bq_per_mL, inputs.density_g_per_cm3, kernel,
                             density_correction=options.density_correction, device=context.device)
        note = (f"VSV kernel: {kernel.medium} ({kernel.density_g_per_cm3} g/cm³), "
                f"{kernel.dose_rate_mGy_per_h_per_Bq.shape} voxels, {kernel.n_decays:,} decays"
                + (", density-corrected" if options.density_correction else ""))
        return MethodOutput(dose, notes=[note])
