"""Local energy deposition (``led``): all emitted charged-particle energy absorbed where the decay happens."""
from __future__ import annotations

from dataclasses import dataclass

from .base import DoseMethod, MethodOutput, RunContext, option


@dataclass
class LEDOptions:
    include_photons: bool = option(False, "LED: also deposit photon energy locally (an upper bound; default: "
                                          "charged particles only)", flag="include-photons",
                                   label="Include photons")


class LocalEnergyDeposition(DoseMethod):
    name = "led"
    title = "Local energy deposition (LED)"
    guidance = ("Instant; right for short-range emitters (Lu-177) in soft tissue, blurs nothing across voxels, "
                "wrong at interfaces and for photons.")
    assumptions = (
        "The kinetic energy of every charged particle emitted per decay (β⁻, β⁺, conversion and Auger electrons, "
        "α; ICRP Publication 107) is absorbed in the voxel where the decay happens: dose rate [mGy/h] = "
        "A [Bq/mL] × E [MeV] × 1.602×10⁻¹³ J/MeV / (ρ [g/cm³] × 10⁻³ kg/g) × 3600 s/h × 1000 mGy/Gy.",
        "Assumes particle ranges short compared with the voxel (good for Lu-177, whose mean β range in tissue is "
        "well below 1 mm; it blurs less than reality for Y-90 or Ga-68 positrons) and no cross-fire between "
        "voxels. Photons escape (ignored) unless photon energy is deposited locally too (an upper bound).",
        "Density from the CT (HU → g/cm³, Schneider et al. 2000), resampled linearly onto the PET grid; "
        "dose-grid voxels outside the CT are water.",
    )
    Options = LEDOptions
    order = 10

    def run(self, inputs, nuclide, options: LEDOptions, context: RunContext) -> MethodOutput:
        from ..methods.led import led_dose_rate

        dose = led_dose_rate(inputs.activity_Bq_per_mL, inputs.density_g_per_cm3, nuclide,
                             include_photons=options.include_photons, device=context.device)
        return MethodOutput(dose)

    def describe(self, options: LEDOptions = None):
        title = self.title
        if options is not None:
            title += " — photons " + ("deposited locally too" if options.include_photons else "ignored (charged only)")
        return title, list(self.assumptions)
