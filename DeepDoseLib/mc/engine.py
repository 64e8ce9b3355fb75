"""Monte Carlo dose-rate calculation: decays sampled from the activity map, transported, tallied.

Statistical uncertainty by the batch method: the decays are split into ``n_batches`` independent
batches of (nearly) equal size; the relative standard error of the mean per voxel is
s / (x̄ √B) with s the standard deviation of the batch estimates. Memory is bounded: each batch is
processed in chunks of decays (halved automatically on CUDA out-of-memory, and said so).
"""
from __future__ import annotations

import logging
import time

from typing import Callable, List, Optional, Sequence

import numpy as np
import torch

from ..devices import resolve_device
from ..errors import DeepDoseInputError
from ..nuclides import Nuclide, get_nuclide
from ..progress import ProgressCallback
from ..units import J_PER_MEV, KG_PER_G, MGY_PER_GY, S_PER_H
from .geometry import VoxelGrid
from .result import MonteCarloCancelled, MonteCarloResult, _validate  # noqa: F401  (re-exported)
from .sources import PHOTON, DecaySampler, Particles
from .transport import EnergyTally, Transport, TransportSettings

logger = logging.getLogger(__name__)


def _simulate_batch(batch_size: int, chunk: int, sampler: DecaySampler, transport: Transport, grid: VoxelGrid,
                    gen: torch.Generator, cpu_gen: torch.Generator, cancel, progress, done: int, n_decays: int,
                    start: float, name: str, pending: tuple, finish: bool, split_photons: bool = False,
                    photon_band_edges_MeV: tuple = ()):
    """One batch of decays in chunks.

    The few particles of a chunk's slow tail (≤ 1 % of the chunk) are carried into the next chunk, and
    from the last chunk of a batch into the next batch (``pending``), so that long histories cost no
    extra iterations; the last batch (``finish``) transports everything to the end. Energy is conserved
    exactly; a carried particle deposits into the next batch's tally, which the batch variance tolerates.
    """
    tally = EnergyTally(grid.n_voxels, grid.device, split_photons=split_photons,
                        photon_band_edges_MeV=photon_band_edges_MeV)
    emitted = 0.0
    remaining = batch_size
    pending_charged, pending_photons = pending
    while remaining > 0:
        if cancel is not None and cancel():
            raise MonteCarloCancelled(f"Monte Carlo cancelled after {done + batch_size - remaining} of {n_decays} "
                                      "decays; no result.")
        n = min(chunk, remaining)
        remaining -= n
        keep_tail = 0 if (remaining == 0 and finish) else max(64, n // 100)
        primaries, local_flat, local_e = sampler.sample(n, gen, cpu_gen)
        emitted += float(primaries.energy_MeV.to(torch.float64).sum())
        if local_flat is not None:
            tally.deposit(local_flat, local_e)
            emitted += float(local_e.sum())
        charged = primaries.kind != PHOTON
        charged_now = primaries.select(charged)
        if pending_charged is not None:
            charged_now = Particles.cat([pending_charged, charged_now])
        annihilation, pending_charged = transport.electrons(charged_now, tally, gen, keep_tail=keep_tail)
        photons_now = [primaries.select(~charged), annihilation]
        if pending_photons is not None:
            photons_now.insert(0, pending_photons)
        pending_photons = transport.photons(Particles.cat(photons_now), tally, gen, keep_tail=keep_tail)
        if progress is not None:
            finished = done + batch_size - remaining
            rate = finished / max(time.perf_counter() - start, 1e-9)
            progress(finished / n_decays, f"MC {name}: {finished:,}/{n_decays:,} decays ({rate:,.0f}/s)")
    return tally, emitted, (pending_charged, pending_photons)


def run_monte_carlo(activity_Bq_per_mL: np.ndarray, density_g_per_cm3: np.ndarray, material_labels: np.ndarray,
                    spacing_mm, nuclide: Nuclide | str, n_decays: int, seed: int = 0, device: str = "auto",
                    n_batches: int = 10, chunk_decays: Optional[int] = None,
                    settings: Optional[TransportSettings] = None, progress: Optional[ProgressCallback] = None,
                    cancel: Optional[Callable[[], bool]] = None, exclude_kinds: tuple = (),
                    split_photons: bool = False, photon_band_edges_MeV: Sequence[float] = (),
                    engine: str = "kernel", **kernel_options) -> MonteCarloResult:
    """Simulate ``n_decays`` decays of ``nuclide`` distributed like the activity map.

    ``engine``: ``"kernel"`` (default): the compiled transport kernel of
    :mod:`DeepDoseLib.mc.kernel_engine` (numba, CPU threads or CUDA), which also takes
    ``kernel_options`` (``target_uncertainty``, ``max_decays``, ``variance_reduction``, ``threads``);
    ``"torch"``: this module's vectorised torch engine, the reference implementation. On a CUDA device
    that numba cannot use, the torch engine runs instead (said in the notes).

    Args:
        activity_Bq_per_mL, density_g_per_cm3, material_labels: (z, y, x) arrays on one grid;
            material labels as in :func:`DeepDoseLib.tissue.materials`.
        spacing_mm: voxel size (x, y, z) [mm].
        seed: results are reproducible for a given seed, device and chunk size.
        chunk_decays: decays transported together (memory bound); default 200 000 on CPU,
            4 000 000 on CUDA.
        cancel: polled between chunks; returning True raises :class:`MonteCarloCancelled`.
        exclude_kinds: emission kinds left out (see :class:`DecaySampler`); default: all emissions.
        split_photons: also tally the energy deposited by photon interactions on its own
            (``photon_dose_rate_mGy_per_h``; the rest is the charged-particle dose).
        photon_band_edges_MeV: also split that photon part by the energy of the photon at the interaction
            (``photon_band_dose_rate_mGy_per_h``; implies ``split_photons``).
    """
    from ..physics import load_physics_tables

    if engine not in ("kernel", "torch"):
        raise DeepDoseInputError(f"Unknown Monte Carlo engine {engine!r}: use kernel or torch.")
    fallback_note = None
    if engine == "kernel":
        from .kernel_build import cuda_available, numba_available

        if not numba_available():
            fallback_note = "numba is not installed: the torch engine ran instead of the compiled kernel"
            logger.warning(fallback_note)
        elif resolve_device(device).startswith("cuda") and not cuda_available():
            fallback_note = "numba sees no CUDA GPU: the torch engine ran on CUDA instead of the compiled kernel"
            logger.warning(fallback_note)
        else:
            from .kernel_engine import run_monte_carlo_kernel

            return run_monte_carlo_kernel(activity_Bq_per_mL, density_g_per_cm3, material_labels, spacing_mm, nuclide,
                                          n_decays, seed=seed, device=device, n_batches=n_batches, settings=settings,
                                          progress=progress, cancel=cancel, exclude_kinds=exclude_kinds,
                                          split_photons=split_photons, photon_band_edges_MeV=photon_band_edges_MeV,
                                          **kernel_options)
    if kernel_options and fallback_note is None:
        raise DeepDoseInputError(f"{', '.join(sorted(kernel_options))}: options of the kernel engine only.")
    if kernel_options:
        notes_ignored = f"ignored without the kernel: {', '.join(sorted(kernel_options))}"
        fallback_note += f"; {notes_ignored}"

    activity = np.asarray(activity_Bq_per_mL, dtype=np.float64)
    density = np.asarray(density_g_per_cm3, dtype=np.float32)
    labels = np.asarray(material_labels, dtype=np.uint8)
    _validate(activity, density, labels, n_decays)
    nuc = get_nuclide(nuclide) if isinstance(nuclide, str) else nuclide
    dev = resolve_device(device)
    n_decays = int(n_decays)
    n_batches = max(1, min(int(n_batches), n_decays))
    chunk = int(chunk_decays or (4_000_000 if dev.startswith("cuda") else 200_000))
    notes: List[str] = ([fallback_note] if fallback_note else []) + ["decay positions drawn independently"]

    grid = VoxelGrid(density, labels, spacing_mm, device=dev)
    tables = load_physics_tables(device=dev)
    transport = Transport(grid, tables, settings)
    sampler = DecaySampler(activity, spacing_mm, nuc, device=dev, exclude_kinds=tuple(exclude_kinds))
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    cpu_gen = torch.Generator().manual_seed(int(seed) + 1)

    sum_x = torch.zeros(grid.n_voxels, dtype=torch.float64, device=dev)
    sum_x2 = torch.zeros(grid.n_voxels, dtype=torch.float64, device=dev)
    deposited_per_voxel = torch.zeros(grid.n_voxels, dtype=torch.float64, device=dev)
    band_edges = tuple(sorted(float(v) for v in photon_band_edges_MeV))
    if band_edges and (band_edges[0] <= 0 or len(set(band_edges)) != len(band_edges)):
        raise ValueError(f"photon band edges must be distinct and > 0 MeV (got {photon_band_edges_MeV})")
    split_photons = split_photons or bool(band_edges)
    photon_per_voxel = torch.zeros(grid.n_voxels, dtype=torch.float64, device=dev) if split_photons else None
    bands_per_voxel = (torch.zeros((len(band_edges) + 1) * grid.n_voxels, dtype=torch.float64, device=dev)
                       if band_edges else None)
    emitted = deposited = escaped = annihilation_MeV = 0.0
    sizes = [n_decays // n_batches + (1 if b < n_decays % n_batches else 0) for b in range(n_batches)]
    start, done = time.perf_counter(), 0
    pending = (None, None)  # tails carried from one batch into the next (finished in the last batch)
    for b, batch_size in enumerate(sizes):
        while True:  # a batch restarts from scratch with a smaller chunk after a CUDA out-of-memory error
            try:
                tally, batch_emitted, pending_out = _simulate_batch(
                    batch_size, chunk, sampler, transport, grid, gen, cpu_gen, cancel, progress, done, n_decays,
                    start, nuc.name, pending, finish=b == len(sizes) - 1, split_photons=split_photons,
                    photon_band_edges_MeV=band_edges)
                pending = pending_out
                break
            except torch.cuda.OutOfMemoryError:
                if chunk <= 1000:
                    raise
                chunk //= 2
                torch.cuda.empty_cache()
                notes.append(f"CUDA out of memory: batch {b + 1} restarted with chunks of {chunk} decays")
                logger.warning(notes[-1])
        done += batch_size
        emitted += batch_emitted
        x = tally.edep / batch_size  # MeV per decay per voxel
        sum_x += x
        sum_x2 += x * x
        deposited_per_voxel += tally.edep
        if photon_per_voxel is not None:
            photon_per_voxel += tally.edep_photon
        if bands_per_voxel is not None:
            bands_per_voxel += tally.edep_photon_bands
        emitted += float(tally.created)
        annihilation_MeV += float(tally.created)
        deposited += float(tally.edep.sum())
        escaped += float(tally.escaped)
    seconds = time.perf_counter() - start

    mean = deposited_per_voxel / n_decays  # exact mean over all decays (batch sizes may differ by one)
    if n_batches > 1:
        batch_mean = sum_x / n_batches
        var = (sum_x2 - n_batches * batch_mean * batch_mean).clamp_min(0) / (n_batches * (n_batches - 1))
        rel = torch.where(mean > 0, torch.sqrt(var) / mean.clamp_min(1e-300), torch.zeros_like(mean))
    else:
        rel = torch.full_like(mean, float("nan"))
        notes.append("one batch only: no uncertainty estimate")
    mass_kg = grid.density.to(torch.float64) * grid.voxel_volume_cm3 * KG_PER_G
    to_mGy_per_h = sampler.total_activity_Bq * J_PER_MEV / mass_kg * S_PER_H * MGY_PER_GY / n_decays

    def as_dose(energy_MeV: torch.Tensor) -> np.ndarray:
        return (energy_MeV * to_mGy_per_h).to(torch.float32).cpu().numpy().reshape(grid.shape)

    bands = None
    if bands_per_voxel is not None:
        bands = np.stack([as_dose(part) for part in bands_per_voxel.view(len(band_edges) + 1, grid.n_voxels)])

    return MonteCarloResult(as_dose(deposited_per_voxel), rel.to(torch.float32).cpu().numpy().reshape(grid.shape),
                            n_decays, int(seed), seconds, dev, emitted, deposited, escaped, sampler.total_activity_Bq,
                            annihilation_MeV, notes,
                            as_dose(photon_per_voxel) if photon_per_voxel is not None else None, bands)
