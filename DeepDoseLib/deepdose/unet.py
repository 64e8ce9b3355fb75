"""The Deep-dose 3D U-Net (after Lee et al., Sci Rep 2019, Fig. 1), exactly linear in the activity.

Input tensor (N, 5, D, H, W), axes (z, y, x): the physics channels of :mod:`.channels` — activity
[Bq/mL], density [g/cm³], charged-particle and photon dose rates of the density-scaled VSV baseline
[mGy/h] (computed over the whole volume, so the long-range photon dose reaches every patch), and the
surrounding density [g/cm³]. Output (N, 1, D, H, W): dose rate [mGy/h].

Exact linearity: every patch is divided by its scale s = max(max A, max(baseline) / k) (k: the
soft-tissue dose rate per Bq/mL of an infinite uniform source, so the normalised channels are ~1) and
the prediction is multiplied back by s·k. Doubling the PET doubles every activity channel and s, the
normalised input is unchanged, and the output doubles bit for bit (scaling by 2 is exact in floating
point). A patch without activity gives exactly 0. Residual learning: the network predicts the
correction to the baseline (charged + photon; the last layer starts at zero, so an untrained model is
the density-scaled VSV method). No normalisation layers: a tile's output must not depend on the
statistics of the whole tile (seams).
"""
from __future__ import annotations

from typing import List

import torch
from torch import nn
from ..tissue import TISSUE_MIN_DENSITY_g_per_cm3



class _Block(nn.Module):
    """Two 3×3×3 convolutions with LeakyReLU."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = nn.Conv3d(c_in, c_out, 3, padding=1)
        self.conv2 = nn.Conv3d(c_out, c_out, 3, padding=1)
        self.act = nn.LeakyReLU(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.act(self.conv1(x))))


class NearestUpsample2x(nn.Module):
    """Nearest-neighbour upsampling by 2 on the three spatial axes (same values as ``nn.Upsample``).

    Written with expand/reshape rather than ``nn.Upsample``: TorchScript serialises the Python body of
    ``F.interpolate``, which names every resampling op of the torch that saved it (torch 2.13 adds a
    Lanczos op), so a model saved with a newer torch would not load in an older one (e.g. Slicer's).

    A channels-last input gives a channels-last output (expanded in the (N, D, H, W, C) order it is stored in):
    the following convolution and concatenation then need no reorder (CPU inference, :class:`.inference.TileRunner`).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, d, h, w = x.shape
        if x.is_contiguous(memory_format=torch.channels_last_3d) and not x.is_contiguous():
            y = x.permute(0, 2, 3, 4, 1)  # (N, D, H, W, C), contiguous
            y = y[:, :, None, :, None, :, None, :].expand(n, d, 2, h, 2, w, 2, c).reshape(n, 2 * d, 2 * h, 2 * w, c)
            return y.permute(0, 4, 1, 2, 3)
        return x[:, :, :, None, :, None, :, None].expand(n, c, d, 2, h, 2, w, 2).reshape(n, c, 2 * d, 2 * h, 2 * w)


class DeepDoseUNet(nn.Module):
    """3D U-Net with ``depth`` resolution levels and ``base_channels`` features at full resolution.

    Args:
        dose_per_activity_mGy_per_h_per_Bq_per_mL: k, the normalisation of the dose channels (dose rate
            per Bq/mL of an infinite uniform source in soft tissue, for the model's nuclide).
    Patch sizes must be divisible by 2**(depth-1).
    """

    def __init__(self, dose_per_activity_mGy_per_h_per_Bq_per_mL: float, base_channels: int = 16, depth: int = 3):
        super().__init__()
        if depth < 1 or base_channels < 1:
            raise ValueError("depth and base_channels must be ≥ 1")
        self.k = float(dose_per_activity_mGy_per_h_per_Bq_per_mL)
        self.density_floor = float(TISSUE_MIN_DENSITY_g_per_cm3)
        self.depth = int(depth)
        self.base_channels = int(base_channels)
        widths = [base_channels * 2 ** i for i in range(depth)]
        self.down = nn.ModuleList()
        c_in = 7
        for w in widths:
            self.down.append(_Block(c_in, w))
            c_in = w
        self.upsample = nn.ModuleList()
        self.up = nn.ModuleList()
        for w_hi, w_lo in zip(widths[-2::-1], widths[:0:-1]):
            # nearest upsampling + 1×1×1 convolution: no checkerboard (a transposed convolution makes a
            # period-2 pattern in a uniform medium) and no growth of the receptive field
            self.upsample.append(nn.Sequential(NearestUpsample2x(),
                                               nn.Conv3d(w_lo, w_hi, 1)))
            self.up.append(_Block(2 * w_hi, w_hi))
        self.head = nn.Conv3d(widths[0], 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.pool = nn.MaxPool3d(2)

    def features(self, activity_n: torch.Tensor, density: torch.Tensor, charged_n: torch.Tensor,
                 photon_n: torch.Tensor, surround: torch.Tensor) -> torch.Tensor:
        """The seven network channels from the normalised inputs (dimensionless, or g/cm³)."""
        inv_rho = 1.0 / density.clamp_min(self.density_floor)
        return torch.cat([activity_n, density, charged_n, photon_n, surround, activity_n * inv_rho,
                          photon_n * surround], dim=1)

    def forward_normalised(self, activity_n: torch.Tensor, density: torch.Tensor, charged_n: torch.Tensor,
                           photon_n: torch.Tensor, surround: torch.Tensor) -> torch.Tensor:
        """Dose rate / (s·k) from normalised inputs (the function the network learns)."""
        x = self.features(activity_n, density, charged_n, photon_n, surround)
        skips: List[torch.Tensor] = []
        for i, block in enumerate(self.down):
            if i > 0:
                x = self.pool(x)
            x = block(x)
            skips.append(x)
        for j, (upsample, block) in enumerate(zip(self.upsample, self.up)):
            x = upsample(x)
            x = block(torch.cat([x, skips[len(skips) - 2 - j]], dim=1))
        return charged_n + photon_n + self.head(x)

    def patch_scale(self, x: torch.Tensor) -> torch.Tensor:
        """Per-patch scale s [Bq/mL], shape (N, 1, 1, 1, 1): max(max A, max(charged + photon) / k)."""
        a_max = x[:, 0:1].amax(dim=(2, 3, 4), keepdim=True)
        d_max = (x[:, 2:3] + x[:, 3:4]).amax(dim=(2, 3, 4), keepdim=True) / self.k
        return torch.maximum(a_max, d_max)

    def normalised_inputs(self, x: torch.Tensor, scale: torch.Tensor) -> List[torch.Tensor]:
        """[A/s, ρ, charged/(s·k), photon/(s·k), surrounding density] for a batch and its scale."""
        safe = torch.where(scale > 0, scale, torch.ones_like(scale))
        return [x[:, 0:1] / safe, x[:, 1:2], x[:, 2:3] / (safe * self.k), x[:, 3:4] / (safe * self.k), x[:, 4:5]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.patch_scale(x)
        a_n, rho, c_n, p_n, surround = self.normalised_inputs(x, scale)
        return self.forward_normalised(a_n, rho, c_n, p_n, surround) * (scale * self.k)


def receptive_half_width_voxels(depth: int) -> int:
    """Half-width of the receptive field [voxels] of :class:`DeepDoseUNet` (two 3³ convs per level)."""
    half = 0
    for level in range(depth):  # contracting path incl. bottleneck
        half += 2 * 2 ** level
    for level in range(depth - 2, -1, -1):  # expanding path
        half += 2 * 2 ** level
    return half
