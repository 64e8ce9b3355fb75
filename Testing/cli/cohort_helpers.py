"""Helpers of test_cohort_batch.py that Dask worker processes import by name (workers are spawned with
the test process's sys.path): tiny synthetic studies and a study task whose worker dies mid-study once."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

SHAPE = (6, 6, 6)  # voxels (z, y, x) of 4 mm


def write_study(folder: Path, index: int, negative_voxel: bool = False) -> dict:
    """A 6³ PET/CT (soft tissue with a bone-like slab, uniform-ish activity scaled by ``index`` + 1)
    and a two-organ label map, as NRRD files; returns the manifest cells."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(index)
    ct_HU = rng.normal(40.0, 20.0, SHAPE).astype(np.float32)
    ct_HU[:, :, :2] = 700.0
    pet_Bq_per_mL = ((1000.0 + 100.0 * rng.random(SHAPE)) * (index + 1)).astype(np.float32)
    if negative_voxel:
        pet_Bq_per_mL[0, 0, 0] = -50.0  # refused without --clip-negative
    labels = np.zeros(SHAPE, np.uint8)
    labels[1:3], labels[3:5] = 1, 2
    for name, array in (("ct", ct_HU), ("pet", pet_Bq_per_mL), ("labels", labels)):
        image = sitk.GetImageFromArray(array)
        image.SetSpacing((4.0, 4.0, 4.0))
        sitk.WriteImage(image, str(folder / f"{name}.nrrd"))
    (folder / "labels.json").write_text(json.dumps({"1": "liver", "2": "kidney"}))
    return {"ct": folder / "ct.nrrd", "pet": folder / "pet.nrrd", "labels": folder / "labels.nrrd",
            "label_names": folder / "labels.json"}


def die_mid_study_once(study, out_root, settings, inputs_sha256):
    """:func:`~DeepDoseLib.cohort.tasks.study_task`, except that for study ``p2`` the first worker that
    runs it computes and writes its outputs into the temporary folder and then dies (``os._exit``)
    before publishing them; the flag file ``OUT/../died.pid`` records the dead worker's pid."""
    import DeepDoseLib.cohort.tasks as tasks

    flag = Path(out_root).parent / "died.pid"
    if study.study_id == "p2" and not flag.exists():
        real = tasks.compute_study

        def compute_then_die(*args):
            outputs = real(*args)
            flag.write_text(str(os.getpid()))
            os._exit(1)  # the worker process ends here: no exception, no cleanup, no result
            return outputs

        tasks.compute_study = compute_then_die  # this process dies in the call: the patch dies with it
    return tasks.study_task(study, out_root, settings, inputs_sha256)
