"""Therapy dosimetry in Slicer's logic on real MRML (slicer-core or the application): a Lu-177 DOTATATE-like study
of 4 SPECT/CT time points → absorbed-dose volume in Gy marked for SlicerRT, structure table, one time-activity chart
per structure, all in one folder; the inputs untouched."""
from __future__ import annotations

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="MRML tests need `slicer` (Slicer or pip slicer-core)")

from DeepDoseLib.errors import DeepDoseInputError  # noqa: E402
from DeepDoseLib.mrml import (array_from_volume_node, folder_nodes, segmentation_from_labels, table_column,  # noqa: E402
                              volume_node_from_image)
from DeepDoseLib.mrml.display import DOSE_VOLUME_ATTRIBUTE  # noqa: E402
from DeepDoseLib.mrml.therapy import run_therapy_in_scene  # noqa: E402
from DeepDoseLib.therapy.study import TherapyOptions  # noqa: E402
from DeepDoseLib.therapy.synthetic import dotatate_study  # noqa: E402


def test_therapy_study_in_the_scene(scene, tmp_path):
    study = dotatate_study()
    triples = []
    for k, tp in enumerate(study.time_points):
        ct = volume_node_from_image(scene, tp.ct_HU, f"CT {k + 1}")
        spect = volume_node_from_image(scene, tp.activity, f"SPECT {k + 1}")
        triples.append((ct, spect, tp.time_h))
    segmentation = segmentation_from_labels(scene, study.labels, study.label_names, name="organs")
    before = [array_from_volume_node(n).copy() for triple in triples for n in triple[:2]]

    nodes = run_therapy_in_scene(scene, triples, TherapyOptions(nuclide="Lu177", method="led"),
                                 segmentation_node=segmentation, output_directory=tmp_path)
    assert 'alt="time-activity curves"' in (tmp_path / "report.html").read_text()
    assert (tmp_path / "structures.tsv").is_file()

    # absorbed dose in Gy, marked as a SlicerRT dose volume; BED not marked as dose
    dose = nodes.dose_node
    assert dose.IsA("vtkMRMLScalarVolumeNode") and dose.GetAttribute(DOSE_VOLUME_ATTRIBUTE) == "1"
    assert dose.GetAttribute("DicomRtImport.DoseUnitName") == "Gy"
    # SlicerRT reads the dose unit from the Study ancestor of the dose volume
    from DeepDoseLib.mrml.hierarchy import subject_hierarchy

    sh = subject_hierarchy(scene)
    study_item = sh.GetItemAncestorAtLevel(sh.GetItemByDataNode(dose), "Study")
    assert study_item and sh.GetItemAttribute(study_item, "DicomRtImport.DoseUnitName") == "Gy"
    assert nodes.bed_node.GetAttribute(DOSE_VOLUME_ATTRIBUTE) is None
    dose_array = array_from_volume_node(dose)
    np.testing.assert_allclose(dose_array, np.asarray(
        __import__("SimpleITK").GetArrayFromImage(nodes.result.absorbed_dose_Gy)), rtol=1e-6)
    assert (array_from_volume_node(nodes.bed_node) >= dose_array - 1e-6).all()  # BED ≥ D everywhere

    # one structures table row per segment, its numbers those of the study
    table = nodes.structures_table_node
    names = table_column(table, "structure")
    assert sorted(names) == sorted(study.label_names.values())
    means = dict(zip(names, table_column(table, "mean_Gy")))
    uncertainties = dict(zip(names, table_column(table, "u_mean_Gy")))
    for s in nodes.result.structures:
        assert float(means[s.name]) == pytest.approx(s.mean_Gy, rel=1e-9)
        assert float(uncertainties[s.name]) > 0
    # liver: its median voxel lies inside and receives the analytic local-deposition dose
    # C₀/λ · E · 1.602e-13 J/MeV · 3600 s/h / (ρ(55 HU) · 1e-3 kg/g), as on the command line
    from DeepDoseLib.nuclides import get_nuclide
    from DeepDoseLib.tissue import hu_to_density

    c0, lam = study.kinetics[1]
    rho = float(hu_to_density(np.array([55.0], np.float32))[0])
    analytic = c0 / lam * get_nuclide("Lu177").charged_energy_per_decay_MeV * 1.602176634e-13 * 3600.0 / (rho * 1e-3)
    liver = next(s for s in nodes.result.structures if s.name == "liver")
    assert liver.D50_Gy == pytest.approx(analytic, rel=0.01)

    # one chart per structure: measured points and the fitted curve, from their tables
    assert len(nodes.chart_nodes) == len(study.label_names)
    for chart, measured, fitted in zip(nodes.chart_nodes, nodes.curve_table_nodes, nodes.fit_table_nodes):
        assert chart.GetNumberOfPlotSeriesNodes() == 2
        series = [chart.GetNthPlotSeriesNode(i) for i in range(2)]
        assert {x.GetTableNodeID() for x in series} == {measured.GetID(), fitted.GetID()}
        assert [float(v) for v in table_column(measured, "time_h")] == [4.0, 24.0, 96.0, 168.0]
        assert measured.GetNumberOfRows() == 4 and fitted.GetNumberOfRows() == 121
    # the chart's tables hold the structure's measured activities and its fitted curve
    kidney = next(s for s in nodes.result.structures if s.name == "kidney_left")
    k = [s.name for s in nodes.result.structures].index("kidney_left")
    np.testing.assert_allclose(table_column(nodes.curve_table_nodes[k], "activity_MBq"), kidney.activity_fit.values)
    t = np.array(table_column(nodes.fit_table_nodes[k], "time_h"), float)
    np.testing.assert_allclose(table_column(nodes.fit_table_nodes[k], "activity_fit_MBq"),
                               kidney.activity_fit.evaluate(t), rtol=1e-9)

    # all in one subject-hierarchy folder; inputs unchanged
    in_folder = {n.GetID() for n in folder_nodes(scene, nodes.folder_item)}
    assert {n.GetID() for n in nodes.nodes()} <= in_folder
    after = [array_from_volume_node(n) for triple in triples for n in triple[:2]]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


def test_therapy_in_scene_refuses_incomplete_time_points(scene):
    with pytest.raises(DeepDoseInputError, match="at least one time point"):
        run_therapy_in_scene(scene, [])
    study = dotatate_study(times_h=(24.0,), size_xyz=(16, 12, 12))
    ct = volume_node_from_image(scene, study.time_points[0].ct_HU, "CT")
    with pytest.raises(DeepDoseInputError, match="choose both"):
        run_therapy_in_scene(scene, [(ct, None, 24.0)])
