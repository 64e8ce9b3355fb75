"""MIRD organ-level sphere model (``mird``): uniform activity per organ, self-dose only."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import DeepDoseInputError
from .base import DoseMethod, MethodOutput, RunContext


@dataclass
class MIRDOptions:
    """The MIRD method has no options of its own: it needs the study's organ label map."""


class MIRDSpheres(DoseMethod):
    name = "mird"
    title = "MIRD organ-level S-values"
    guidance = "Organ means only (uniform uptake, self-dose, sphere model); needs an organ label map."
    assumptions = ("Uniform activity and dose per organ; self-dose from organ mass (unit-density sphere model).",)
    Options = MIRDOptions
    order = 50
    needs_labels = True

    def run(self, inputs, nuclide, options: MIRDOptions, context: RunContext) -> MethodOutput:
        import SimpleITK as sitk

        from ..geometry import resample_to_grid
        from ..methods.mird import mird_dose_rate_map, mird_organ_dose_rates

        if context.labels is None:
            raise DeepDoseInputError("The MIRD organ-level method needs an organ label map (--labels).")
        labels_on_grid = sitk.GetArrayFromImage(resample_to_grid(
            sitk.Cast(context.labels, sitk.sitkUInt16), inputs.grid, interpolator=sitk.sitkNearestNeighbor))
        rows, notes = mird_organ_dose_rates(inputs.activity_Bq_per_mL, inputs.density_g_per_cm3, labels_on_grid,
                                            context.label_names or {}, inputs.spacing_mm, nuclide)
        dose = mird_dose_rate_map(labels_on_grid, rows)
        notes = list(notes) + ["MIRD sphere model: uniform activity per organ, self-dose only, 0 outside organs"]
        notes += [f"MIRD {r.name}: {r.activity_MBq:.4g} MBq in {r.mass_g:.4g} g -> {r.dose_rate_mGy_per_h:.4g} mGy/h"
                  for r in rows]
        return MethodOutput(dose, notes=notes)
