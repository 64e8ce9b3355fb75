"""The Slicer logic path on the campaign's bad inputs (as volume nodes: Slicer's own readers load the files):
a clear DeepDoseInputError (shown in the panel by the widget's error display), the scene unchanged."""
from __future__ import annotations

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="MRML tests need `slicer` (Slicer or pip slicer-core)")

import SimpleITK as sitk  # noqa: E402

from DeepDoseLib.errors import DeepDoseInputError  # noqa: E402
from DeepDoseLib.mrml import array_from_volume_node, compute_dose_rate_node, volume_node_from_image  # noqa: E402

N = 16


def _image(array, origin=-30.0):
    image = sitk.GetImageFromArray(np.asarray(array, np.float32))
    image.SetSpacing((4.0, 4.0, 4.0))
    image.SetOrigin((origin,) * 3)
    return image


def _ct_pet():
    body = np.zeros((N, N, N), bool)
    body[2:-2, 2:-2, 2:-2] = True
    return np.where(body, 0.0, -1000.0), np.where(body, 5.0e4, 0.0)


def _bad_pet(kind):
    _, pet = _ct_pet()
    if kind == "nan":
        pet[5, 5, 5] = np.nan
        return _image(pet)
    if kind == "inf":
        pet[5, 5, 5] = np.inf
        return _image(pet)
    if kind == "zero":
        return _image(np.zeros_like(pet))
    if kind == "negative":
        pet[5, 5, 5] = -10.0
        return _image(pet)
    if kind == "no_overlap":
        return _image(pet, origin=5000.0)
    raise ValueError(kind)


def _scene_state(scene):
    return sorted((n.GetID(), n.GetName()) for n in (scene.GetNthNode(i) for i in range(scene.GetNumberOfNodes())))


@pytest.mark.parametrize("kind,fragment", [("nan", "NaN or infinite"), ("inf", "NaN or infinite"),
                                           ("zero", "zero everywhere"), ("negative", "negative"),
                                           ("no_overlap", "do not overlap")])
def test_bad_pet_node_gives_a_clear_error_and_leaves_the_scene(scene, kind, fragment):
    ct, _ = _ct_pet()
    ct_node = volume_node_from_image(scene, _image(ct), "CT")
    pet_node = volume_node_from_image(scene, _bad_pet(kind), "PET")
    before_nodes = _scene_state(scene)
    before_pet = array_from_volume_node(pet_node).copy()
    with pytest.raises(DeepDoseInputError, match=fragment):
        compute_dose_rate_node(scene, ct_node, pet_node, "Ga68", method="led")
    assert _scene_state(scene) == before_nodes  # no half-made output node, no display node, no table
    np.testing.assert_array_equal(array_from_volume_node(pet_node), before_pet)


def test_output_node_equal_to_an_input_is_refused(scene):
    ct, pet = _ct_pet()
    ct_node = volume_node_from_image(scene, _image(ct), "CT")
    pet_node = volume_node_from_image(scene, _image(pet), "PET")
    before = _scene_state(scene)
    with pytest.raises(DeepDoseInputError, match="must differ"):
        compute_dose_rate_node(scene, ct_node, pet_node, "Ga68", output_node=ct_node)
    assert _scene_state(scene) == before
