"""Locate a Deep-dose model and summarise its model card for a clinician, without importing torch.

The Slicer module shows this summary when the panel opens, before PyTorch is installed or loaded:
what the model is for (intended use, nuclide, voxel size in mm), how accurate it measured against
Monte Carlo (organ mean dose-rate errors in %, from the card's benchmark on real anatomy), its
limitations, and, in a separate "details" text, how it was trained. Only the JSON card is read;
the weights are loaded (and their SHA-256 checked) by :mod:`DeepDoseLib.deepdose.model_io`.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Union

from .errors import DeepDoseInputError

_ROOT = Path(__file__).resolve().parents[1]
#: Folder of the models bundled with the Slicer extension (``$DEEPDOSE_MODEL_DIR`` overrides it): the source
#: tree's ``DeepDose/Resources/Models``, or, in an installed extension, ``qt-scripted-modules/Resources/Models``
#: beside the installed DeepDoseLib package.
BUNDLED_MODEL_DIR = next((d for d in (_ROOT / "DeepDose" / "Resources" / "Models", _ROOT / "Resources" / "Models")
                          if d.is_dir()), _ROOT / "DeepDose" / "Resources" / "Models")


def card_path(model_path: Union[str, Path]) -> Path:
    """The model card of a weights file: same name, ``.json``."""
    return Path(model_path).with_suffix(".json")


def bundled_model_path(nuclide: str) -> Path:
    """The bundled model of ``nuclide`` (``deepdose_<nuclide>.pt``), refused with a clear message if absent."""
    root = Path(os.environ.get("DEEPDOSE_MODEL_DIR") or BUNDLED_MODEL_DIR)
    candidate = root / f"deepdose_{nuclide}.pt"  # TorchScript only: torch.export (.pt2) files are refused
    if candidate.is_file():
        return candidate
    raise DeepDoseInputError(f"No bundled Deep-dose model for {nuclide} in {root}; train one with "
                             f"`deepdose train --nuclide {nuclide} ...` and pass it with --model.")


def is_bundled_choice(model_path: Union[str, Path, None]) -> bool:
    """True when ``model_path`` means "the bundled model": None, ``""`` or ``Path()`` (which reads ``"."``)."""
    return model_path is None or str(model_path).strip() in ("", ".")


@dataclass
class ClinicianModelSummary:
    """What a clinician needs to know about a Deep-dose model before using it.

    ``organ_errors_pct``: organ mean dose-rate error vs Monte Carlo [%] on the card's benchmark anatomy
    ``benchmark``; ``problems``: reasons the run would be refused (empty when usable).
    """

    file_name: str
    bundled: bool
    nuclide: str = "?"
    voxel_size_mm: str = "?"
    intended_use: str = ""
    benchmark: str = ""
    organ_errors_pct: Dict[str, float] = field(default_factory=dict)
    limitations: str = ""
    generalization: str = ""
    details: List[str] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)

    def text(self) -> str:
        """A few lines for the panel (the training record is in :attr:`details`)."""
        head = f"{self.file_name}{' (bundled)' if self.bundled else ''}"
        if self.problems and self.nuclide == "?":
            return head + ": " + " ".join(self.problems)
        lines = [f"{head}: {self.intended_use}",
                 f"Nuclide {self.nuclide}; the network runs on a {self.voxel_size_mm} mm grid and its bounded "
                 "correction multiplies the density-scaled VSV computed on the PET's own voxels."]
        if self.organ_errors_pct:
            worst = max(abs(v) for v in self.organ_errors_pct.values())
            organs = ", ".join(f"{k} {v:+.1f} %" for k, v in self.organ_errors_pct.items())
            lines.append(f"Measured accuracy ({self.benchmark}): organ mean dose rate within {worst:.1f} % of Monte "
                         f"Carlo ({organs}).")
        if self.generalization:
            lines.append(self.generalization)
        if self.limitations:
            lines.append("Limitations: " + self.limitations)
        lines += ["WARNING: " + p for p in self.problems]
        return "\n".join(lines)


def _organ_errors(card: dict) -> tuple:
    """(benchmark name, {organ: error %}) from the card's real-anatomy benchmark, preferring the whole torso."""
    anatomies = (card.get("benchmark_real_anatomy") or {}).get("anatomies") or {}
    for name in ("icrp110_af", *sorted(anatomies)):
        metrics = ((anatomies.get(name) or {}).get("metrics") or {}).get("deepdose")
        if isinstance(metrics, dict):
            errors = {k.split(":", 1)[1].replace("tumour:", "tumour "): float(v) for k, v in metrics.items()
                      if k.startswith("organ:") and isinstance(v, (int, float))}
            if errors:
                label = {"icrp110_af": "ICRP-110 adult female torso"}.get(name, name)
                return label, errors
    validation = (card.get("validation") or {}).get("deepdose")
    if isinstance(validation, dict):
        errors = {k.split(":", 1)[1]: float(v) for k, v in validation.items()
                  if k.startswith("organ:") and isinstance(v, (int, float))}
        return "held-out validation", errors
    return "", {}


def _generalization(card: dict) -> str:
    """One sentence from the card's held-out benchmark (``benchmarks/bench_generalization.py --write-card``)."""
    bench = card.get("benchmark_generalization") or {}
    methods = bench.get("methods") if isinstance(bench, dict) else None
    if not isinstance(methods, dict) or "deepdose" not in methods or "vsv_scaled" not in methods:
        return ""
    d, b = methods["deepdose"], methods["vsv_scaled"]
    text = (f"Held-out benchmark ({bench.get('cases', '?')} cases unlike the training set, MC "
            f"{float(bench.get('decays', 0)):.0e} decays{', a small run' if bench.get('small_run') else ''}): "
            f"structures within 3 % of MC {d['structures_within_3pct_pct']:.0f} % (density-scaled VSV "
            f"{b['structures_within_3pct_pct']:.0f} %), worst {d['worst_structure_abs_pct']:.1f} % "
            f"({d['worst_structure']}); mean voxel median error {d['mean_voxel_median_abs_pct']:.1f} % "
            f"(density-scaled VSV {b['mean_voxel_median_abs_pct']:.1f} %)")
    coverage = bench.get("uncertainty_coverage_2sigma_pct")
    if isinstance(coverage, dict) and "mean" in coverage:
        text += f"; the uncertainty map covers MC within ±2σ in {coverage['mean']:.0f} % of the voxels"
    return text + "."


def describe_floors(floors: Dict[str, float]) -> str:
    """The uncertainty map's error floors per material class as text ("lung 4.5 %, soft tissue 4.6 %")."""
    return ", ".join(f"{k.replace('_', ' ')} {100 * float(v):.1f} %" for k, v in floors.items())


def clinician_model_summary(model_path: Union[str, Path, None], nuclide: str) -> ClinicianModelSummary:
    """Summarise the card of the model a run for ``nuclide`` would use (``model_path`` empty: the bundled one).

    Problems (no bundled model, unreadable card, model of another nuclide) are described, never raised.
    """
    bundled = is_bundled_choice(model_path)
    try:
        path = bundled_model_path(nuclide) if bundled else Path(model_path)
    except DeepDoseInputError as exc:
        return ClinicianModelSummary(file_name=f"deepdose_{nuclide}", bundled=True, problems=[str(exc)])
    summary = ClinicianModelSummary(file_name=path.name, bundled=bundled)
    try:
        card = json.loads(card_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        summary.problems.append(f"no readable model card {card_path(path).name} ({exc}); the run will be refused.")
        return summary
    summary.nuclide = str(card.get("nuclide", "?"))
    spacing = card.get("voxel_size_mm") or card.get("spacing_mm") or "?"
    if isinstance(spacing, (list, tuple)):
        spacing = "×".join(f"{float(v):g}" for v in spacing)
    summary.voxel_size_mm = str(spacing)
    summary.intended_use = (f"dose-rate map (mGy/h) from a quantitative {summary.nuclide} PET/SPECT (Bq/mL) and CT, "
                            "for research dosimetry; check organ values against a second method.")
    summary.benchmark, summary.organ_errors_pct = _organ_errors(card)
    summary.limitations = str(card.get("limitations") or "")
    summary.generalization = _generalization(card)
    if summary.nuclide.lower() != str(nuclide).lower():
        summary.problems.append(f"trained for {summary.nuclide}, not {nuclide}: the run will be refused.")
    training = card.get("training") or {}
    if isinstance(training, dict) and training.get("command"):
        summary.details.append(f"Training command: {training['command']}")
    benchmark = card.get("benchmark_real_anatomy") or {}
    if isinstance(benchmark, dict) and benchmark.get("command"):
        summary.details.append(f"Benchmark command: {benchmark['command']}")
    lung_min = (card.get("training_range") or {}).get("lung_activity_ratio_min")
    if isinstance(lung_min, (int, float)) and lung_min > 0:
        summary.details.append(f"Training range: lungs at ≥ {float(lung_min):.2g}× the median body activity; less "
                               "active lungs fall back to the density-scaled VSV baseline")
    elif isinstance(lung_min, (int, float)):
        summary.details.append("Training range: lungs from no activity of their own upward (no lung fallback)")
    floor = card.get("uncertainty_floor") or {}  # deepdose.uncertainty_floor.CARD_KEY (read without torch)
    if isinstance(floor, dict) and isinstance(floor.get("floors"), dict) and floor["floors"]:
        summary.details.append(
            f"Uncertainty map: error floor measured on {len(floor.get('cases') or [])} validation/test case(s), added "
            "to the mirrored spread and half the network-baseline gap: " + describe_floors(floor["floors"]))
    architecture = card.get("architecture") or {}
    if isinstance(architecture, dict) and architecture:
        summary.details.append("Architecture: " + ", ".join(f"{k} {v}" for k, v in architecture.items()))
    for key in ("deepdose_version", "torch_version", "weights_sha256"):
        if card.get(key):
            summary.details.append(f"{key}: {card[key]}")
    return summary
