"""The Deep-dose 3D U-Net (after Lee et al., Sci Rep 2019, Fig. 1), exactly linear in the activity.

Input tensor (N, 3, D, H, W), axes (z, y, x), physical units:
    channel 0: activity concentration [Bq/mL]
    channel 1: mass density [g/cm³]
    channel 2: plain voxel S-value dose rate [mGy/h] (activity ⊛ the model's soft-tissue kernel over
               the whole volume: it carries the long-range photon dose into every patch)
Output (N, 1, D, H, W): dose rate [mGy/h].

Exact linearity: every patch is divided by its scale s = max(max A, max VSV / k) (k: the soft-tissue
local dose rate per Bq/mL, so the normalised channels are ~1) and the prediction is multiplied back by
s·k. The network is then positively homogeneous of degree 1 in (A, VSV), and since VSV is linear in A,
doubling the PET doubles the output bit for bit (scaling by 2 is exact in floating point). A patch
without activity gives exactly 0. Residual learning: the network predicts the correction to the plain
VSV dose (the last layer starts at zero, so an untrained model is the VSV method). No normalisation
layers: a tile's output must not depend on the statistics of the whole tile (seams).
"""
from __future__ import annotations

from typing import List

import torch
from torch import nn

#: Lower bound of the density in the derived channels [g/cm³] (gas and air are clipped to it).
DENSITY_FLOOR_g_per_cm3 = 0.05


class _Block(nn.Module):
    """Two 3×3×3 convolutions with LeakyReLU."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = nn.Conv3d(c_in, c_out, 3, padding=1)
        self.conv2 = nn.Conv3d(c_out, c_out, 3, padding=1)
        self.act = nn.LeakyReLU(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.act(self.conv1(x))))


class DeepDoseUNet(nn.Module):
    """3D U-Net with ``depth`` resolution levels and ``base_channels`` features at full resolution.

    Args:
        dose_per_activity_mGy_per_h_per_Bq_per_mL: k, the normalisation of the dose channels (LED
            dose rate per Bq/mL in unit-density tissue of the model's nuclide).
        kernel_density_g_per_cm3: density of the VSV kernel's medium (for the density-scaled channel).
    Patch sizes must be divisible by 2**(depth-1).
    """

    def __init__(self, dose_per_activity_mGy_per_h_per_Bq_per_mL: float, kernel_density_g_per_cm3: float = 1.0,
                 base_channels: int = 16, depth: int = 3):
        super().__init__()
        if depth < 1 or base_channels < 1:
            raise ValueError("depth and base_channels must be ≥ 1")
        self.k = float(dose_per_activity_mGy_per_h_per_Bq_per_mL)
        self.kernel_density = float(kernel_density_g_per_cm3)
        self.density_floor = float(DENSITY_FLOOR_g_per_cm3)
        self.depth = int(depth)
        self.base_channels = int(base_channels)
        widths = [base_channels * 2 ** i for i in range(depth)]
        self.down = nn.ModuleList()
        c_in = 5
        for w in widths:
            self.down.append(_Block(c_in, w))
            c_in = w
        self.upsample = nn.ModuleList()
        self.up = nn.ModuleList()
        for w_hi, w_lo in zip(widths[-2::-1], widths[:0:-1]):
            # nearest upsampling + 1×1×1 convolution: no checkerboard (a transposed convolution makes a
            # period-2 pattern in a uniform medium) and no growth of the receptive field
            self.upsample.append(nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"),
                                               nn.Conv3d(w_lo, w_hi, 1)))
            self.up.append(_Block(2 * w_hi, w_hi))
        self.head = nn.Conv3d(widths[0], 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.pool = nn.MaxPool3d(2)

    def features(self, activity_n: torch.Tensor, density: torch.Tensor, vsv_n: torch.Tensor) -> torch.Tensor:
        """The five network channels from the normalised activity and VSV (dimensionless)."""
        inv_rho = 1.0 / density.clamp_min(self.density_floor)
        return torch.cat([activity_n, density, vsv_n, vsv_n * (self.kernel_density * inv_rho), activity_n * inv_rho],
                         dim=1)

    def forward_normalised(self, activity_n: torch.Tensor, density: torch.Tensor, vsv_n: torch.Tensor) -> torch.Tensor:
        """Dose rate / (s·k) from normalised inputs (the function the network learns)."""
        x = self.features(activity_n, density, vsv_n)
        skips: List[torch.Tensor] = []
        for i, block in enumerate(self.down):
            if i > 0:
                x = self.pool(x)
            x = block(x)
            skips.append(x)
        for j, (upsample, block) in enumerate(zip(self.upsample, self.up)):
            x = upsample(x)
            x = block(torch.cat([x, skips[len(skips) - 2 - j]], dim=1))
        return vsv_n + self.head(x)

    def patch_scale(self, x: torch.Tensor) -> torch.Tensor:
        """Per-patch scale s [Bq/mL], shape (N, 1, 1, 1, 1): max(max A, max VSV / k)."""
        a_max = x[:, 0:1].amax(dim=(2, 3, 4), keepdim=True)
        v_max = x[:, 2:3].amax(dim=(2, 3, 4), keepdim=True) / self.k
        return torch.maximum(a_max, v_max)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.patch_scale(x)
        safe = torch.where(scale > 0, scale, torch.ones_like(scale))
        out = self.forward_normalised(x[:, 0:1] / safe, x[:, 1:2], x[:, 2:3] / (safe * self.k))
        return out * (scale * self.k)


def receptive_half_width_voxels(depth: int) -> int:
    """Half-width of the receptive field [voxels] of :class:`DeepDoseUNet` (two 3³ convs per level)."""
    half = 0
    for level in range(depth):  # contracting path incl. bottleneck
        half += 2 * 2 ** level
    for level in range(depth - 2, -1, -1):  # expanding path
        half += 2 * 2 ** level
    return half
