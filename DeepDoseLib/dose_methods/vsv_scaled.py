"""Density-scaled voxel S-values (``vsv_scaled``): charged-particle kernels of the source voxel's density."""
from __future__ import annotations

from dataclasses import dataclass

from .base import DoseMethod, MethodOutput, RunContext, option
from ..deepdose_rule import PHOTON_HETEROGENEITY
from .vsv import kernel_decays_option


@dataclass
class ScaledVSVOptions:
    kernel_decays: int = kernel_decays_option()
    # 150 mm stays the default: the bundled Lu-177 model's baseline, and 300 mm (the bundled Ga-68 model's) costs
    # 2-3x the convolution time and 8x the kernel's Monte Carlo grid (docs/validation/deepdose_generalization.md)
    photon_radius_mm: float = option(150.0, "vsv_scaled: extent of the soft-tissue photon kernel [mm]; 300 keeps the "
                                     "cross-fire from beyond 15 cm that large bodies with widespread uptake receive "
                                     "(held-out benchmark, Ga-68: mean organ/lesion error 5.0 -> 2.0 %) at 2-3x the "
                                     "time", flag="vsv-photon-radius-mm", minimum=50.0, maximum=400.0,
                                     label="Photon kernel radius (mm)")
    photon_heterogeneity: str = option("primary", "vsv_scaled: primary = unscattered photons cross lung (and bone) by "
                                       "their density (lung photon dose 12-19 % low without it, against MC); none = "
                                       "every photon as in water, the input baseline of the bundled Deep-dose models",
                                       flag="vsv-photon-heterogeneity", choices=PHOTON_HETEROGENEITY,
                                       label="Photon heterogeneity")


class DensityScaledVSV(DoseMethod):
    name = "vsv_scaled"
    title = "Density-scaled voxel S-values"
    guidance = ("Seconds once its kernels are cached; charged-particle kernels follow lung and bone density, "
                "the physics baseline of Deep-dose.")
    assumptions = (
        "Charged-particle dose: kernels computed by DeepDose's Monte Carlo at a ladder of densities; each source "
        "voxel uses the kernel of its own density.",
        "Photon dose: the soft-tissue photon kernel (bone by its own energy-band kernels), scaled for the "
        "scattering medium around each voxel (the patient ends at the skin).",
        "Unscattered photons are attenuated by the densities along 26 lines from each voxel (lung lets more "
        "through than water); scattered photons keep the soft-tissue kernel.",
    )
    Options = ScaledVSVOptions
    order = 30

    def run(self, inputs, nuclide, options: ScaledVSVOptions, context: RunContext) -> MethodOutput:
        from ..methods.scaled_vsv import compute_scaled_kernels, scaled_vsv_dose_rate
        from ..progress import sub_progress

        kernels = compute_scaled_kernels(nuclide, inputs.spacing_mm, n_decays=options.kernel_decays,
                                         device=context.device, photon_radius_mm=options.photon_radius_mm,
                                         progress=sub_progress(context.progress, 0.0, 0.9,
                                                               "density-scaled VSV kernels: "))
        dose = scaled_vsv_dose_rate(inputs.activity_Bq_per_mL, inputs.density_g_per_cm3, kernels,
                                    device=context.device, mode="source",
                                    photon_heterogeneity=options.photon_heterogeneity)
        note = (f"density-scaled VSV: charged-particle kernels at {len(kernels.densities_g_per_cm3)} densities "
                f"({min(kernels.densities_g_per_cm3):g}–{max(kernels.densities_g_per_cm3):g} g/cm³, chosen by "
                f"the source voxel), soft-tissue photon kernel"
                + (", bone's own photon kernel from energy bands" if kernels.photon_material_kernels else "")
                + (", scatter-medium correction" if kernels.scatter_medium else "")
                + f", photon kernel radius {options.photon_radius_mm:g} mm"
                + (", unscattered photons through lung and bone by their density"
                   if options.photon_heterogeneity == "primary" else ", every photon as in water")
                + f", {kernels.n_decays:,} decays each")
        return MethodOutput(dose, notes=[note])
