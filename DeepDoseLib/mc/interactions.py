"""Vectorised sampling of scattering angles (torch; every function handles a batch of particles).

- Compton scattering: Klein–Nishina, Butcher & Messel rejection (as in EGS and Geant4's standard
  model); atomic binding and Doppler broadening are neglected (they matter below ~50 keV, where the
  photoelectric effect dominates in tissue).
- Rayleigh scattering: Thomson angular distribution (1 + cos²θ); the atomic form factor, which makes
  real Rayleigh scattering strongly forward, is neglected — Rayleigh is < 10 % of the attenuation in
  tissue above 30 keV, so the effect on dose is small, and conservative (broader angles).
- Electron multiple scattering: the Wentzel (screened Rutherford) distribution whose screening
  parameter is chosen per step so that the mean cosine equals exp(−t/λ1), the exact first
  Goudsmit–Saunderson moment for a step of mass thickness t and first transport mean free path λ1.
"""
from __future__ import annotations

import math

import torch

ELECTRON_MASS_MeV = 0.51099895


def rotate(direction: torch.Tensor, cos_theta: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """New unit directions (N, 3) after a deflection by polar angle θ and azimuth φ."""
    u, v, w = direction.unbind(1)
    sin_theta = torch.sqrt((1 - cos_theta * cos_theta).clamp_min(0))
    cphi, sphi = torch.cos(phi), torch.sin(phi)
    t = torch.sqrt((1 - w * w).clamp_min(0))
    regular = t > 1e-6
    t_safe = torch.where(regular, t, torch.ones_like(t))
    nu = u * cos_theta + sin_theta * (u * w * cphi - v * sphi) / t_safe
    nv = v * cos_theta + sin_theta * (v * w * cphi + u * sphi) / t_safe
    nw = w * cos_theta - sin_theta * t * cphi
    sign = torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))
    nu = torch.where(regular, nu, sin_theta * cphi)
    nv = torch.where(regular, nv, sin_theta * sphi)
    nw = torch.where(regular, nw, sign * cos_theta)
    out = torch.stack((nu, nv, nw), dim=1)
    return out / out.norm(dim=1, keepdim=True)


def sample_compton(energy_MeV: torch.Tensor, generator: torch.Generator) -> tuple:
    """Klein–Nishina: (scattered photon energy [MeV], cos θ) for photons of ``energy_MeV``."""
    k = energy_MeV / ELECTRON_MASS_MeV
    eps0 = 1.0 / (1.0 + 2.0 * k)
    eps0_sq = eps0 * eps0
    alpha1 = -torch.log(eps0)
    alpha2 = 0.5 * (1.0 - eps0_sq)
    eps = torch.empty_like(energy_MeV)
    pending = torch.ones_like(energy_MeV, dtype=torch.bool)
    for _ in range(1000):
        idx = pending.nonzero().squeeze(1)
        if idx.numel() == 0:
            break
        r = torch.rand(idx.numel(), 3, generator=generator, device=energy_MeV.device, dtype=energy_MeV.dtype)
        a1, a2, e0sq, kk = alpha1[idx], alpha2[idx], eps0_sq[idx], k[idx]
        first = a1 / (a1 + a2) > r[:, 0]
        e_first = torch.exp(-a1 * r[:, 1])
        e_second = torch.sqrt(e0sq + (1.0 - e0sq) * r[:, 1])
        e = torch.where(first, e_first, e_second)
        one_minus_cos = (1.0 - e) / (e * kk)
        sin2 = one_minus_cos * (2.0 - one_minus_cos)
        accept = (1.0 - e * sin2 / (1.0 + e * e)) >= r[:, 2]
        eps[idx[accept]] = e[accept]
        pending[idx[accept]] = False
    cos_theta = (1.0 - (1.0 - eps) / (eps * k)).clamp(-1.0, 1.0)
    return eps * energy_MeV, cos_theta


def sample_thomson_cosine(n: int, generator: torch.Generator, device, dtype) -> torch.Tensor:
    """cos θ with density ∝ 1 + cos²θ on [−1, 1] (exact inverse of the cubic CDF)."""
    u = torch.rand(n, generator=generator, device=device, dtype=torch.float64)
    # CDF: (μ³/3 + μ + 4/3) / (8/3) = u  →  μ³ + 3μ + 4 − 8u = 0 (Cardano, one real root)
    q = 2.0 - 4.0 * u
    d = torch.sqrt(q * q + 1.0)
    mu = torch.sign(-q + d) * (-q + d).abs() ** (1 / 3) + torch.sign(-q - d) * (-q - d).abs() ** (1 / 3)
    return mu.clamp(-1, 1).to(dtype)


class WentzelSampler:
    """Multiple-scattering deflections with a prescribed mean (1 − cos θ)."""

    def __init__(self, device, dtype=torch.float32) -> None:
        a = torch.logspace(-9, 5, 4000, dtype=torch.float64)
        g = 2 * a * ((1 + a) * torch.log1p(1 / a) - 1)
        self.log_a = torch.log(a).to(device)
        self.g = g.to(device)
        self.dtype = dtype

    def screening_for_mean(self, mean_one_minus_cos: torch.Tensor) -> torch.Tensor:
        """Screening parameter A such that ⟨1 − cos θ⟩ of the Wentzel distribution equals the target."""
        target = mean_one_minus_cos.to(torch.float64).clamp(float(self.g[0]), float(self.g[-1]))
        i = torch.searchsorted(self.g, target).clamp(1, self.g.numel() - 1)
        g0, g1 = self.g[i - 1], self.g[i]
        w = (target - g0) / (g1 - g0)
        return torch.exp(self.log_a[i - 1] + w * (self.log_a[i] - self.log_a[i - 1]))

    def sample_cosine(self, step_over_lambda1: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """cos θ after a step of ``t/λ1`` transport mean free paths (isotropic beyond ~7 λ1)."""
        mean = -torch.expm1(-step_over_lambda1.to(torch.float64))  # 1 − exp(−t/λ1)
        a = self.screening_for_mean(mean)
        xi = torch.rand(a.shape, generator=generator, device=a.device, dtype=torch.float64)
        one_minus_mu = 2 * a * xi / (1 + a - xi)
        iso = mean > 0.999
        mu = torch.where(iso, 2 * xi - 1, 1 - one_minus_mu)
        return mu.clamp(-1, 1).to(self.dtype)


def isotropic_azimuth(n: int, generator: torch.Generator, device, dtype) -> torch.Tensor:
    """Azimuthal angles uniform in [0, 2π)."""
    return torch.rand(n, generator=generator, device=device, dtype=dtype) * (2 * math.pi)
