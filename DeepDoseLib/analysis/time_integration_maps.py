"""Time integration of registered maps: voxel-wise absorbed-dose maps and per-organ time curves.

Builds on :mod:`DeepDoseLib.analysis.time_integration` (the curve models). Inputs are SimpleITK images on one
grid (registered beforehand), each at its own time point [h after administration]:

* ``quantity="dose_rate"``: dose-rate maps [mGy/h] → absorbed dose [Gy];
* ``quantity="activity"``: activity-concentration maps [Bq/mL] → time-integrated activity concentration
  [Bq·h/mL] per voxel and time-integrated activity [MBq·h] per organ.

Numpy arrays are (z, y, x).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import SimpleITK as sitk

from ..errors import DeepDoseInputError
from ..geometry import same_grid
from ..nuclides import Nuclide, get_nuclide
from ..output_paths import atomic_write_text
from .time_integration import MODELS, integrate_curves, integrate_voxels

#: quantity → (input unit, voxel output unit, factor value·h → voxel output, organ output unit)
QUANTITIES = {"dose_rate": ("mGy/h", "Gy", 1e-3, "Gy"), "activity": ("Bq/mL", "Bq·h/mL", 1.0, "MBq·h")}


@dataclass
class IntegratedMap:
    """Voxel-wise result on the input grid: ``image`` in ``unit`` (Gy or Bq·h/mL), fit ``r_squared`` (NaN
    where no fit ran), ``fallback`` (uint8: 1 where a failed fit was replaced by the trapezoid), ``notes``."""

    image: sitk.Image
    unit: str
    model: str
    r_squared: sitk.Image
    fallback: sitk.Image
    notes: List[str] = field(default_factory=list)


@dataclass
class OrganTimeIntegration:
    """One organ's time curve and its integral.

    ``values`` are organ means per time point (mass-weighted with a density map, voxel-weighted otherwise)
    in mGy/h, or total activity in MBq for ``quantity="activity"``; ``integral`` is in ``unit`` (Gy or MBq·h).
    ``voxel_map_mean`` is the same organ mean of the voxel-wise integrated map (NaN when not given): for the
    trapezoid both agree, for fits the difference shows what fitting the organ mean instead of each voxel changes.
    """

    name: str
    label: int
    times_h: List[float]
    values: List[float]
    value_unit: str
    model: str
    integral: float
    unit: str
    r_squared: float
    aicc: float
    parameters: Dict[str, float]
    voxel_map_mean: float = float("nan")


def check_same_grid(images: Sequence[sitk.Image], names: Optional[Sequence[str]] = None) -> None:
    """Raise :class:`DeepDoseInputError` naming the first image whose grid differs from the first one's."""
    names = list(names) if names is not None else [f"image {i + 1}" for i in range(len(images))]
    for image, name in zip(images[1:], names[1:]):
        if not same_grid(images[0], image):
            raise DeepDoseInputError(
                f"{name} is not on the grid of {names[0]} (size {image.GetSize()} vs {images[0].GetSize()}, spacing "
                f"{tuple(round(s, 4) for s in image.GetSpacing())} vs "
                f"{tuple(round(s, 4) for s in images[0].GetSpacing())} mm, origin "
                f"{tuple(round(o, 2) for o in image.GetOrigin())} vs {tuple(round(o, 2) for o in images[0].GetOrigin())}"
                " mm). Time integration needs maps registered and resampled onto one grid.")


def _order(images: Sequence[sitk.Image], times_h: Sequence[float], names: Optional[Sequence[str]]):
    if len(images) != len(times_h):
        raise DeepDoseInputError(f"{len(images)} map(s) but {len(times_h)} time point(s): give one time per map.")
    if len(images) == 0:
        raise DeepDoseInputError("No map to integrate.")
    names = list(names) if names is not None else [f"map {i + 1}" for i in range(len(images))]
    order = sorted(range(len(images)), key=lambda i: float(times_h[i]))
    times = [float(times_h[i]) for i in order]
    if any(b <= a for a, b in zip(times, times[1:])) or times[0] <= 0:
        raise DeepDoseInputError(f"Time points must be > 0 h after administration and distinct (got {times} h).")
    check_same_grid(images, names)
    return [images[i] for i in order], times, [names[i] for i in order]


def _nuclide(nuclide: Union[str, Nuclide]) -> Nuclide:
    return get_nuclide(nuclide) if isinstance(nuclide, str) else nuclide


def integrate_maps(images: Sequence[sitk.Image], times_h: Sequence[float], nuclide: Union[str, Nuclide],
                   model: str = "trapezoid", *, quantity: str = "dose_rate", names: Optional[Sequence[str]] = None,
                   device: str = "auto", progress: Optional[Callable[[float, str], None]] = None,
                   **options) -> IntegratedMap:
    """Voxel-wise time integration of registered maps → absorbed dose [Gy] (or Bq·h/mL) on their grid.

    Args:
        images: maps at ``times_h`` (any order; sorted here), all on one grid (checked, error names the odd one).
        times_h: time of each map [h after administration].
        nuclide: sets λ_phys for the tail, the constraint of the fits and the ``physical`` model.
        model: one of :data:`~DeepDoseLib.analysis.time_integration.MODELS`.
        options: passed to :func:`~DeepDoseLib.analysis.time_integration.integrate_curves` (``head``, ``tail``,
            ``effective_half_life_h``, ``constrain_to_physical``, ``integrate_from``).
    """
    if quantity not in QUANTITIES:
        raise DeepDoseInputError(f"quantity must be one of {', '.join(QUANTITIES)} (got {quantity!r}).")
    if model not in MODELS:
        raise DeepDoseInputError(f"Unknown time-integration model {model!r}; use one of {', '.join(MODELS)}.")
    from ..devices import resolve_device

    images, times, names = _order(images, times_h, names)
    nuc = _nuclide(nuclide)
    lam = math.log(2.0) / (nuc.half_life_s / 3600.0)
    device = resolve_device(device)
    arrays = [sitk.GetArrayViewFromImage(im) for im in images]
    for array, name in zip(arrays, names):
        if not np.all(np.isfinite(array)):
            raise DeepDoseInputError(f"{name} contains NaN or infinite voxels.")
        negative = int(np.count_nonzero(array < 0))
        if negative:
            raise DeepDoseInputError(
                f"{name} has {negative} negative voxel(s) (down to {float(array.min()):.4g}): a "
                f"{'dose rate' if quantity == 'dose_rate' else 'activity'} cannot be negative, and integrating it "
                "would give negative dose. Set them to 0 (or fix the map) first.")
    result = integrate_voxels(times, arrays, model, lam, progress=progress, device=device, **options)
    _, unit, factor, _ = QUANTITIES[quantity]

    def wrap(array: np.ndarray, dtype=np.float32) -> sitk.Image:
        image = sitk.GetImageFromArray(array.astype(dtype))
        image.CopyInformation(images[0])
        return image

    out = wrap(result["integral"] * factor)
    for key, value in {"DeepDose.quantity": "absorbed dose" if quantity == "dose_rate" else
                       "time-integrated activity concentration", "DeepDose.units": unit,
                       "DeepDose.time_integration": model, "DeepDose.nuclide": nuc.name,
                       "DeepDose.time_points_h": " ".join(f"{t:g}" for t in times)}.items():
        out.SetMetaData(key, value)
    notes = [f"{model} time integration of {len(times)} map(s) at {', '.join(f'{t:g}' for t in times)} h "
             f"({nuc.name}, physical half-life {nuc.half_life_s / 3600:.4g} h)"] + list(result["notes"])
    return IntegratedMap(out, unit, model, wrap(result["r_squared"]), wrap(result["fallback"], np.uint8), notes)


def _organ_masks(labels: sitk.Image, label_names: Dict[int, str], grid: sitk.Image):
    """label → (name, partial-volume mask on the maps' grid) for every label present (0 skipped)."""
    from .masks import fractional_masks

    present = sorted(int(v) for v in np.unique(sitk.GetArrayViewFromImage(labels)) if int(v) != 0)
    masks = fractional_masks(labels, grid, present)
    return {v: (label_names.get(v, f"label {v}"), masks[v]) for v in present if not masks[v].is_empty}


def _organ_values(image: sitk.Image, masks, quantity: str, density_g_per_cm3: Optional[np.ndarray]) -> List[float]:
    """Per organ (in ``masks`` order): mean dose rate [mGy/h] (mass-weighted with a density map, as
    :func:`~DeepDoseLib.analysis.organs.organ_statistics` computes it) or total activity [MBq]."""
    if quantity == "dose_rate":
        from .organs import organ_statistics

        keyed = {f"{label}:{name}": mask for label, (name, mask) in masks.items()}
        return [row.mean for row in organ_statistics(image, keyed, density_g_per_cm3=density_g_per_cm3)]
    array = sitk.GetArrayViewFromImage(image)
    voxel_mL = float(np.prod(image.GetSpacing())) * 1e-3
    out = []
    for _, mask in masks.values():
        values, fractions = mask.values_and_weights(array)
        out.append(float(np.dot(values.astype(np.float64), fractions)) * voxel_mL * 1e-6)  # Bq/mL × mL → MBq
    return out


def integrate_organs(images: Sequence[sitk.Image], times_h: Sequence[float], labels: sitk.Image,
                     label_names: Dict[int, str], nuclide: Union[str, Nuclide], model: str = "trapezoid", *,
                     quantity: str = "dose_rate", density_g_per_cm3: Optional[np.ndarray] = None,
                     names: Optional[Sequence[str]] = None, voxel_map: Optional[IntegratedMap] = None,
                     **options) -> List[OrganTimeIntegration]:
    """Per-organ time integration of the organ curves (1-D fits), one row per label present (0 skipped).

    ``labels`` may lie on another grid (partial-volume fractions, :mod:`DeepDoseLib.analysis.masks`);
    ``density_g_per_cm3`` ((z, y, x) on the maps' grid) makes the organ means of dose rates mass-weighted.
    ``voxel_map`` (from :func:`integrate_maps`) adds its organ means for comparison.
    """
    if quantity not in QUANTITIES:
        raise DeepDoseInputError(f"quantity must be one of {', '.join(QUANTITIES)} (got {quantity!r}).")
    images, times, names = _order(images, times_h, names)
    nuc = _nuclide(nuclide)
    lam = math.log(2.0) / (nuc.half_life_s / 3600.0)
    masks = _organ_masks(labels, label_names, images[0])
    if not masks:
        return []
    values = np.array([_organ_values(im, masks, quantity, density_g_per_cm3) for im in images], np.float64).T
    result = integrate_curves(times, values, model, lam, **options)
    _, _, factor, unit = QUANTITIES[quantity]
    value_unit = "mGy/h" if quantity == "dose_rate" else "MBq"
    organ_factor = factor if quantity == "dose_rate" else 1.0  # MBq × h is already MBq·h
    map_means: Dict[int, float] = {}
    if voxel_map is not None:  # back to value·h, then the same organ reduction and factor as the curves
        scaled = voxel_map.image / factor if quantity == "dose_rate" else voxel_map.image
        map_means = dict(zip(masks, (v * organ_factor for v in _organ_values(scaled, masks, quantity,
                                                                            density_g_per_cm3))))
    rows = []
    for i, (label, (name, _)) in enumerate(masks.items()):
        params = {key: float(v[i]) for key, v in result.parameters.items() if key.startswith(("half_life", "A"))}
        rows.append(OrganTimeIntegration(
            name, int(label), times, [float(v) for v in values[i]], value_unit, model,
            float(result.integral[i]) * organ_factor, unit, float(result.r_squared[i]), float(result.aicc[i]),
            params, map_means.get(label, float("nan"))))
    return rows


def format_organ_time_table(rows: List[OrganTimeIntegration]) -> str:
    """Tab-separated table: organ, label, model, value per time point, integral, R², AICc, half-lives."""
    if not rows:
        return "organ\tlabel\tmodel"
    first = rows[0]
    unit_tag = first.value_unit.replace("/", "_per_")
    integral_name = "absorbed_dose_Gy" if first.unit == "Gy" else "TIA_MBq_h"
    extra = sorted({key for r in rows for key in r.parameters if key.startswith("half_life")})
    header = (["organ", "label", "model"] + [f"{unit_tag}_at_{t:g}h" for t in first.times_h]
              + [integral_name, f"voxel_map_mean_{first.unit.replace('·', '_')}", "r_squared", "aicc"] + extra)
    lines = ["\t".join(header)]
    for r in rows:
        cells = [r.name, str(r.label), r.model] + [f"{v:.5g}" for v in r.values]
        cells += [f"{r.integral:.5g}", f"{r.voxel_map_mean:.5g}", f"{r.r_squared:.4f}", f"{r.aicc:.4g}"]
        cells += [f"{r.parameters.get(key, float('nan')):.4g}" for key in extra]
        lines.append("\t".join(cells))
    return "\n".join(lines)


def write_organ_time_table(rows: List[OrganTimeIntegration], path: Union[str, Path]) -> Path:
    """Write :func:`format_organ_time_table` to a TSV file."""
    p = Path(path)
    return atomic_write_text(p, format_organ_time_table(rows) + "\n")
