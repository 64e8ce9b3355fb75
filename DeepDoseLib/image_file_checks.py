"""Checks of an image file against its own header, before SimpleITK reads it.

SimpleITK (ITK) reads some damaged files without complaint: a truncated ``.nii``/``.nii.gz`` comes back with
the missing voxels as 0, NaN and infinite voxels of a NIfTI file come back as 0, and a NIfTI pixel spacing of
0 mm comes back as 1 mm. These checks read the file's own bytes so that such files are refused with a clear
message (:class:`~DeepDoseLib.errors.DeepDoseInputError`) instead:

- NIfTI-1/NIfTI-2 (``.nii``, ``.nii.gz``): the 348/540-byte header is parsed here; the voxel data that the
  header declares (``vox_offset`` + voxels × ``bitpix``/8) must be present in the (decompressed) file, float
  voxels must be finite, the spacing ``pixdim[1..3]`` must be finite and > 0 mm.
- every format: the image must be one scalar 3D volume (a 4D image whose 4th size is 1 counts as 3D), no
  larger than :data:`MAX_VOXELS`, and a file holding its voxels must be large enough for them (uncompressed:
  at least the declared bytes; compressed: zlib cannot compress more than ~1032:1).

Only reading; files are opened read-only.
"""
from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path
from typing import Tuple

import numpy as np
import SimpleITK as sitk

from .errors import DeepDoseInputError

#: Largest image accepted [voxels] (4 GiB as float32): a whole-body CT of 512×512×2000 is 0.52e9.
MAX_VOXELS = 1_100_000_000
#: zlib's largest possible compression ratio is ~1032:1; a compressed file that declares more voxel bytes than
#: this many times its own size is damaged.
MAX_COMPRESSION_RATIO = 1100
#: NIfTI datatype code → numpy dtype character (without byte order).
_NIFTI_DTYPES = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 64: "f8", 256: "i1", 512: "u2", 768: "u4", 1024: "i8",
                 1280: "u8"}
_FLOAT_CODES = (16, 64)
_CHUNK_BYTES = 1 << 24


def _open(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def _nifti_header(head: bytes, path: Path) -> Tuple[str, np.ndarray, int, int, np.ndarray, int]:
    """(byte order, dim[0..7], datatype, bitpix, pixdim[0..7], vox_offset) of a NIfTI-1 or NIfTI-2 header."""
    for order in "<>":
        if len(head) >= 4 and struct.unpack(order + "i", head[:4])[0] == 348 and len(head) >= 348:
            dim = np.array(struct.unpack(order + "8h", head[40:56]), dtype=np.int64)
            datatype, bitpix = struct.unpack(order + "2h", head[70:74])
            pixdim = np.array(struct.unpack(order + "8f", head[76:108]), dtype=np.float64)
            offset = struct.unpack(order + "f", head[108:112])[0]
            if not math.isfinite(offset) or offset < 0:
                raise DeepDoseInputError(f"{path}: NIfTI header has an invalid vox_offset ({offset}).")
            return order, dim, datatype, bitpix, pixdim, int(offset)
        if len(head) >= 4 and struct.unpack(order + "i", head[:4])[0] == 540 and len(head) >= 540:
            datatype, bitpix = struct.unpack(order + "2h", head[12:16])
            dim = np.array(struct.unpack(order + "8q", head[16:80]), dtype=np.int64)
            pixdim = np.array(struct.unpack(order + "8d", head[104:168]), dtype=np.float64)
            offset = struct.unpack(order + "q", head[168:176])[0]
            if offset < 0:
                raise DeepDoseInputError(f"{path}: NIfTI-2 header has an invalid vox_offset ({offset}).")
            return order, dim, datatype, bitpix, pixdim, int(offset)
    raise DeepDoseInputError(f"Cannot read image {path}: not a NIfTI file (the header size field is neither 348 "
                             "nor 540), or it is truncated.")


def check_nifti_file(path: Path) -> None:
    """Refuse a ``.nii``/``.nii.gz`` that is truncated, holds NaN/infinite voxels, has a zero or non-finite
    spacing, or is not a single 3D volume (reads and, for ``.gz``, decompresses the file once)."""
    try:
        with _open(path) as f:
            head = f.read(540)
            order, dim, datatype, bitpix, pixdim, offset = _nifti_header(head, path)
            ndim = int(dim[0])
            if not 1 <= ndim <= 7 or np.any(dim[1:ndim + 1] < 1):
                raise DeepDoseInputError(f"{path}: NIfTI header declares an invalid size {dim[:ndim + 1].tolist()}.")
            sizes = [int(s) for s in dim[1:ndim + 1]]
            check_volume_size(sizes, path)
            if bitpix <= 0 or bitpix % 8:
                raise DeepDoseInputError(f"{path}: NIfTI header declares {bitpix} bits per voxel.")
            spacing = pixdim[1:min(ndim, 3) + 1]
            if not np.all(np.isfinite(spacing)) or np.any(spacing == 0):
                raise DeepDoseInputError(
                    f"{path}: voxel spacing {spacing.tolist()} mm in the NIfTI header (pixdim); a spacing must be "
                    "finite and non-zero. Fix the header (the image cannot be placed in space).")
            n_voxels = int(np.prod(sizes, dtype=np.int64))
            declared = n_voxels * (bitpix // 8)
            f.seek(offset)  # gzip streams rewind and re-read when seeking backwards
            dtype = _NIFTI_DTYPES.get(datatype)
            check_float = datatype in _FLOAT_CODES and dtype is not None and np.dtype(dtype).itemsize * 8 == bitpix
            got, non_finite = 0, 0
            carry = b""
            while got < declared:
                block = f.read(min(_CHUNK_BYTES, declared - got))
                if not block:
                    break
                got += len(block)
                if check_float:
                    data = carry + block
                    usable = len(data) - len(data) % np.dtype(dtype).itemsize
                    values = np.frombuffer(data[:usable], dtype=order + dtype)
                    non_finite += int(values.size - np.count_nonzero(np.isfinite(values)))
                    carry = data[usable:]
    except (OSError, EOFError, zlib.error) as exc:
        raise DeepDoseInputError(f"Cannot read image {path} ({type(exc).__name__}: {exc}); it is damaged or "
                                 "truncated.") from exc
    if got < declared:
        raise DeepDoseInputError(
            f"{path} is truncated: its header declares {declared:,} bytes of voxel data ({'×'.join(map(str, sizes))} "
            f"voxels of {bitpix} bits) but the file holds only {got:,}. Refusing it rather than reading the missing "
            "part as zeros.")
    if non_finite:
        raise DeepDoseInputError(f"{path} contains {non_finite} NaN or infinite voxel(s); fix or mask them first "
                                 "(SimpleITK would silently read them as 0).")


def check_volume_size(sizes, path: Path) -> None:
    """A single 3D volume (trailing sizes of 1 allowed) of at most :data:`MAX_VOXELS` voxels."""
    sizes = [int(s) for s in sizes]
    core = list(sizes)
    while len(core) > 3 and core[-1] == 1:
        core.pop()
    if len(core) != 3:
        what = "2D image" if len(core) < 3 else f"{len(core)}D image (e.g. a time series or dynamic frames)"
        raise DeepDoseInputError(f"{path} is a {what} of size {'×'.join(map(str, sizes))}; expected one 3D volume "
                                 "(x × y × z). Extract the frame or volume you mean first.")
    n = int(np.prod(core, dtype=np.float64))
    if n > MAX_VOXELS:
        raise DeepDoseInputError(f"{path} declares {'×'.join(map(str, core))} = {n:.3g} voxels, more than the "
                                 f"{MAX_VOXELS:.3g} DeepDose accepts; the header is damaged or the image too large.")


def check_image_file(path: Path) -> None:
    """All checks of an image file before reading it (NIfTI: :func:`check_nifti_file`; other formats: header
    information from SimpleITK's ImageIO, no voxel data read)."""
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        check_nifti_file(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise DeepDoseInputError(f"Cannot read image {path}: {str(exc).strip().splitlines()[-1]}") from exc
    sizes = list(reader.GetSize())
    check_volume_size(sizes, path)
    if reader.GetNumberOfComponents() != 1:
        raise DeepDoseInputError(f"{path} has {reader.GetNumberOfComponents()} components per voxel (a vector or "
                                 "RGB image); expected one scalar value per voxel.")
    spacing = np.asarray(reader.GetSpacing(), dtype=np.float64)[:3]
    if not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        raise DeepDoseInputError(f"{path}: voxel spacing {spacing.tolist()} mm; every spacing must be finite and > 0.")
    if not np.all(np.isfinite(reader.GetOrigin())) or not np.all(np.isfinite(reader.GetDirection())):
        raise DeepDoseInputError(f"{path}: the origin or direction in the header is not finite.")
    if name.endswith((".nrrd", ".mha")):  # voxels in the same file: the file must be able to hold them
        pixel_bytes = sitk.GetArrayFromImage(sitk.Image([1, 1, 1], reader.GetPixelID())).itemsize \
            if reader.GetPixelID() != sitk.sitkUnknown else 1
        declared = int(np.prod(sizes, dtype=np.float64)) * pixel_bytes
        size = path.stat().st_size
        if declared > MAX_COMPRESSION_RATIO * size:
            raise DeepDoseInputError(f"{path} declares {declared:,} bytes of voxel data but the file has only "
                                     f"{size:,} bytes: it is truncated or its header is damaged.")
