"""Small Deep-dose building blocks shared by the model and inference tests."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from DeepDoseLib.deepdose.unet import DeepDoseUNet
from DeepDoseLib.methods.scaled_vsv import ScaledKernels

K = 4.25e-4  # mGy/h per Bq/mL (the order of Ga-68 in unit-density tissue)
VOXEL_mL = 0.064  # 4 mm voxels
DENSITIES = (0.25, 1.0, 2.0)


def local_kernels(photon_fraction: float = 0.0) -> ScaledKernels:
    """Kernels of local deposition: charged dose K·A/ρ in the source voxel at every density (energy
    conserved), and a photon kernel depositing ``photon_fraction``·K·A per unit density in the
    source voxel and its 6 neighbours (zero by default: the dose is then K·A/ρ exactly)."""
    charged = tuple(np.full((1, 1, 1), K / rho / VOXEL_mL, np.float32) for rho in DENSITIES)
    photon = np.zeros((3, 3, 3), np.float32)
    for offset in [(1, 1, 1), (0, 1, 1), (2, 1, 1), (1, 0, 1), (1, 2, 1), (1, 1, 0), (1, 1, 2)]:
        photon[offset] = photon_fraction * K / VOXEL_mL / 7.0
    return ScaledKernels("Ga68", (4.0, 4.0, 4.0), DENSITIES, charged, photon, 1, (1.0, 1.0, 0.9, 1.0, 1.2, 1.0))


def spreading_kernels(photon_fraction: float = 0.3) -> ScaledKernels:
    """Charged kernels on the default density ladder that keep a share ρ/(1 + ρ) of the energy in the source voxel
    and give the rest to its 6 neighbours (lighter media spread further; energy conserved: K·A/ρ in equilibrium),
    with :func:`local_kernels`' photon kernel and factors."""
    from DeepDoseLib.methods.scaled_vsv import DEFAULT_DENSITY_LADDER

    charged = []
    for rho in DEFAULT_DENSITY_LADDER:
        kernel = np.zeros((3, 3, 3), np.float32)
        keep = rho / (1.0 + rho)
        kernel[1, 1, 1] = keep
        for offset in [(0, 1, 1), (2, 1, 1), (1, 0, 1), (1, 2, 1), (1, 1, 0), (1, 1, 2)]:
            kernel[offset] = (1.0 - keep) / 6.0
        charged.append(kernel * np.float32(K / rho / VOXEL_mL))
    return replace(local_kernels(photon_fraction), densities_g_per_cm3=DEFAULT_DENSITY_LADDER,
                   charged=tuple(charged))


def banded_kernels(photon_fraction: float = 0.3) -> ScaledKernels:
    """:func:`local_kernels` with photon bands: bone (label 4) gets its own photon kernel, 1.5× the photon
    kernel in the source voxel only (two bands, R_b = 0.9 and 3)."""
    base = local_kernels(photon_fraction)
    own = np.zeros_like(base.photon)
    own[1, 1, 1] = 1.5 * base.photon[1, 1, 1]
    return replace(base, photon_material_kernels=((4, own),), photon_band_edges_MeV=(0.1,),
                   photon_band_factors=((4, (3.0, 0.9)),))


def net(head: bool, depth: int = 2, seed: int = 0) -> DeepDoseUNet:
    """A tiny U-Net; ``head``: a random (non-trivial) last layer instead of the zero start."""
    torch.manual_seed(seed)
    model = DeepDoseUNet(K, base_channels=4, depth=depth).eval()
    if head:
        torch.nn.init.normal_(model.head.weight, std=0.3)
        torch.nn.init.normal_(model.head.bias, std=0.05)
    return model


def random_inputs(n: int = 2, size: int = 16, seed: int = 1) -> torch.Tensor:
    """(n, 5, size³) inputs: activity, density, charged and photon doses, surrounding density."""
    g = torch.Generator().manual_seed(seed)
    shape = (n, 1, size, size, size)
    activity = torch.rand(*shape, generator=g) * 1e5
    density = 0.2 + 1.6 * torch.rand(*shape, generator=g)
    charged = activity * K * (0.5 + torch.rand(*shape, generator=g)) / density
    photon = activity * 0.3 * K * (0.5 + torch.rand(*shape, generator=g))
    surround = 0.5 + 0.5 * torch.rand(*shape, generator=g)
    return torch.cat([activity, density, charged, photon, surround], 1)


def card(size: int = 16) -> dict:
    return {"nuclide": "Ga68", "voxel_size_mm": [4.0, 4.0, 4.0], "architecture": {"base_channels": 4},
            "grid": {"tile_size_voxels": size, "inference_tile_voxels": 32, "margin_voxels": 8,
                     "overlap_voxels": 4, "size_multiple": 2}}


#: The fallback case: a water box of 4 mm voxels, a hot block at 2000× the median (above the safety rule's 300×)
#: and a far "organ" ≥ 7 voxels (28 mm) from it, beyond the rule's 12 mm margin. The far organ lies in the hot
#: block's tile at 1/2000 of its scale, so its tests switch the tile-scale rule off (min_tile_scale=0).
FALLBACK_SHAPE = (20, 18, 22)  # (z, y, x)
FALLBACK_HOT = (slice(3, 7), slice(3, 7), slice(3, 7))
FALLBACK_FAR = (slice(14, 18), slice(12, 16), slice(15, 20))


def hot_block_case(folder):
    """(model path, CT [HU], PET [Bq/mL], labels: 1 = the hot block, 2 = the far organ) of the fallback case; the
    tiny U-Net is exported into ``folder``."""
    import SimpleITK as sitk

    from DeepDoseLib.deepdose.model_io import export_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = export_model(net(True), local_kernels(0.3), folder / "m.pt", card())
    finally:
        torch.set_num_threads(threads)
    ct = sitk.GetImageFromArray(np.zeros(FALLBACK_SHAPE, np.float32))
    ct.SetSpacing((4.0, 4.0, 4.0))
    activity = np.full(FALLBACK_SHAPE, 1e4, np.float32)
    activity[FALLBACK_HOT] = 2e7
    pet = sitk.GetImageFromArray(activity)
    pet.CopyInformation(ct)
    labels_array = np.zeros(FALLBACK_SHAPE, np.uint8)
    labels_array[FALLBACK_HOT], labels_array[FALLBACK_FAR] = 1, 2
    labels = sitk.GetImageFromArray(labels_array)
    labels.CopyInformation(ct)
    return model, ct, pet, labels
