"""run_dosimetry on the demo case: dose volume, wash, legend, isodose model, DVH, statistics, folder.

Checked on the real MRML classes of slicer-core (or inside Slicer). Numbers are compared with
independent numpy computations on the same grid (the segments come from the demo label map on the
PET grid, so partial-volume fractions are exactly 0 or 1 and sums are exact).
"""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

slicer = pytest.importorskip("slicer", reason="MRML tests need `slicer` (Slicer or pip slicer-core)")

import vtk  # noqa: E402
from vtk.util import numpy_support  # noqa: E402

import DeepDoseLib as dd  # noqa: E402
from DeepDoseLib.errors import DeepDoseInputError  # noqa: E402
from DeepDoseLib.mrml import (  # noqa: E402
    DOSE_VOLUME_ATTRIBUTE,
    ISODOSE_LEVEL_ARRAY,
    array_from_volume_node,
    create_isodose_model,
    dose_wash_rgb,
    find_isodose_model,
    folder_nodes,
    image_from_volume_node,
    isodose_level_names,
    parse_levels_percent,
    run_dosimetry,
    run_folders,
    slice_composite_nodes,
    table_column,
    update_isodose_levels,
    volume_node_from_image,
)
from DeepDoseLib.mrml.display import DOSE_WASH_ATTRIBUTE  # noqa: E402
from DeepDoseLib.mrml.hierarchy import subject_hierarchy  # noqa: E402
from DeepDoseLib.tissue import hu_to_density  # noqa: E402

VOXEL_mL = 0.4 ** 3  # demo case: 4 mm voxels


def _point_scalars(model_node) -> np.ndarray:
    return numpy_support.vtk_to_numpy(model_node.GetPolyData().GetPointData().GetArray(ISODOSE_LEVEL_ARRAY))


def _trilinear(array_zyx: np.ndarray, points_zyx: np.ndarray) -> np.ndarray:
    """Trilinear interpolation of ``array_zyx`` at continuous (z, y, x) indices (inside the grid)."""
    base = np.clip(np.floor(points_zyx).astype(int), 0, np.array(array_zyx.shape) - 2)
    t = points_zyx - base
    value = np.zeros(len(points_zyx))
    for dz in (0, 1):
        for dy in (0, 1):
            for dx in (0, 1):
                weight = (np.where(dz, t[:, 0], 1 - t[:, 0]) * np.where(dy, t[:, 1], 1 - t[:, 1])
                          * np.where(dx, t[:, 2], 1 - t[:, 2]))
                value += weight * array_zyx[base[:, 0] + dz, base[:, 1] + dy, base[:, 2] + dx]
    return value


def _labels_zyx(demo_case) -> np.ndarray:
    return sitk.GetArrayFromImage(demo_case.labels)


def test_dose_volume_geometry_values_and_display(dosimetry_run, demo_case):
    result, scene = dosimetry_run.result, dosimetry_run.scene
    dose_node = result.dose_node
    dose = image_from_volume_node(dose_node)
    pet = demo_case.pet
    # Geometry is copied, never resampled: 1e-9 mm is far above double round-off.
    assert dose.GetSize() == pet.GetSize()
    np.testing.assert_allclose(dose.GetOrigin(), pet.GetOrigin(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(dose.GetSpacing(), pet.GetSpacing(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(dose.GetDirection(), pet.GetDirection(), rtol=0, atol=1e-9)
    # Same numbers as the core (deterministic on CPU; 1e-6 leaves room for float32 summation order).
    expected = sitk.GetArrayFromImage(dd.compute_dose_rate(demo_case.ct, pet, demo_case.nuclide, "led"))
    np.testing.assert_allclose(sitk.GetArrayFromImage(dose), expected, rtol=1e-6, atol=0)

    assert dose_node.GetAttribute(DOSE_VOLUME_ATTRIBUTE) == "1"
    assert dose_node.GetAttribute("DeepDose.Unit") == "mGy/h"
    assert dose_node.GetAttribute("DeepDose.Method") == "led"
    assert dose_node.GetAttribute("DeepDose.Nuclide") == demo_case.nuclide
    assert dose_node.GetNodeReference("DeepDosePET") is dosimetry_run.pet

    # 100 % = maximum over tissue voxels (density >= 0.05 g/cm³ from the CT on the same grid).
    density = hu_to_density(sitk.GetArrayFromImage(demo_case.ct).astype(np.float32))
    tissue_max = float(expected[density >= 0.05].max())
    assert result.reference_dose_rate == pytest.approx(tissue_max, rel=1e-6)
    assert expected.max() > result.reference_dose_rate  # the demo has activity blurred into air

    display = dose_node.GetDisplayNode()
    assert display.GetColorNode().GetAttribute(DOSE_WASH_ATTRIBUTE) == "1"
    assert display.GetWindowLevelMax() == pytest.approx(tissue_max, rel=1e-6)
    assert display.GetWindowLevelMin() == pytest.approx(0.0, abs=1e-6 * tissue_max)
    assert display.GetApplyThreshold()
    assert display.GetLowerThreshold() == pytest.approx(0.05 * tissue_max, rel=1e-6)
    assert display.GetUpperThreshold() >= float(expected.max()) * (1 - 1e-6)  # hot air voxels stay visible
    for composite in slice_composite_nodes(scene):
        assert composite.GetForegroundVolumeID() == dose_node.GetID()
        assert composite.GetBackgroundVolumeID() == dosimetry_run.ct.GetID()

    legend = result.legend_display_node
    assert legend is not None and legend.IsA("vtkMRMLColorLegendDisplayNode")
    assert legend.GetDisplayableNode() is dose_node
    assert legend.GetVisibility() and legend.GetVisibility2D()
    assert "mGy/h" in legend.GetTitleText()


def test_isodose_model_levels_colours_and_geometry(dosimetry_run):
    result, scene = dosimetry_run.result, dosimetry_run.scene
    model = result.isodose_model_node
    assert find_isodose_model(scene, result.dose_node) is model
    percents = [10.0, 25.0, 50.0, 75.0, 90.0]
    scalars = _point_scalars(model)
    assert sorted(np.unique(scalars).tolist()) == [0, 1, 2, 3, 4]  # N levels, one scalar value each

    names = isodose_level_names(model)
    assert len(names) == 5 and all(name.startswith("%g %%" % p) for name, p in zip(names, percents))
    color_node = model.GetDisplayNode().GetColorNode()
    colors = []
    for index, percent in enumerate(percents):
        rgba = [0.0] * 4
        color_node.GetColor(index, rgba)
        # Shared with the dose wash: the colour the wash shows at this fraction of its window.
        np.testing.assert_allclose(rgba[:3], dose_wash_rgb(scene, percent / 100.0), atol=1e-6)
        colors.append(tuple(np.round(rgba[:3], 3)))
    assert len(set(colors)) == 5

    display = model.GetDisplayNode()
    assert display.GetScalarVisibility() and display.GetActiveScalarName() == ISODOSE_LEVEL_ARRAY
    assert display.GetScalarRangeFlag() == display.UseManualScalarRange
    assert tuple(display.GetScalarRange()) == (0.0, 4.0)
    assert display.GetVisibility2D()  # slice intersections = isodose lines

    # Flying edges puts each vertex on a voxel edge where the linear interpolation of the dose
    # equals the level; trilinear interpolation restricted to an edge is that same function, so the
    # dose sampled back at the vertices equals the level. Vertices are float32 (IJK, then RAS): a
    # position error below 1e-4 voxel, times the dose step across the vertex's cell, plus 1e-5
    # relative for the float32 dose values, bounds the difference.
    points_ras = numpy_support.vtk_to_numpy(model.GetPolyData().GetPoints().GetData()).astype(np.float64)
    ras_to_ijk = vtk.vtkMatrix4x4()
    result.dose_node.GetRASToIJKMatrix(ras_to_ijk)
    matrix = np.array([[ras_to_ijk.GetElement(r, c) for c in range(4)] for r in range(4)])
    ijk = points_ras @ matrix[:3, :3].T + matrix[:3, 3]
    dose_zyx = array_from_volume_node(result.dose_node).astype(np.float64)
    sampled = _trilinear(dose_zyx, ijk[:, ::-1])
    levels = np.array(percents)[scalars] / 100.0 * result.reference_dose_rate
    corner = np.clip(np.floor(ijk[:, ::-1]).astype(int), 0, np.array(dose_zyx.shape) - 2)
    cell = np.stack([dose_zyx[corner[:, 0] + dz, corner[:, 1] + dy, corner[:, 2] + dx]
                     for dz in (0, 1) for dy in (0, 1) for dx in (0, 1)])
    tolerance = 1e-5 * levels + 1e-4 * (cell.max(axis=0) - cell.min(axis=0))
    assert np.all(np.abs(sampled - levels) <= tolerance)
    assert np.median(np.abs(sampled - levels) / levels) < 1e-5  # typical float32 round-off


def test_isodose_levels_are_editable(dosimetry_run):
    scene, dose_node = dosimetry_run.scene, dosimetry_run.result.dose_node
    reference = dosimetry_run.result.reference_dose_rate
    model = create_isodose_model(scene, dose_node, reference, (50.0,), name="edited isodose")
    color_node = model.GetDisplayNode().GetColorNode()
    try:
        assert np.unique(_point_scalars(model)).tolist() == [0]
        model_id, color_id = model.GetID(), color_node.GetID()
        update_isodose_levels(scene, model, (60.0, 20.0, 40.0))
        assert (model.GetID(), model.GetDisplayNode().GetColorNodeID()) == (model_id, color_id)
        assert np.unique(_point_scalars(model)).tolist() == [0, 1, 2]
        assert [name.split(" %")[0] for name in isodose_level_names(model)] == ["20", "40", "60"]
        assert tuple(model.GetDisplayNode().GetScalarRange()) == (0.0, 2.0)
        assert model.GetAttribute("DeepDose.IsodoseLevelsPercent") == "20,40,60"
        update_isodose_levels(scene, model)  # levels and reference read back from the model
        assert np.unique(_point_scalars(model)).tolist() == [0, 1, 2]
    finally:
        scene.RemoveNode(model)
        scene.RemoveNode(color_node)

    assert parse_levels_percent("90, 10;50 25%") == [10.0, 25.0, 50.0, 90.0]
    for bad in ("", "ten", "-5, 10"):
        with pytest.raises(DeepDoseInputError):
            parse_levels_percent(bad)


def test_dvh_table_per_segment_and_chart(dosimetry_run, demo_case):
    result = dosimetry_run.result
    segmentation = dosimetry_run.segmentation.GetSegmentation()
    names = [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]
    assert sorted(names) == sorted(dosimetry_run.labels.values())
    assert [t.GetAttribute("DeepDose.SegmentName") for t in result.dvh_table_nodes] == names

    chart = result.chart_node
    assert chart.GetNumberOfPlotSeriesNodes() == len(names)
    assert chart.GetXAxisTitle() == "Dose rate (mGy/h)" and chart.GetYAxisTitle() == "Volume (%)"
    dose = array_from_volume_node(result.dose_node).astype(np.float64)
    labels = _labels_zyx(demo_case)
    value_of = {name: value for value, name in dosimetry_run.labels.items()}
    for index, (table, series) in enumerate(zip(result.dvh_table_nodes, result.plot_series_nodes)):
        assert chart.GetNthPlotSeriesNode(index) is series
        assert series.GetTableNode() is table
        assert (series.GetXColumnName(), series.GetYColumnName()) == ("dose_mGy_per_h", "volume_percent")
        segment = segmentation.GetNthSegment(index)
        np.testing.assert_allclose(series.GetColor(), segment.GetColor(), atol=1e-6)

        edges = np.array(table_column(table, "dose_mGy_per_h"))
        percent = np.array(table_column(table, "volume_percent"))
        assert table.GetColumnUnitLabel("dose_mGy_per_h") == "mGy/h"
        assert percent[0] == pytest.approx(100.0) and percent[-1] == 0.0
        assert np.all(np.diff(percent) <= 1e-9)
        # Cumulative DVH at a bin edge = % of the structure's voxels with dose >= that edge, exactly.
        in_structure = dose[labels == value_of[segment.GetName()]]
        for i in np.linspace(0, len(edges) - 1, 7).astype(int):
            assert percent[i] == pytest.approx(100.0 * np.mean(in_structure >= edges[i]), abs=1e-9)
        assert float(table.GetAttribute("DeepDose.DVH.Mean")) == pytest.approx(in_structure.mean(), rel=1e-9)
        assert float(table.GetAttribute("DeepDose.DVH.VolumeML")) == pytest.approx(in_structure.size * VOXEL_mL)


def test_organ_statistics_table(dosimetry_run, demo_case):
    result = dosimetry_run.result
    table = result.stats_table_node
    organs = table_column(table, "organ")
    assert organs == [t.GetAttribute("DeepDose.SegmentName") for t in result.dvh_table_nodes]
    assert table.GetColumnUnitLabel("mean_mass_weighted_mGy_per_h") == "mGy/h"
    assert table.GetColumnUnitLabel("volume_mL") == "mL"
    dose = array_from_volume_node(result.dose_node).astype(np.float64)
    density = hu_to_density(sitk.GetArrayFromImage(demo_case.ct).astype(np.float32)).astype(np.float64)
    labels = _labels_zyx(demo_case)
    value_of = {name: value for value, name in dosimetry_run.labels.items()}
    columns = {name: table_column(table, name) for name in (
        "volume_mL", "mass_g", "mean_voxel_weighted_mGy_per_h", "mean_mass_weighted_mGy_per_h", "max_mGy_per_h")}
    for row, organ in enumerate(organs):
        mask = labels == value_of[organ]
        # Tables store 6 significant digits (DeepDoseLib.analysis.organ_table_rows): rel 1e-5.
        assert columns["volume_mL"][row] == pytest.approx(mask.sum() * VOXEL_mL, rel=1e-5)
        assert columns["mass_g"][row] == pytest.approx(density[mask].sum() * VOXEL_mL, rel=1e-5)
        assert columns["mean_voxel_weighted_mGy_per_h"][row] == pytest.approx(dose[mask].mean(), rel=1e-5)
        mass_weighted = np.dot(dose[mask], density[mask]) / density[mask].sum()
        assert columns["mean_mass_weighted_mGy_per_h"][row] == pytest.approx(mass_weighted, rel=1e-5)
        assert columns["max_mGy_per_h"][row] == pytest.approx(dose[mask].max(), rel=1e-5)


def test_one_folder_per_run_and_inputs_untouched(dosimetry_run):
    scene, result = dosimetry_run.scene, dosimetry_run.result
    folders = run_folders(scene)
    assert folders == [result.folder_item]
    sh = subject_hierarchy(scene)
    assert sh.GetItemName(result.folder_item) == "DeepDose run 1: LED Ga68"
    grouped = folder_nodes(scene, result.folder_item)
    expected = result.nodes()
    assert len(expected) == 3 + 2 * 5 + 2  # dose, isodose + colours, 5 tables + 5 series, chart, statistics
    assert all(node in grouped for node in expected)
    for input_node in (dosimetry_run.ct, dosimetry_run.pet, dosimetry_run.segmentation):
        assert input_node not in grouped
    assert dosimetry_run.after == dosimetry_run.before


def test_second_run_second_folder_and_monte_carlo_uncertainty(scene, demo_case):
    from DeepDoseLib.dose import MethodOptions

    # A 40 mm cube around the hottest PET voxel keeps the Monte Carlo run short.
    pet = sitk.GetArrayFromImage(demo_case.pet)
    hottest_xyz = np.unravel_index(int(np.argmax(pet)), pet.shape)[::-1]
    start = [int(min(max(0, i - 5), n - 10)) for i, n in zip(hottest_xyz, demo_case.pet.GetSize())]
    crop = [sitk.RegionOfInterest(image, [10, 10, 10], start) for image in (demo_case.ct, demo_case.pet)]
    ct_node = volume_node_from_image(scene, crop[0], "CT")
    pet_node = volume_node_from_image(scene, crop[1], "PET")
    first = run_dosimetry(scene, ct_node, pet_node, demo_case.nuclide, "led")
    second = run_dosimetry(scene, ct_node, pet_node, demo_case.nuclide, "mc",
                           options=MethodOptions(n_decays=400, seed=1), device="cpu")
    assert run_folders(scene) == [first.folder_item, second.folder_item]
    assert subject_hierarchy(scene).GetItemName(second.folder_item) == "DeepDose run 2: MC Ga68"
    assert first.dose_node is not second.dose_node and first.uncertainty_node is None
    assert first.dvh_table_nodes == [] and first.chart_node is None and first.stats_table_node is None
    uncertainty = second.uncertainty_node
    assert uncertainty is not None and uncertainty in folder_nodes(scene, second.folder_item)
    assert image_from_volume_node(uncertainty).GetSize() == crop[1].GetSize()
    values = array_from_volume_node(uncertainty)
    assert np.all(np.isfinite(values)) and values.min() >= 0.0
    assert second.dose_node.GetNodeReference("DeepDoseUncertainty") is uncertainty
    # Both runs share the scene's one dose-wash colour table.
    assert first.dose_node.GetDisplayNode().GetColorNodeID() == second.dose_node.GetDisplayNode().GetColorNodeID()


def test_mird_uses_the_segments_as_organs(scene, demo_case):
    """method="mird": the segments become the organ label map on the PET grid (one dose rate per organ)."""
    if "mird" not in dd.METHODS:
        pytest.skip("this DeepDose has no MIRD method")
    from DeepDoseLib.mrml import segmentation_from_labels

    names = {v: n for v, n in demo_case.label_names.items() if n in ("liver", "spleen", "kidney_left_cortex")}
    ct_node = volume_node_from_image(scene, demo_case.ct, "CT")
    pet_node = volume_node_from_image(scene, demo_case.pet, "PET")
    segmentation = segmentation_from_labels(scene, demo_case.labels, names, "Organs")
    result = run_dosimetry(scene, ct_node, pet_node, demo_case.nuclide, "mird", segmentation_node=segmentation)
    dose = array_from_volume_node(result.dose_node)
    labels = _labels_zyx(demo_case)
    inside = np.isin(labels, list(names))
    assert np.all(dose[~inside] == 0.0)
    organ_rates = []
    for value in names:
        organ = dose[labels == value]
        assert organ.min() == pytest.approx(organ.max(), rel=1e-6)  # uniform within the organ
        organ_rates.append(float(organ.mean()))
    assert min(organ_rates) > 0 and len(set(np.round(organ_rates, 6))) == len(names)
    assert len(result.dvh_table_nodes) == len(names)
    with pytest.raises(DeepDoseInputError, match="segmentation"):
        run_dosimetry(scene, ct_node, pet_node, demo_case.nuclide, "mird")
