"""Output safety (DeepDoseLib.output_paths): inputs recognised by file identity, atomic writing."""
from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import SimpleITK as sitk

from DeepDoseLib.errors import DeepDoseInputError
from DeepDoseLib.image_io import write_image
from DeepDoseLib.output_paths import Output, atomic_write, atomic_write_text, check_outputs


def _image() -> sitk.Image:
    return sitk.GetImageFromArray(np.ones((4, 4, 4), np.float32))


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "table.tsv"
    target.write_text("old\n")

    def crash(tmp):
        tmp.write_text("half a fil")
        raise KeyboardInterrupt  # Ctrl-C in the middle of writing

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, crash)
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.tsv"]


def test_overwriting_a_hard_link_never_truncates_the_shared_inode(tmp_path):
    source = tmp_path / "pet.nii.gz"
    write_image(_image(), source)
    before = source.read_bytes()
    link = tmp_path / "out.nii.gz"
    os.link(source, link)
    with pytest.raises(DeepDoseInputError, match="a link to it"):
        check_outputs([Output("--out", link, (".nii.gz",))], [source], overwrite=True)
    with pytest.raises(DeepDoseInputError, match="input"):
        write_image(_image() * 2, link, overwrite=True, protected=[source])
    # even without protection the rename gives the output a new inode: the other name keeps its bytes
    write_image(_image() * 3, link, overwrite=True)
    assert source.read_bytes() == before
    assert os.stat(source).st_ino != os.stat(link).st_ino


def test_written_files_get_the_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_output_checks(tmp_path):
    existing = tmp_path / "d.nii.gz"
    existing.write_bytes(b"x")
    with pytest.raises(DeepDoseInputError, match="exists"):
        check_outputs([Output("--out", existing, (".nii.gz",))], [], overwrite=False)
    check_outputs([Output("--out", existing, (".nii.gz",))], [], overwrite=True)
    with pytest.raises(DeepDoseInputError, match="same path"):
        check_outputs([Output("--out", tmp_path / "a.nrrd", (".nrrd",)),
                       Output("--uncertainty", tmp_path / "x" / ".." / "a.nrrd", (".nrrd",))], [], overwrite=True)
    dicom = tmp_path / "dicom"
    dicom.mkdir()
    with pytest.raises(DeepDoseInputError, match="input folder"):
        check_outputs([Output("--out", dicom / "d.nii.gz", (".nii.gz",))], [dicom], overwrite=True)
    with pytest.raises(DeepDoseInputError, match="is a folder"):
        check_outputs([Output("--out", dicom, ())], [], overwrite=True)
    # a new folder below a writable one is fine (created when writing)
    check_outputs([Output("--out", tmp_path / "new" / "deeper" / "d.nii.gz", (".nii.gz",))], [], overwrite=False)
    assert not (tmp_path / "new").exists()
