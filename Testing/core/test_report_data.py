"""The report's content, computed before any HTML: maximum in tissue, slices through it, organs, method text."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from DeepDoseLib.errors import DeepDoseInputError
from DeepDoseLib.report import ReportInput, render_html, report_data


def _dose():
    """A 2 mGy/h background with a 30 mGy/h tissue voxel at (z, y, x) = (5, 7, 3) and 500 mGy/h in an air voxel."""
    array = np.full((10, 12, 9), 2.0, np.float32)
    array[5, 7, 3] = 30.0
    array[1, 1, 1] = 500.0
    density = np.ones_like(array)
    density[1, 1, 1] = 0.0012
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((2.0, 3.0, 4.0))
    image.SetOrigin((-10.0, 20.0, 5.0))
    return image, density


def test_maximum_in_tissue_and_the_slices_through_it():
    dose, density = _dose()
    data = report_data(dose, density_g_per_cm3=density, nuclide="Lu177", method="led", include_photons=False,
                       inputs=[ReportInput("PET", "pet.nii", "Bq/mL")], notes=["WARNING: x"])
    assert data.maximum == 30.0 and data.maximum_all_voxels == 500.0  # the air voxel is not the maximum
    assert data.maximum_mm == pytest.approx((-10.0 + 3 * 2.0, 20.0 + 7 * 3.0, 5.0 + 5 * 4.0))
    assert [(s.plane, s.index) for s in data.slices] == [("axial", 5), ("coronal", 7)]  # identity direction = LPS
    assert data.centre_what == "maximum" and data.maximum_where.startswith("in tissue")
    assert [float(level) for level in data.isodose_levels] == pytest.approx([3.0, 7.5, 15.0, 22.5, 27.0])
    assert data.organ_rows is None and data.dvh_curves == []  # no label map
    assert data.nuclide.symbol and data.method_title.endswith("ignored (charged only)")
    assert data.method_lines[-1].startswith("Organ statistics weight")  # the common assumptions close the list
    text = render_html(data)
    assert "30 mGy/h in tissue" in text and "500 mGy/h over all voxels" in text


def test_focus_label_and_empty_maps():
    dose, density = _dose()
    labels_array = np.zeros((10, 12, 9), np.uint8)
    labels_array[2:4, 4:8, 6:8] = 3  # centroid (z, y, x) = (2.5, 5.5, 6.5)
    labels = sitk.GetImageFromArray(labels_array)
    labels.CopyInformation(dose)
    data = report_data(dose, labels=labels, label_names={3: "kidney"}, focus_label=3)
    assert data.centre_what == "centre of label 3" and data.maximum == 500.0  # no density: the whole map
    assert [r.name for r in data.organ_rows] == ["kidney"] and data.dvh_curves[0][0] == "kidney"
    assert data.slices[0].position == f"z = {5.0 + 2.5 * 4.0:.1f} mm"
    with pytest.raises(DeepDoseInputError, match="empty"):
        report_data(sitk.GetImageFromArray(np.zeros((4, 4, 4), np.float32)))
