"""Photon and electron/positron transport in a voxel grid (vectorised over particles, torch).

Photons (1 keV cut-off): Woodcock (delta) tracking with an energy-dependent majorant; photoelectric
absorption, Klein–Nishina Compton and Rayleigh scattering from the cross-section tables of
:mod:`DeepDoseLib.physics`. Energy given to electrons by photons (photo- and Compton electrons) is
deposited where the interaction happens: their ranges (≤ 0.5 mm in soft tissue for the ≤ 0.35 MeV
Compton electrons of 511 keV photons, CSDA) are small against the 2–5 mm voxels of PET/SPECT
dosimetry. Fluorescence after photo-absorption is deposited locally as well (≤ 4 keV in tissue).

Electrons and positrons (10 keV cut-off, residual energy deposited locally): class-I condensed
history in the continuous-slowing-down approximation with the total (collision + radiative) stopping
power of the local material — bremsstrahlung energy is deposited along the track (radiative yield
≤ 1 % in tissue below 2.3 MeV), energy-loss straggling and delta rays are not modelled. Steps are
limited to a fraction of the energy (``max_energy_loss_fraction``) and to half the smallest voxel
size (in air, to the distance from the nearest denser voxel: the geometric 'safety'), and the density and material are looked up at the start of every step, which is where lung
and bone heterogeneity enter. Angular deflections: random-hinge Wentzel multiple scattering with the
exact first moment (see :mod:`DeepDoseLib.mc.interactions`). Positrons annihilate at rest into two
back-to-back 511 keV photons (annihilation in flight, ~1–2 % of positrons, is neglected).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .geometry import VoxelGrid
from .interactions import ELECTRON_MASS_MeV, WentzelSampler, isotropic_azimuth, rotate, sample_compton, \
    sample_thomson_cosine
from .sources import ELECTRON, PHOTON, POSITRON, Particles, isotropic_directions

MAX_ITERATIONS = 100000


@dataclass
class TransportSettings:
    """Cut-offs and step limits of the transport."""

    photon_cutoff_MeV: float = 0.001
    electron_cutoff_MeV: float = 0.010
    max_energy_loss_fraction: float = 0.25
    max_step_fraction_of_voxel: float = 0.5


class EnergyTally:
    """Energy deposited per voxel [MeV] (float64) and energy leaving the grid [MeV]."""

    def __init__(self, n_voxels: int, device, split_photons: bool = False,
                 photon_band_edges_MeV: Sequence[float] = ()) -> None:
        self.n_voxels = int(n_voxels)
        self.edep = torch.zeros(n_voxels, dtype=torch.float64, device=device)
        #: the part of ``edep`` deposited by photon interactions (None unless ``split_photons``)
        self.edep_photon = torch.zeros(n_voxels, dtype=torch.float64, device=device) if split_photons else None
        #: ``edep_photon`` split by the energy of the interacting photon: band k (bands between the sorted
        #: ``photon_band_edges_MeV``; band 0 below the first edge) at ``k·n_voxels + voxel`` (None without edges)
        edges = sorted(float(v) for v in photon_band_edges_MeV)
        self.band_edges_MeV = torch.tensor(edges, dtype=torch.float64, device=device) if edges else None
        self.edep_photon_bands = (torch.zeros((len(edges) + 1) * n_voxels, dtype=torch.float64, device=device)
                                  if edges else None)
        self.escaped = torch.zeros((), dtype=torch.float64, device=device)
        self.escaped_uncollided_photons = torch.zeros((), dtype=torch.float64, device=device)
        self.created = torch.zeros((), dtype=torch.float64, device=device)  # annihilation photons
        self.charged_path_length_mm = torch.zeros((), dtype=torch.float64, device=device)

    def deposit(self, flat: torch.Tensor, energy: torch.Tensor) -> None:
        if flat.numel():
            self.edep.index_add_(0, flat, energy.to(torch.float64))

    def deposit_photon(self, flat: torch.Tensor, energy: torch.Tensor, photon_energy_MeV: torch.Tensor) -> None:
        """Deposit ``energy`` [MeV] by interactions of photons of ``photon_energy_MeV`` (also kept apart,
        and by band, when the tally splits photons)."""
        self.deposit(flat, energy)
        if self.edep_photon is not None and flat.numel():
            self.edep_photon.index_add_(0, flat, energy.to(torch.float64))
        if self.edep_photon_bands is not None and flat.numel():
            band = torch.bucketize(photon_energy_MeV.to(torch.float64), self.band_edges_MeV, right=True)
            self.edep_photon_bands.index_add_(0, band * self.n_voxels + flat, energy.to(torch.float64))

    def escape(self, energy: torch.Tensor) -> None:
        if energy.numel():
            self.escaped += energy.to(torch.float64).sum()


class LogGridInterpolator:
    """Log-log interpolation in tables indexed (material, energy) on a uniform ln(E) grid."""

    def __init__(self, log_energy_grid_MeV: torch.Tensor) -> None:
        self.lnE0 = float(log_energy_grid_MeV[0])
        self.dlnE = float(log_energy_grid_MeV[1] - log_energy_grid_MeV[0])
        self.n = int(log_energy_grid_MeV.numel())

    def weights(self, energy_MeV: torch.Tensor) -> tuple:
        x = (torch.log(energy_MeV.clamp_min(1e-30)) - self.lnE0) / self.dlnE
        x = x.clamp(0, self.n - 1 - 1e-6)
        i = torch.floor(x).long()
        return i, (x - i).to(energy_MeV.dtype)

    @staticmethod
    def gather(log_table: torch.Tensor, material: torch.Tensor, i: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """exp of the linear interpolation of a log-valued table (n_materials, nE)."""
        lo = log_table[material, i]
        hi = log_table[material, i + 1]
        return torch.exp(lo + w * (hi - lo))


def _log(table: torch.Tensor) -> torch.Tensor:
    return torch.log(table.clamp_min(1e-30))


class Transport:
    """Transports particle batches through one voxel grid with one set of physics tables."""

    def __init__(self, grid: VoxelGrid, tables, settings: TransportSettings | None = None) -> None:
        self.grid, self.tables = grid, tables
        self.settings = settings or TransportSettings()
        dev, dt = grid.device, grid.dtype
        self.interp = LogGridInterpolator(tables.log_energy_grid_MeV.to(dev))
        mu = tables.photon_mu_rho_cm2_per_g.to(dev, torch.float64)
        self.log_photo = _log(mu[:, 0]).to(dt)
        self.log_incoh = _log(mu[:, 1]).to(dt)
        self.log_coh = _log(mu[:, 2]).to(dt)
        total = mu.sum(dim=1)
        majorant = torch.as_tensor(grid.photon_majorant_per_cm(total.cpu().numpy()), device=dev)  # [1/cm]
        self.log_majorant = _log(majorant).to(dt)[None, :]
        self.log_range = _log(tables.electron_csda_range_g_per_cm2.to(dev, torch.float64)).to(dt)
        self.log_lambda1 = _log(tables.electron_transport_mfp_g_per_cm2.to(dev, torch.float64)).to(dt)
        self.wentzel = WentzelSampler(dev, dt)
        self.zero_material = torch.zeros(1, dtype=torch.long, device=dev)

    # ------------------------------------------------------------------ photons
    def photons(self, p: Particles, tally: EnergyTally, gen: torch.Generator, keep_tail: int = 0) -> Particles:
        """Transport photons until absorbed, below the cut-off, or out of the grid.

        With ``keep_tail`` > 0 the loop stops once no more than that many photons are left and returns them
        (to be transported with the next chunk: the slow tail of a few long histories then costs no extra
        iterations); otherwise it returns an empty set.
        """
        grid, cut = self.grid, self.settings.photon_cutoff_MeV
        pos, d, e = p.position_mm.clone(), p.direction.clone(), p.energy_MeV.clone()
        collided = torch.zeros_like(e, dtype=torch.bool)
        for _ in range(MAX_ITERATIONS):
            if e.numel() <= keep_tail:
                return Particles(pos, d, e, torch.full(e.shape, PHOTON, dtype=torch.int8, device=e.device))
            i, w = self.interp.weights(e)
            mu_max = self.interp.gather(self.log_majorant, self.zero_material.expand_as(i), i, w)  # 1/cm
            u = torch.rand(e.numel(), 2, generator=gen, device=e.device, dtype=e.dtype)
            pos = pos + d * (-torch.log(u[:, 0].clamp_min(1e-12)) / mu_max * 10.0)[:, None]
            inside, flat = grid.locate(pos)
            tally.escape(e[~inside])
            tally.escaped_uncollided_photons += e[~inside & ~collided].to(torch.float64).sum()
            m, rho = grid.material[flat], grid.density[flat]
            photo = self.interp.gather(self.log_photo, m, i, w) * rho
            incoh = self.interp.gather(self.log_incoh, m, i, w) * rho
            coh = self.interp.gather(self.log_coh, m, i, w) * rho
            r = u[:, 1] * mu_max
            real = inside & (r < photo + incoh + coh)
            is_photo = real & (r < photo)
            is_compton = real & ~is_photo & (r < photo + incoh)
            is_rayleigh = real & ~is_photo & ~is_compton
            tally.deposit_photon(flat[is_photo], e[is_photo], e[is_photo])
            alive = inside & ~is_photo
            collided |= is_compton | is_rayleigh
            if is_compton.any():
                ci = is_compton.nonzero().squeeze(1)
                e_new, cos_t = sample_compton(e[ci], gen)
                tally.deposit_photon(flat[ci], e[ci].to(torch.float64) - e_new.to(torch.float64), e[ci])
                d[ci] = rotate(d[ci], cos_t, isotropic_azimuth(ci.numel(), gen, e.device, e.dtype))
                e[ci] = e_new
            if is_rayleigh.any():
                ri = is_rayleigh.nonzero().squeeze(1)
                cos_t = sample_thomson_cosine(ri.numel(), gen, e.device, e.dtype)
                d[ri] = rotate(d[ri], cos_t, isotropic_azimuth(ri.numel(), gen, e.device, e.dtype))
            low = alive & (e < cut)
            tally.deposit_photon(flat[low], e[low], e[low])
            alive &= ~low
            pos, d, e, collided = pos[alive], d[alive], e[alive], collided[alive]
        raise RuntimeError("photon transport did not finish (iteration limit)")

    # ---------------------------------------------------------------- electrons
    def electrons(self, p: Particles, tally: EnergyTally, gen: torch.Generator, keep_tail: int = 0) -> tuple:
        """Transport electrons and positrons.

        Returns (annihilation photons to transport next, charged particles left over when no more than
        ``keep_tail`` remained — see :meth:`photons`).
        """
        grid, s = self.grid, self.settings
        dev, dt = p.energy_MeV.device, p.energy_MeV.dtype
        pos, d, e = p.position_mm.clone(), p.direction.clone(), p.energy_MeV.clone()
        positron = p.kind == POSITRON
        max_step_cm = s.max_step_fraction_of_voxel * grid.min_spacing_mm / 10.0
        annihilation_sites = []
        for _ in range(MAX_ITERATIONS):
            if e.numel() <= keep_tail:
                break
            inside, flat = grid.locate(pos)
            tally.escape(e[~inside])  # escaping positrons annihilate outside the grid
            m, rho = grid.material[flat], grid.density[flat]
            below = inside & (e <= s.electron_cutoff_MeV)
            tally.deposit(flat[below], e[below])
            annihilation_sites.append(pos[below & positron])
            keep = inside & ~below
            pos, d, e, positron, m, rho, flat = pos[keep], d[keep], e[keep], positron[keep], m[keep], rho[keep], \
                flat[keep]
            if e.numel() == 0:
                break
            i, w = self.interp.weights(e)
            r_now = self.interp.gather(self.log_range, m, i, w)  # g/cm²
            e_target = e * (1.0 - s.max_energy_loss_fraction)
            i2, w2 = self.interp.weights(e_target.clamp_min(s.electron_cutoff_MeV))
            r_target = self.interp.gather(self.log_range, m, i2, w2)
            t_energy = torch.where(e_target > s.electron_cutoff_MeV, r_now - r_target, r_now)
            # geometric limit: half a voxel, or the air safety distance (no denser matter within it)
            geometric_cm = torch.clamp_min(grid.safety_mm[flat] / 10.0, max_step_cm)
            t = torch.minimum(t_energy, rho * geometric_cm).clamp_min(1e-12)
            stops = t >= r_now * (1 - 1e-6)
            e_new = torch.where(stops, torch.zeros_like(e), self.tables.energy_from_range(m, (r_now - t).clamp_min(0)))
            e_new = torch.minimum(e_new.to(dt), e)
            step_mm = t / rho * 10.0
            tally.charged_path_length_mm += step_mm.to(torch.float64).sum()
            # random hinge: move a uniform fraction, deflect, move the rest; deposit at the hinge
            n = e.numel()
            tau = torch.rand(n, generator=gen, device=dev, dtype=dt)
            hinge = pos + d * (tau * step_mm)[:, None]
            e_mid = 0.5 * (e + e_new).clamp_min(s.electron_cutoff_MeV)
            im, wm = self.interp.weights(e_mid)
            lam1 = self.interp.gather(self.log_lambda1, m, im, wm)
            cos_t = self.wentzel.sample_cosine(t / lam1, gen)
            d = rotate(d, cos_t, isotropic_azimuth(n, gen, dev, dt))
            in_h, flat_h = grid.locate(hinge)
            loss = e.to(torch.float64) - e_new.to(torch.float64)
            tally.deposit(flat_h[in_h], loss[in_h])
            tally.escape(loss[~in_h])
            end = hinge + d * ((1 - tau) * step_mm)[:, None]
            # a stopping particle ends at the hinge-continued end point with zero energy
            annihilation_sites.append(end[stops & positron])
            alive = ~stops
            pos, d, e, positron = end[alive], d[alive], e_new[alive], positron[alive]
        else:
            raise RuntimeError("electron transport did not finish (iteration limit)")
        kind = torch.where(positron, POSITRON, ELECTRON).to(torch.int8)
        leftover = Particles(pos, d, e, kind)
        sites = torch.cat(annihilation_sites) if annihilation_sites else torch.zeros((0, 3), device=dev, dtype=dt)
        n = sites.shape[0]
        if n == 0:
            return Particles(sites, sites.clone(), sites[:, 0], torch.zeros(0, dtype=torch.int8, device=dev)), leftover
        first = isotropic_directions(n, gen, dev, dt)
        photons = Particles(torch.cat((sites, sites)), torch.cat((first, -first)),
                            torch.full((2 * n,), ELECTRON_MASS_MeV, device=dev, dtype=dt),
                            torch.full((2 * n,), PHOTON, dtype=torch.int8, device=dev))
        tally.created += 2 * n * float(torch.tensor(ELECTRON_MASS_MeV, dtype=dt))  # exactly what is emitted
        return photons, leftover
