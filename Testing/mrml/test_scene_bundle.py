"""Saving the scene of a dosimetry run to a .mrb bundle and reading it back keeps every output.

Written with ``vtkMRMLScene.WriteToMRB`` and read with ``vtkMRMLScene.ReadFromMRB`` into a fresh
headless scene that has the remote-IO / data-IO-manager logics (``load_scene_bundle`` adds them),
as the application does: a real .mrb round trip, not a .mrml folder.
"""
from __future__ import annotations

import zipfile

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="MRML tests need `slicer` (Slicer or pip slicer-core)")

from vtk.util import numpy_support  # noqa: E402

from DeepDoseLib.mrml import (  # noqa: E402
    ISODOSE_LEVEL_ARRAY,
    array_from_volume_node,
    create_headless_scene,
    find_isodose_model,
    folder_nodes,
    isodose_level_names,
    load_scene_bundle,
    release_headless_scene,
    run_folders,
    save_scene_bundle,
    table_column,
    volume_geometry,
)
from DeepDoseLib.mrml.hierarchy import subject_hierarchy  # noqa: E402


def _node(scene, name, class_name):
    collection = scene.GetNodesByClassByName(class_name, name)
    found = [collection.GetItemAsObject(i) for i in range(collection.GetNumberOfItems())]
    assert len(found) == 1, "%s %r: %d nodes" % (class_name, name, len(found))
    return found[0]


@pytest.fixture(scope="module")
def reloaded(dosimetry_run, tmp_path_factory):
    path = tmp_path_factory.mktemp("bundle") / "dosimetry.mrb"
    save_scene_bundle(dosimetry_run.scene, path)
    assert zipfile.is_zipfile(path)
    scene = create_headless_scene()
    load_scene_bundle(scene, path)
    yield scene
    release_headless_scene(scene)


def test_dose_volume_and_display_survive(dosimetry_run, reloaded):
    original = dosimetry_run.result.dose_node
    dose = _node(reloaded, original.GetName(), "vtkMRMLScalarVolumeNode")
    assert volume_geometry(dose)["dimensions_ijk"] == volume_geometry(original)["dimensions_ijk"]
    # NRRD stores geometry as decimal text: 1e-6 mm is the precision required of the file.
    np.testing.assert_allclose(dose.GetOrigin(), original.GetOrigin(), atol=1e-6)
    np.testing.assert_allclose(dose.GetSpacing(), original.GetSpacing(), atol=1e-6)
    np.testing.assert_array_equal(array_from_volume_node(dose), array_from_volume_node(original))
    for name in ("DicomRtImport.DoseVolume", "DeepDose.Unit", "DeepDose.Method", "DeepDose.Nuclide",
                 "DeepDose.ReferenceDoseRate"):
        assert dose.GetAttribute(name) == original.GetAttribute(name), name
    display = dose.GetDisplayNode()
    assert display.GetColorNode().GetName() == original.GetDisplayNode().GetColorNode().GetName()
    # The .mrml file writes window and level with 6 significant digits each (max = level + window / 2).
    assert display.GetWindowLevelMax() == pytest.approx(original.GetDisplayNode().GetWindowLevelMax(), rel=1e-5)
    assert display.GetApplyThreshold()
    legend = reloaded.GetFirstNodeByClass("vtkMRMLColorLegendDisplayNode")
    assert legend is not None and legend.GetDisplayableNode() is dose
    assert legend.GetTitleText() == dosimetry_run.result.legend_display_node.GetTitleText()


def test_isodose_model_survives(dosimetry_run, reloaded):
    original = dosimetry_run.result.isodose_model_node
    model = _node(reloaded, original.GetName(), "vtkMRMLModelNode")
    dose = _node(reloaded, dosimetry_run.result.dose_node.GetName(), "vtkMRMLScalarVolumeNode")
    assert find_isodose_model(reloaded, dose) is model
    assert model.GetPolyData().GetNumberOfPoints() == original.GetPolyData().GetNumberOfPoints()
    levels = numpy_support.vtk_to_numpy(model.GetPolyData().GetPointData().GetArray(ISODOSE_LEVEL_ARRAY))
    assert sorted(np.unique(levels).tolist()) == [0, 1, 2, 3, 4]
    assert isodose_level_names(model) == isodose_level_names(original)
    display = model.GetDisplayNode()
    assert display.GetActiveScalarName() == ISODOSE_LEVEL_ARRAY
    assert display.GetScalarRangeFlag() == display.UseManualScalarRange
    assert tuple(display.GetScalarRange()) == (0.0, 4.0)
    assert display.GetVisibility2D()
    # Model files are stored in LPS and converted back: positions to float32 precision.
    np.testing.assert_allclose(
        numpy_support.vtk_to_numpy(model.GetPolyData().GetPoints().GetData()),
        numpy_support.vtk_to_numpy(original.GetPolyData().GetPoints().GetData()), atol=1e-3)


def test_dvh_tables_chart_and_statistics_survive(dosimetry_run, reloaded):
    result = dosimetry_run.result
    for table in result.dvh_table_nodes:
        loaded = _node(reloaded, table.GetName(), "vtkMRMLTableNode")
        for column in ("dose_mGy_per_h", "volume_percent", "volume_mL"):
            # Table files (TSV) keep 6 significant digits: relative error <= 5e-6.
            np.testing.assert_allclose(table_column(loaded, column), table_column(table, column), rtol=1e-5)
        assert loaded.GetAttribute("DeepDose.SegmentName") == table.GetAttribute("DeepDose.SegmentName")
    chart = _node(reloaded, result.chart_node.GetName(), "vtkMRMLPlotChartNode")
    assert chart.GetNumberOfPlotSeriesNodes() == len(result.plot_series_nodes)
    for index, series in enumerate(result.plot_series_nodes):
        loaded = chart.GetNthPlotSeriesNode(index)
        assert loaded.GetName() == series.GetName()
        assert loaded.GetTableNode().GetName() == series.GetTableNode().GetName()
        assert loaded.GetYColumnName() == "volume_percent"
    stats = _node(reloaded, result.stats_table_node.GetName(), "vtkMRMLTableNode")
    assert table_column(stats, "organ") == table_column(result.stats_table_node, "organ")
    np.testing.assert_allclose(table_column(stats, "mean_mass_weighted_mGy_per_h"),
                               table_column(result.stats_table_node, "mean_mass_weighted_mGy_per_h"), rtol=1e-5)


def test_run_folder_and_inputs_survive(dosimetry_run, reloaded):
    folders = run_folders(reloaded)
    assert len(folders) == 1
    sh = subject_hierarchy(reloaded)
    original_sh = subject_hierarchy(dosimetry_run.scene)
    assert sh.GetItemName(folders[0]) == original_sh.GetItemName(dosimetry_run.result.folder_item)
    names = sorted(node.GetName() for node in folder_nodes(reloaded, folders[0]))
    assert names == sorted(node.GetName() for node in folder_nodes(dosimetry_run.scene, dosimetry_run.result.folder_item))
    ct = _node(reloaded, "CT", "vtkMRMLScalarVolumeNode")
    np.testing.assert_array_equal(array_from_volume_node(ct), array_from_volume_node(dosimetry_run.ct))
    segmentation = _node(reloaded, "Organs", "vtkMRMLSegmentationNode")
    assert segmentation.GetSegmentation().GetNumberOfSegments() == len(dosimetry_run.labels)
