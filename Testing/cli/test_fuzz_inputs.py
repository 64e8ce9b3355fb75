"""Seeded fuzz of the image readers through the command: byte flips, header-field values and truncations of
small NIfTI (.nii, .nii.gz), NRRD, MetaImage and DICOM PET files. Every input must end in exit 0 (the damage
was harmless) or exit 2 (refused with a message), never in an exception (a traceback for the user), and a
truncated file must always be refused (SimpleITK reads a truncated NIfTI with the missing voxels as 0, a DICOM
folder would be read without a truncated slice).

The command runs in-process (``DeepDoseLib.cli.main``) so that a few hundred inputs take seconds.
"""
from __future__ import annotations

import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from DeepDoseLib import cli

from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "Testing" / "core"))
from dicom_factory import write_pet_series  # noqa: E402

# pydicom warns about the odd values it meets in damaged files; the outcome is what is tested
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SEED = 17
#: Interesting values for header fields (zero, negative, huge, not a number).
FLOATS = [0.0, -1.0, 1e-30, 1e30, float("nan"), float("inf"), 0.5, 1e6]
INTS = [0, -1, 1, 2, 3, 4, 5, 7, 8, 16, 64, 255, 32767, -32768]


def _pet_image() -> sitk.Image:
    pet = np.full((8, 8, 8), 2.0e5, np.float32)
    pet[3:5, 3:5, 3:5] = 2.0e6
    image = sitk.GetImageFromArray(pet)
    image.SetSpacing((4.0, 4.0, 4.0))
    image.SetOrigin((-14.0, -14.0, -14.0))
    return image


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """Valid CT and PET files (each format) from which the fuzzed inputs are made."""
    root = tmp_path_factory.mktemp("fuzz_seeds")
    ct = sitk.GetImageFromArray(np.zeros((20, 20, 20), np.float32))
    ct.SetSpacing((4.0, 4.0, 4.0))
    ct.SetOrigin((-38.0, -38.0, -38.0))
    sitk.WriteImage(ct, str(root / "ct.nii.gz"))
    pet = _pet_image()
    files = {}
    for suffix, compress in ((".nii", False), (".nii.gz", True), (".nrrd", False), (".mha", True)):
        files[suffix] = root / f"pet{suffix}"
        sitk.WriteImage(pet, str(files[suffix]), useCompression=compress)
    stored = np.full((6, 8, 8), 2000, np.int16)
    files["dicom"] = root / "pet_dicom"
    write_pet_series(files["dicom"], stored, origin_mm=(-14.0, -14.0, -10.0), spacing_mm=(4.0, 4.0, 4.0),
                     slopes=[100.0] * 6)
    return root / "ct.nii.gz", files


def _flip_bytes(data: bytearray, rng: np.random.Generator, header_bytes: int) -> None:
    for _ in range(int(rng.integers(1, 9))):
        limit = header_bytes if rng.random() < 0.7 else len(data)
        data[int(rng.integers(0, min(limit, len(data))))] = int(rng.integers(0, 256))


def _nifti_field(data: bytearray, rng: np.random.Generator) -> None:
    """Set one field of the NIfTI-1 header (dim, datatype, bitpix, pixdim, vox_offset, scaling) to an odd value."""
    field = rng.integers(0, 6)
    if field == 0:
        struct.pack_into("<h", data, 40 + 2 * int(rng.integers(0, 8)), int(rng.choice(INTS)))
    elif field == 1:
        struct.pack_into("<h", data, 70, int(rng.choice([2, 4, 8, 16, 32, 64, 128, 256, 511, 512, 768, 1024, 0, -5])))
    elif field == 2:
        struct.pack_into("<h", data, 72, int(rng.choice(INTS)))
    elif field == 3:
        struct.pack_into("<f", data, 76 + 4 * int(rng.integers(0, 8)), float(rng.choice(FLOATS)))
    elif field == 4:
        struct.pack_into("<f", data, 108, float(rng.choice(FLOATS + [352.0, 348.0, 1e9])))
    else:
        struct.pack_into("<f", data, 112 + 4 * int(rng.integers(0, 2)), float(rng.choice(FLOATS)))


def _text_header_field(data: bytearray, rng: np.random.Generator) -> bytearray:
    """Replace one value of a text header (NRRD, MetaImage) with an odd token."""
    end = data.find(b"\n\n") if data.startswith(b"NRRD") else data.find(b"ElementDataFile")
    header = data[:max(end, 0)].decode("latin-1").split("\n")
    if not header:
        return data
    i = int(rng.integers(0, len(header)))
    key, sep, _ = header[i].partition(":" if data.startswith(b"NRRD") else "=")
    token = str(rng.choice(["0", "-4", "nan", "1e30", "8 8", "8 8 8 8", "(0,0,0) (0,0,0) (0,0,0)", "float", "ushort",
                            "raw", "gzip", "abc", "4000000 4000000 4000000", ""]))
    header[i] = f"{key}{sep} {token}" if sep else token
    return bytearray("\n".join(header).encode("latin-1")) + data[max(end, 0):]


def _fuzzed_pet(kind: str, source: Path, target: Path, rng: np.random.Generator):
    """(fuzzed file or folder, whether it must be refused: a truncated file always must)."""
    if kind == "dicom":
        shutil.copytree(source, target)
        victim = sorted(target.glob("*.dcm"))[int(rng.integers(0, 6))]
        data = bytearray(victim.read_bytes())
        truncated = rng.random() < 0.25
        if truncated:
            data = data[: int(rng.integers(0, len(data)))]
        else:
            _flip_bytes(data, rng, 1200)
        victim.write_bytes(bytes(data))
        return target, truncated
    target = target.with_name(target.name + kind)
    data = bytearray(source.read_bytes())
    choice = rng.random()
    truncated = choice < 0.2
    if truncated:
        data = data[: int(rng.integers(0, len(data)))]
    elif choice < 0.55 and kind == ".nii":
        _nifti_field(data, rng)
    elif choice < 0.55 and kind in (".nrrd", ".mha"):
        data = _text_header_field(data, rng)
    else:
        _flip_bytes(data, rng, 352 if kind == ".nii" else 300)
    target.write_bytes(bytes(data))
    return target, truncated


#: inputs per format (300 in all)
PLAN = {".nii": 100, ".nii.gz": 60, ".nrrd": 60, ".mha": 40, "dicom": 40}


@pytest.mark.parametrize("kind", list(PLAN))
def test_fuzzed_pet_files_end_in_exit_0_or_2(kind, seeds, tmp_path, capsys, monkeypatch):
    ct, files = seeds
    monkeypatch.setenv("DEEPDOSE_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng([SEED, list(PLAN).index(kind)])
    codes = []
    for i in range(PLAN[kind]):
        pet, truncated = _fuzzed_pet(kind, files[kind], tmp_path / f"case{i}", rng)
        out = tmp_path / f"dose{i}.nii.gz"
        code = cli.main(["dose", "--ct", str(ct), "--pet", str(pet), "--out", str(out), "--quiet"])
        err = capsys.readouterr().err
        assert code in (0, 2), f"input {i} ({kind}): exit {code}\n{err}"
        assert "Traceback" not in err
        assert code == 2 or not truncated, f"input {i} ({kind}): a truncated file was accepted\n{err}"
        assert (code == 0) == out.is_file(), f"input {i}: exit {code} but output {'missing' if code == 0 else 'left'}"
        codes.append(code)
    # the fuzz exercises both outcomes (a fuzzer that only ever breaks the file tests less)
    assert 2 in codes
