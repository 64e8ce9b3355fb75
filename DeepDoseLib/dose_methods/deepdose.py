"""Deep-dose (``deepdose``): a 3D U-Net that refines the density-scaled VSV towards Monte Carlo."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .base import DoseMethod, MethodOutput, RunContext, option


@dataclass
class DeepDoseOptions:
    model_path: Optional[str] = option(None, "deepdose: TorchScript model file (.pt with its .json card beside it; "
                                             "torch.export .pt2 files are refused); default: the bundled model of "
                                             "the nuclide", flag="model", label="TorchScript model file", slicer_name="modelFile",
                                       is_path=True, extensions=(".pt",))


class DeepDoseUNetMethod(DoseMethod):
    name = "deepdose"
    title = "Deep-dose 3D U-Net"
    label = "Deep-dose"
    guidance = "Seconds; Monte Carlo accuracy on cases like its training set (see the model card)."
    assumptions = ("A network trained on Monte Carlo dose rates predicts the dose rate from the activity and density "
                   "patches (after Lee et al., Sci Rep 2019).",)
    Options = DeepDoseOptions
    order = 60

    def run(self, inputs, nuclide, options: DeepDoseOptions, context: RunContext) -> MethodOutput:
        from ..deepdose.inference import deepdose_dose_rate
        from ..deepdose.model_io import resolve_model

        model = resolve_model(options.model_path, nuclide.name, device=context.device)
        notes = []
        dose = deepdose_dose_rate(inputs.activity_Bq_per_mL, inputs.density_g_per_cm3, inputs.spacing_mm, model,
                                  device=context.device, progress=context.progress, cancel=context.cancel,
                                  notes=notes)
        notes.append(f"Deep-dose model {model.path.name} (SHA-256 {model.card['weights_sha256'][:12]}…, "
                     f"{'×'.join(f'{s:g}' for s in model.spacing_mm)} mm)")
        return MethodOutput(dose, notes=notes)
