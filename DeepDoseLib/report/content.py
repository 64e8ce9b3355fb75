"""What the dosimetry report says, computed before anything is formatted: :class:`ReportData`.

:func:`report_data` finds the maximum (in tissue when a density map is given), the slice centre (the
maximum or an organ's centroid), the isodose levels, the organ statistics and DVHs, the nuclide data and
the method description; :mod:`.html` only formats them (figures and HTML). Arrays are (z, y, x); positions
are physical LPS points [mm]; dose values are in the map's ``unit`` (mGy/h for a dose rate, Gy for a dose).
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from .._version import __version__
from ..errors import DeepDoseInputError
from ..nuclides import Nuclide, get_nuclide
from ..tissue import TISSUE_MIN_DENSITY_g_per_cm3, tissue_maximum_index
from . import figures

#: Isodose levels shown on the slices, % of the map's maximum.
REPORT_ISODOSE_PERCENTS = (10.0, 25.0, 50.0, 75.0, 90.0)



def method_text(method: str, options=None, include_photons: Optional[bool] = None) -> Tuple[str, List[str]]:
    """(title, assumptions) of a registered dose method, from its declaration in the registry.

    ``options`` (the method's options) or, for scripts of earlier versions, ``include_photons`` add what
    changes the title (e.g. LED with or without photons); an unknown method is named as given.
    """
    import dataclasses

    from ..dose_methods import get_method

    try:
        spec = get_method(method)
    except DeepDoseInputError:
        return method.upper() or "not stated", []
    if options is None and include_photons is not None:
        known = {f.name for f in dataclasses.fields(spec.Options)}
        options = spec.Options(**({"include_photons": include_photons} if "include_photons" in known else {}))
    return spec.describe(options)


COMMON_ASSUMPTIONS = [
    "The dose-rate map refers to the reference time of the activity image (for decay-corrected PET: the scan "
    "start). It lies exactly on the PET grid.",
    "Organ statistics weight each dose voxel by the fraction of it inside the organ (label maps on another grid "
    "are supersampled 3×3×3 per voxel); means are mass-weighted when the CT gives a density (the MIRD mean "
    "absorbed dose), voxel-weighted otherwise. Dx is the dose received by the hottest x % of the volume.",
]


@dataclass
class ReportInput:
    """An input file as listed in the report: its role (``"CT"``, ``"PET"``...), path, unit and notes."""

    role: str
    path: str
    unit: str = ""
    notes: List[str] = field(default_factory=list)


@dataclass(frozen=True)
class SliceView:
    """One slice shown in the report.

    Attributes
    ----------
    plane : str
        ``"axial"`` or ``"coronal"``.
    index : int
        Slice index in the LPS-oriented arrays (along z for axial, along y for coronal).
    position : str
        The slice's coordinate, e.g. ``"z = 12.0 mm"`` (LPS).
    marker_mm : tuple of float
        In-plane position of the slice centre [mm] (x, y for axial; x, z for coronal).
    """

    plane: str
    index: int
    position: str
    marker_mm: Tuple[float, float]


@dataclass
class ReportData:
    """Everything the report shows, computed (:func:`report_data`), not yet formatted.

    Attributes
    ----------
    title, quantity, unit : str
        Report title; the mapped quantity (``"dose rate"``, ``"absorbed dose"``) and its unit.
    generated : datetime.datetime
        When the report was made (local time, with its zone).
    version : str
        DeepDose version.
    nuclide_name : str
        The radionuclide as given ("" when not given).
    nuclide : Nuclide or None
        Its decay data, when ``nuclide_name`` is a known nuclide.
    method_title : str
        The method's name (with the LED photon choice).
    method_lines : list of str
        What the method computed and assumed, the caller's notes, and the assumptions common to all methods.
    grid_size : tuple of int
        Dose grid (x, y, z) [voxels].
    grid_spacing_mm : tuple of float
        Its voxel size (x, y, z) [mm].
    maximum, maximum_all_voxels : float
        The maximum in tissue (voxels ≥ 0.05 g/cm³; of the whole map without a density map) and over all voxels.
    maximum_where : str
        Where ``maximum`` was searched, in words.
    maximum_mm : tuple of float
        Its position (LPS) [mm].
    centre_what : str
        What the slices go through (``"maximum"``, ``"centre of label N"``).
    slices : list of SliceView
        Axial and coronal slices through that centre.
    dose_lps, ct_lps : numpy.ndarray
        The dose map and the CT [HU] resampled onto its grid (None without a CT), LPS-oriented (z, y, x).
    origin_mm, spacing_mm : tuple of float
        Of the LPS-oriented arrays, (x, y, z) [mm].
    isodose_percents : tuple of float
        Isodose levels, % of ``maximum``.
    isodose_levels : list
        The same as :class:`~DeepDoseLib.analysis.isodose.IsodoseLevel` (values in ``unit``).
    organ_rows : list or None
        Organ statistics (:func:`~DeepDoseLib.analysis.organs.organ_statistics` rows); None without a label map.
    dvh_curves : list of (str, numpy.ndarray, numpy.ndarray)
        Per structure in the dose grid: name, dose values [unit] and the % of its volume receiving at least each.
    inputs : list of ReportInput
        The input files.
    notes : list of str
        Notes made while reading and computing (``WARNING...`` ones are highlighted).
    fallback_note : str or None
        The note saying where and how much Deep-dose fell back to its density-scaled VSV baseline (one of
        ``notes``, shown again with the organ table); None for other methods or without fallback.
    """

    title: str
    quantity: str
    unit: str
    generated: datetime.datetime
    version: str
    nuclide_name: str
    nuclide: Optional[Nuclide]
    method_title: str
    method_lines: List[str]
    grid_size: Tuple[int, int, int]
    grid_spacing_mm: Tuple[float, float, float]
    maximum: float
    maximum_all_voxels: float
    maximum_where: str
    maximum_mm: Tuple[float, float, float]
    centre_what: str
    slices: List[SliceView]
    dose_lps: np.ndarray
    ct_lps: Optional[np.ndarray]
    origin_mm: Tuple[float, float, float]
    spacing_mm: Tuple[float, float, float]
    isodose_percents: Tuple[float, ...]
    isodose_levels: list
    organ_rows: Optional[list]
    dvh_curves: List[Tuple[str, np.ndarray, np.ndarray]]
    inputs: List[ReportInput]
    notes: List[str]
    fallback_note: Optional[str] = None


def tissue_maximum(array: np.ndarray, density_g_per_cm3: Optional[np.ndarray]):
    """(value, (z, y, x) index) of the maximum over tissue voxels (see :func:`DeepDoseLib.tissue.tissue_maximum_index`);
    an empty or all-NaN map is refused."""
    value, index = tissue_maximum_index(array, density_g_per_cm3)
    if index is None:
        raise DeepDoseInputError("The map has no finite value to report.")
    return value, index


def slice_centre(dose: sitk.Image, labels: Optional[sitk.Image], focus_label: Optional[int], max_index):
    """(physical LPS point [mm], description) of the slice centre: the organ's centroid or the maximum.

    Raises
    ------
    DeepDoseInputError
        If ``focus_label`` does not overlap the dose grid.
    """
    if focus_label is not None and labels is not None:
        from ..analysis.masks import fractional_masks

        mask = fractional_masks(labels, dose, [int(focus_label)])[int(focus_label)]
        if mask.is_empty:
            raise DeepDoseInputError(f"Label {focus_label} does not overlap the dose grid; cannot centre the slices.")
        f = mask.fraction.astype(np.float64)
        zyx = [s.start + float(np.dot(np.arange(f.shape[a]), f.sum(axis=tuple(b for b in range(3) if b != a))))
               / f.sum() for a, s in enumerate(mask.box)]
        return dose.TransformContinuousIndexToPhysicalPoint(zyx[::-1]), f"centre of label {focus_label}"
    return dose.TransformIndexToPhysicalPoint([int(i) for i in max_index[::-1]]), "maximum"


def _organs_and_dvhs(dose: sitk.Image, labels: sitk.Image, label_names, density_g_per_cm3, organ_rows, unit: str):
    """Organ rows (given or computed) and the DVH curves of the structures that lie in the dose grid."""
    from ..analysis.dvh import dvhs_for_labels
    from ..analysis.organs import organ_statistics

    names = dict(label_names or {})
    rows = organ_rows if organ_rows is not None else organ_statistics(dose, labels, names, density_g_per_cm3, unit=unit)
    present = {r.label: r.name for r in rows if r.volume_mL > 0}
    dvhs = dvhs_for_labels(dose, labels, present, unit=unit)
    curves = [(name, np.append(d.bin_edges[:-1], d.bin_edges[-1]), np.append(d.cumulative_volume_percent, 0.0))
              for name, d in dvhs.items()]
    return rows, curves


def _nuclide(name: str) -> Optional[Nuclide]:
    """The nuclide's decay data, or None when not given or unknown (then shown by name)."""
    if not name:
        return None
    try:
        return get_nuclide(name)
    except DeepDoseInputError:
        return None


def report_data(dose: sitk.Image, *, ct_HU: Optional[sitk.Image] = None, nuclide: str = "", method: str = "",
                inputs: Sequence[ReportInput] = (), notes: Sequence[str] = (), labels: Optional[sitk.Image] = None,
                label_names: Optional[Dict[int, str]] = None, density_g_per_cm3=None, organ_rows=None,
                focus_label: Optional[int] = None, unit: str = "mGy/h", quantity: str = "dose rate",
                isodose_percents: Sequence[float] = REPORT_ISODOSE_PERCENTS, include_photons: Optional[bool] = None,
                extra_method_notes: Sequence[str] = (), title: str = "DeepDose dosimetry report") -> ReportData:
    """Compute what the report shows.

    Parameters
    ----------
    dose : SimpleITK.Image
        Dose-rate map [mGy/h] (or dose [Gy] with ``unit="Gy"``, ``quantity="absorbed dose"``).
    ct_HU : SimpleITK.Image, optional
        CT [HU] on any grid, resampled onto the dose grid for display (air outside).
    nuclide, method : str
        Radionuclide (e.g. ``"Lu177"``) and method key (``"led"``, ``"vsv"``, ``"mc"``, ``"mird"``, ``"deepdose"``).
    inputs : sequence of ReportInput
        Input files to list.
    notes : sequence of str
        Processing notes.
    labels : SimpleITK.Image, optional
        Label map on any grid; with ``label_names`` (label → name) it gives the organ table and DVHs.
    density_g_per_cm3 : numpy.ndarray, optional
        (z, y, x) density on the dose grid [g/cm³]: mass-weighted means, and the maximum taken in tissue.
    organ_rows : list, optional
        Precomputed :func:`~DeepDoseLib.analysis.organs.organ_statistics` rows.
    focus_label : int, optional
        Centre the slices on this label instead of the maximum.
    unit, quantity : str
        Unit and name of the mapped quantity.
    isodose_percents : sequence of float
        Isodose levels, % of the maximum.
    include_photons : bool, optional
        LED only: whether photon energy was deposited locally too.
    extra_method_notes : sequence of str
        Lines added to the method description.
    title : str
        Report title.

    Raises
    ------
    DeepDoseInputError
        If the map is empty (maximum ≤ 0) or ``focus_label`` does not overlap the dose grid.
    """
    from ..analysis.isodose import isodose_levels
    from ..deepdose_rule import fallback_note
    from ..geometry import resample_to_grid

    array = sitk.GetArrayViewFromImage(dose)
    dmax, max_index = tissue_maximum(array, density_g_per_cm3)
    if not (np.isfinite(dmax) and dmax > 0):
        raise DeepDoseInputError("The dose map is empty (maximum ≤ 0): nothing to report.")
    ct_on_grid = None
    if ct_HU is not None:
        ct_on_grid = resample_to_grid(sitk.Cast(ct_HU, sitk.sitkFloat32), dose, default_value=-1000.0)
    centre_mm, centre_what = slice_centre(dose, labels, focus_label, max_index)
    oriented, origin, spacing = figures.to_lps_arrays(*([dose] if ct_on_grid is None else [dose, ct_on_grid]))
    _, j, k = sitk.DICOMOrient(dose, "LPS").TransformPhysicalPointToIndex(centre_mm)
    slices = [SliceView("axial", k, f"z = {centre_mm[2]:.1f} mm", (centre_mm[0], centre_mm[1])),
              SliceView("coronal", j, f"y = {centre_mm[1]:.1f} mm", (centre_mm[0], centre_mm[2]))]
    rows, curves = (None, [])
    if labels is not None:
        rows, curves = _organs_and_dvhs(dose, labels, label_names, density_g_per_cm3, organ_rows, unit)
    method_title, method_lines = method_text(method, include_photons=include_photons)
    return ReportData(
        title=title, quantity=quantity, unit=unit, generated=datetime.datetime.now().astimezone(), version=__version__,
        nuclide_name=nuclide, nuclide=_nuclide(nuclide), method_title=method_title,
        method_lines=list(method_lines) + list(extra_method_notes) + COMMON_ASSUMPTIONS,
        grid_size=tuple(dose.GetSize()), grid_spacing_mm=tuple(dose.GetSpacing()), maximum=dmax,
        maximum_all_voxels=float(array.max()),
        maximum_where=f"in tissue (voxels ≥ {TISSUE_MIN_DENSITY_g_per_cm3:g} g/cm³)" if density_g_per_cm3 is not None else "of the map",
        maximum_mm=dose.TransformIndexToPhysicalPoint([int(v) for v in max_index[::-1]]), centre_what=centre_what,
        slices=slices, dose_lps=oriented[0], ct_lps=oriented[1] if ct_on_grid is not None else None,
        origin_mm=origin, spacing_mm=spacing, isodose_percents=tuple(isodose_percents),
        isodose_levels=isodose_levels(dmax, percents=isodose_percents, unit=unit), organ_rows=rows,
        dvh_curves=curves, inputs=list(inputs), notes=list(notes), fallback_note=fallback_note(list(notes)))
