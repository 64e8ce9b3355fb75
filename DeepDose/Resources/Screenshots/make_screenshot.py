"""Render the README/Extensions-Index screenshot offscreen on slicer-core: what a user sees in Slicer.

The demo case (Sample Data > DeepDose) goes through the module's calculation
(``DeepDoseLib.mrml.run_dosimetry``, the same call as ``DeepDoseLogic.run``); the three slice views
(axial, coronal, sagittal through the maximum dose rate in tissue) are rendered by Slicer's own slice
logic and displayable managers (CT, dose-rate wash, isodose lines, colour legend), and the DVH chart is
drawn from the DVH table nodes the run created. Run from the repository root::

    python DeepDose/Resources/Screenshots/make_screenshot.py [--method deepdose]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
OUT = Path(__file__).resolve().parent / "slicer_dose_isodose_dvh.png"
STRUCTURES = ("liver", "spleen", "kidney_left_cortex", "kidney_right_cortex", "urinary_bladder", "lesion_01_liver",
              "lesion_03_bone")


def main(argv=None) -> int:
    sys.path.insert(0, str(ROOT))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from DeepDoseLib.demo import make_demo_case
    from DeepDoseLib.dose_methods import get_method
    from DeepDoseLib.mrml import (array_from_volume_node, create_headless_scene, release_headless_scene, run_dosimetry,
                                  segmentation_from_labels, table_column, volume_node_from_image)
    from DeepDoseLib.mrml.rendering import OffscreenSliceView, ras_of_voxel
    from DeepDoseLib.tissue import hu_to_density

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="deepdose")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)

    case = make_demo_case()
    scene = create_headless_scene()
    views = {name: OffscreenSliceView(scene, name, (420, 420)) for name in ("Red", "Yellow", "Green")}
    try:
        ct = volume_node_from_image(scene, case.ct, "CT")
        pet = volume_node_from_image(scene, case.pet, "PET")
        names = {v: n for v, n in case.label_names.items() if n in STRUCTURES}
        organs = segmentation_from_labels(scene, case.labels, names, "Organs")
        result = run_dosimetry(scene, ct, pet, case.nuclide, args.method, segmentation_node=organs)
        display = ct.GetDisplayNode()
        display.AutoWindowLevelOff()
        display.SetWindowLevel(400.0, 40.0)
        dose = array_from_volume_node(result.dose_node)
        density = hu_to_density(array_from_volume_node(ct).astype(np.float32))
        k, j, i = np.unravel_index(int(np.argmax(np.where(density >= 0.05, dose, -np.inf))), dose.shape)
        point = ras_of_voxel(result.dose_node, (i, j, k))
        images = {name: view.render(point) for name, view in views.items()}

        figure = plt.figure(figsize=(13.0, 4.6), dpi=110)
        grid = figure.add_gridspec(1, 5, width_ratios=(1, 1, 1, 0.4, 1.35), wspace=0.04)  # column 3: gap
        for column, (name, title) in enumerate((("Red", "Axial"), ("Green", "Coronal"), ("Yellow", "Sagittal"))):
            axis = figure.add_subplot(grid[0, column])
            axis.imshow(images[name])
            axis.set_title(title, fontsize=10)
            axis.axis("off")
        chart = figure.add_subplot(grid[0, 4])
        for table in result.dvh_table_nodes:
            columns = [table.GetTable().GetColumn(c).GetName() for c in range(table.GetTable().GetNumberOfColumns())]
            chart.plot(table_column(table, columns[0]), table_column(table, "volume_percent"),
                       label=table.GetAttribute("DeepDose.SegmentName"))
        chart.set_xlabel("dose rate [mGy/h]")
        chart.set_ylabel("volume [%]")
        chart.set_title("Cumulative DVH", fontsize=10)
        chart.grid(alpha=0.3)
        chart.legend(fontsize=7)
        figure.suptitle("DeepDose in 3D Slicer: %s dose rate (mGy/h) of the demo Ga-68 PET/CT over the CT, isodose "
                        "lines (10-90 %% of %.3g mGy/h), DVH per organ" % (get_method(args.method).label,
                                                                         result.reference_dose_rate), fontsize=10)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(args.out, bbox_inches="tight")
        print("wrote", args.out)
    finally:
        for view in views.values():
            view.close()
        release_headless_scene(scene)
    return 0


if __name__ == "__main__":
    sys.exit(main())
