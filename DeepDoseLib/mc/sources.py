"""Primary particles of radioactive decays sampled from an activity map (ICRP-107 emissions).

Each emission line of the nuclide contributes ``N × yield`` particles on average (integer part
exactly, fractional part by a Bernoulli draw), each one attached to a decay position drawn from the
activity map (uniform inside the source voxel). This preserves the mean emitted energy per decay
exactly in expectation; correlations between particles of the same decay are irrelevant for dose.

Beta particles (β− and β+) are sampled from the continuous ICRP-107 spectrum, not their mean energy.
ICRP-107 lists β− and β+ in one spectrum; for nuclides emitting both (Cu-64) each particle's sign is
drawn from the branch yields and the energy from the common spectrum (an approximation stated here).
The ICRP-107 "annihilation" photons are not emitted at the decay: positrons are transported and
annihilate at rest into two 511 keV photons (see :mod:`DeepDoseLib.mc.engine`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..nuclides import Nuclide

ELECTRON, POSITRON, PHOTON = 0, 1, 2
#: Emission kinds deposited at the decay site (alphas and recoils: µm ranges).
LOCAL_KINDS = ("alpha", "alpha recoil")
ELECTRON_LINE_KINDS = ("IE", "auger")
PHOTON_LINE_KINDS = ("gamma", "X")


@dataclass
class Particles:
    """A set of particles: position (N, 3) [mm, grid frame], direction (N, 3), energy (N,) [MeV], kind (N,)."""

    position_mm: torch.Tensor
    direction: torch.Tensor
    energy_MeV: torch.Tensor
    kind: torch.Tensor

    def __len__(self) -> int:
        return int(self.energy_MeV.shape[0])

    @staticmethod
    def cat(parts: "list[Particles]") -> "Particles":
        return Particles(*(torch.cat([getattr(p, f) for p in parts]) for f in
                           ("position_mm", "direction", "energy_MeV", "kind")))

    def select(self, mask: torch.Tensor) -> "Particles":
        return Particles(self.position_mm[mask], self.direction[mask], self.energy_MeV[mask], self.kind[mask])


def isotropic_directions(n: int, generator: torch.Generator, device: str, dtype=torch.float32) -> torch.Tensor:
    """Unit vectors (n, 3) uniformly distributed on the sphere."""
    u = torch.rand(n, generator=generator, device=device, dtype=dtype) * 2 - 1
    phi = torch.rand(n, generator=generator, device=device, dtype=dtype) * (2 * np.pi)
    s = torch.sqrt((1 - u * u).clamp_min(0))
    return torch.stack((s * torch.cos(phi), s * torch.sin(phi), u), dim=1)


class DecaySampler:
    """Samples decay positions from an activity map and the particles each decay emits.

    Args:
        activity_Bq_per_mL: (z, y, x) array; negative/NaN values must have been rejected before.
        spacing_mm: voxel size (x, y, z).
        nuclide: decay data.
        exclude_kinds: emission kinds not to simulate ("beta", "IE", "auger", "gamma", "X", "alpha"),
            e.g. to reproduce published kernels that omit conversion electrons.
    """

    def __init__(self, activity_Bq_per_mL: np.ndarray, spacing_mm, nuclide: Nuclide, device: str = "cpu",
                 dtype=torch.float32, exclude_kinds: tuple = ()) -> None:
        self.shape = activity_Bq_per_mL.shape
        self.spacing = torch.tensor([float(s) for s in spacing_mm], device=device, dtype=dtype)
        self.device, self.dtype = device, dtype
        flat = np.asarray(activity_Bq_per_mL, dtype=np.float64).ravel()
        self.source_voxels = torch.as_tensor(np.flatnonzero(flat > 0), device=device)
        cdf = np.cumsum(flat[flat > 0])
        self.total = float(cdf[-1]) if cdf.size else 0.0
        self.cdf = torch.as_tensor(cdf / max(self.total, 1e-300), device=device, dtype=torch.float64)
        self.nuclide = nuclide
        beta_minus = nuclide.lines("beta-").yield_per_decay
        beta_plus = nuclide.lines("beta+").yield_per_decay
        self.beta_yield = beta_minus + beta_plus
        self.positron_fraction = beta_plus / self.beta_yield if self.beta_yield > 0 else 0.0
        e, pdf = nuclide.beta_spectrum_energy_MeV, nuclide.beta_spectrum_per_MeV
        if "beta" in exclude_kinds:
            self.beta_yield = 0.0
        if self.beta_yield > 0 and e.size > 1:
            cdf_e = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(e))])
            self.spectrum_energy = torch.as_tensor(e, device=device, dtype=torch.float64)
            self.spectrum_pdf = torch.as_tensor(pdf, device=device, dtype=torch.float64)
            self.spectrum_cdf = torch.as_tensor(cdf_e / cdf_e[-1], device=device, dtype=torch.float64)
        else:
            self.spectrum_energy = None
        self.lines = []  # (kind, energies tensor, yields tensor)
        for kind, particle in [(k, ELECTRON) for k in ELECTRON_LINE_KINDS] + [(k, PHOTON) for k in PHOTON_LINE_KINDS]:
            if kind in exclude_kinds:
                continue
            lines = nuclide.lines(kind)
            if lines.energies_MeV.size:
                self.lines.append((particle, torch.as_tensor(lines.energies_MeV, device=device, dtype=torch.float64),
                                   lines.yields_per_decay))
        self.local_energy_per_decay_MeV = nuclide.energy_per_decay_MeV(
            [k for k in LOCAL_KINDS if k not in exclude_kinds])

    @property
    def total_activity_Bq(self) -> float:
        """Σ activity × voxel volume [Bq]."""
        return self.total * float(torch.prod(self.spacing)) * 1e-3

    def positions(self, n: int, generator: torch.Generator) -> tuple:
        """n decay positions [mm, grid frame: voxel centre i at i·spacing] and their flat voxel indices."""
        u = torch.rand(n, generator=generator, device=self.device, dtype=torch.float64)
        k = torch.searchsorted(self.cdf, u).clamp_max(self.cdf.numel() - 1)
        flat = self.source_voxels[k]
        nz, ny, nx = self.shape
        idx = torch.stack((flat % nx, (flat // nx) % ny, flat // (nx * ny)), dim=1).to(self.dtype)
        jitter = torch.rand(n, 3, generator=generator, device=self.device, dtype=self.dtype) - 0.5
        return (idx + jitter) * self.spacing, flat

    def sample_beta_energies(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Energies [MeV] from the tabulated spectrum (inverse CDF of the piecewise-linear pdf)."""
        u = torch.rand(n, generator=generator, device=self.device, dtype=torch.float64)
        i = torch.searchsorted(self.spectrum_cdf, u).clamp(1, self.spectrum_cdf.numel() - 1)
        c0, c1 = self.spectrum_cdf[i - 1], self.spectrum_cdf[i]
        e0, e1 = self.spectrum_energy[i - 1], self.spectrum_energy[i]
        p0, p1 = self.spectrum_pdf[i - 1], self.spectrum_pdf[i]
        # exact inverse of the piecewise-linear pdf inside the bin: a x² + b x + c = 0, stable root form
        width = e1 - e0
        frac = ((u - c0) / (c1 - c0).clamp_min(1e-300)).clamp(0, 1)
        a = (p1 - p0) / (2 * width)
        b = p0
        c = -frac * 0.5 * (p0 + p1) * width
        x = (-2 * c) / (b + torch.sqrt((b * b - 4 * a * c).clamp_min(0))).clamp_min(1e-300)
        return torch.minimum(e0 + x, e1).to(self.dtype)

    def _count(self, mean: float, generator: torch.Generator) -> int:
        whole = int(np.floor(mean))
        frac = mean - whole
        return whole + int(torch.rand(1, generator=generator, device="cpu").item() < frac)

    def sample(self, n_decays: int, generator: torch.Generator, cpu_generator: torch.Generator) -> tuple:
        """Particles emitted by ``n_decays`` decays, plus energy deposited locally (alphas) per decay voxel.

        Returns:
            (Particles, local_flat_voxels, local_energy_MeV): positions in mm of the grid frame.
        """
        parts = []
        if self.spectrum_energy is not None:
            n = self._count(n_decays * self.beta_yield, cpu_generator)
            if n:
                pos, _ = self.positions(n, generator)
                kind = torch.where(torch.rand(n, generator=generator, device=self.device) < self.positron_fraction,
                                   POSITRON, ELECTRON)
                parts.append(Particles(pos, isotropic_directions(n, generator, self.device, self.dtype),
                                       self.sample_beta_energies(n, generator), kind.to(torch.int8)))
        for particle, energies, yields in self.lines:
            counts = [self._count(n_decays * float(y), cpu_generator) for y in yields]
            total = sum(counts)
            if total == 0:
                continue
            e = torch.repeat_interleave(energies, torch.as_tensor(counts, device=self.device)).to(self.dtype)
            pos, _ = self.positions(total, generator)
            parts.append(Particles(pos, isotropic_directions(total, generator, self.device, self.dtype), e,
                                   torch.full((total,), particle, dtype=torch.int8, device=self.device)))
        local_flat = local_energy = None
        if self.local_energy_per_decay_MeV > 0:
            _, local_flat = self.positions(n_decays, generator)
            local_energy = torch.full((n_decays,), self.local_energy_per_decay_MeV, device=self.device,
                                      dtype=torch.float64)
        if not parts:
            empty = torch.zeros((0, 3), device=self.device, dtype=self.dtype)
            return Particles(empty, empty.clone(), empty[:, 0], torch.zeros(0, dtype=torch.int8, device=self.device)), \
                local_flat, local_energy
        return Particles.cat(parts), local_flat, local_energy
