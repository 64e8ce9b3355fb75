"""Monte Carlo dose rate with the compiled transport kernel (numba; CPU threads or a CUDA GPU).

Same physics, tables, inputs and result as the torch reference engine (:mod:`DeepDoseLib.mc.engine`),
but each CPU thread / GPU thread follows whole decays (:mod:`DeepDoseLib.mc.kernel_source`).

Reproducibility: a history's random numbers depend only on (seed, history index) and the tallies are
64-bit integers (1e-9 MeV units), so a seed gives bit-identical dose and uncertainty on any number of
CPU threads. (The CPU and the GPU agree within statistics, not bit for bit: their floating-point
libraries differ.)

Uncertainty: batch method as the torch engine (``n_batches`` batches of equal size; s/(x̄√B)). With
``target_uncertainty`` the run adds batches of the same size until the median relative uncertainty in
tissue voxels (ρ ≥ 0.05 g/cm³) whose dose rate is above half the tissue maximum reaches the target,
or ``max_decays`` is spent.
"""
from __future__ import annotations

import logging
import math
import time
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import DeepDoseInputError
from ..nuclides import Nuclide, get_nuclide
from ..units import J_PER_MEV, KG_PER_G, MGY_PER_GY, S_PER_H
from . import kernel_source as ks
from .result import MonteCarloCancelled, MonteCarloResult, _validate
from .geometry import VoxelGrid
from .sources import DecaySampler
from .transport import TransportSettings

logger = logging.getLogger(__name__)

#: voxels at least this dense [g/cm³] are tissue for the stopping rule (the maximum in air is no target)
TISSUE_DENSITY_g_per_cm3 = 0.05
#: photon-kerma scoring rate of the variance-reduced mode: at least this many score points per voxel
SCORE_POINTS_PER_VOXEL = 1.0
#: Russian roulette: photons below this weight survive with probability weight / W_SURVIVE
W_MIN, W_SURVIVE = 0.1, 0.5
#: decays per CPU block (the unit of work of a thread) and per kernel launch
BLOCK_DECAYS = 64
CPU_LAUNCH_DECAYS = 250_000
CUDA_LAUNCH_DECAYS = 8_000_000


def parse_target_uncertainty(text: Optional[str]) -> Optional[float]:
    """``"2%"`` or ``"0.02"`` → 0.02 (a fraction); None → None. Anything else: :class:`DeepDoseInputError`."""
    if text is None:
        return None
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise DeepDoseInputError(f"Target uncertainty {text!r}: give a percentage such as 2% or a fraction such as "
                                 "0.02.") from None
    if not 0.0 < value < 1.0:
        raise DeepDoseInputError(f"Target uncertainty {text!r} must lie between 0 and 100 %.")
    return value


def hot_tissue_median_uncertainty(dose: np.ndarray, relative_uncertainty: np.ndarray,
                                  density_g_per_cm3: np.ndarray) -> float:
    """Median relative uncertainty over tissue voxels (ρ ≥ 0.05 g/cm³) above half the tissue maximum."""
    tissue = np.asarray(density_g_per_cm3) >= TISSUE_DENSITY_g_per_cm3
    if not tissue.any() or not np.any(dose[tissue] > 0):
        return float("nan")
    hot = tissue & (dose > 0.5 * dose[tissue].max())
    return float(np.median(relative_uncertainty[hot]))


def emitted_at_rest(energy_MeV: np.ndarray, kind: np.ndarray, settings: TransportSettings,
                    split_photons: bool) -> np.ndarray:
    """Lines whose whole energy the transport would deposit in the emission voxel at once: electrons at or
    below the electron cut-off and photons below the photon cut-off (e.g. 1.1 Auger electrons and 1.3 X-rays
    per Lu-177 decay). Their mean energy per decay joins the local deposit: the same expected dose in the same
    voxel, less variance, and 2.4 of Lu-177's 2.8 line emissions per decay not sampled. Photons stay sampled
    when the photon dose is split out (a sub-cut-off photon's energy counts as photon dose there)."""
    electron_at_rest = (kind != ks.PHOTON) & (energy_MeV <= settings.electron_cutoff_MeV)
    photon_at_rest = (kind == ks.PHOTON) & (energy_MeV < settings.photon_cutoff_MeV) & (not split_photons)
    return electron_at_rest | photon_at_rest


class KernelProblem:
    """The arrays the kernel reads: grid, packed log tables, source, parameters (all NumPy)."""

    def __init__(self, density: np.ndarray, labels: np.ndarray, spacing_mm, settings: TransportSettings,
                 variance_reduction: bool, band_edges: Sequence[float], split_photons: bool,
                 sampler: Optional[DecaySampler] = None, range_rejection: bool = True) -> None:
        from ..physics import load_physics_tables
        from ..physics.photons import klein_nishina_energy_transfer_fraction

        grid = VoxelGrid(density, labels, spacing_mm)  # for the safety distance and the checks it makes
        self.shape = grid.shape
        self.n_voxels = grid.n_voxels
        tables = load_physics_tables()
        log_e = tables.log_energy_grid_MeV.double().numpy()
        mu = tables.photon_mu_rho_cm2_per_g.double().numpy()  # (rows, 3, nE)
        n_rows = mu.shape[0]
        energy = np.exp(log_e)
        dep = mu[:, 0] + mu[:, 1] * klein_nishina_energy_transfer_fraction(energy)[None, :]
        rows = [mu[:, 0], mu[:, 1], mu[:, 2], dep, tables.electron_csda_range_g_per_cm2.double().numpy(),
                tables.electron_transport_mfp_g_per_cm2.double().numpy(), mu.sum(axis=1)]
        self.tab = np.ascontiguousarray(np.log(np.clip(np.stack(rows, axis=1), 1e-30, None)))
        assert self.tab.shape == (n_rows, ks.N_TAB, log_e.size)
        self.majorant = np.log(np.clip(grid.photon_majorant_per_cm(mu.sum(axis=1)), 1e-30, None))
        # compact per-voxel arrays (5 bytes a voxel): the random lookups of the transport stay in cache
        self.density = np.ascontiguousarray(density, dtype=np.float32).ravel()
        self.material = np.ascontiguousarray(labels, dtype=np.uint8).ravel()
        self.safety = grid.safety_mm.float().numpy()
        self.went, ln_s0, d_ln_s = _wentzel_inverse_table()
        self.rinv = _range_inverse_table(self.tab[:, ks.T_RANGE], par_dlne=(log_e[-1] - log_e[0]) / (log_e.size - 1),
                                         lne0=log_e[0])
        self.edges = np.asarray(sorted(float(v) for v in band_edges) or [0.0], dtype=np.float64)
        n_bands = len(band_edges)
        self.n_tally = (2 + n_bands + 1) if n_bands else (2 if split_photons else 1)
        spacing = [float(s) for s in spacing_mm]
        par = np.zeros(ks.N_PAR)
        par[ks.P_LNE0], par[ks.P_DLNE] = log_e[0], (log_e[-1] - log_e[0]) / (log_e.size - 1)
        par[ks.P_PHOTON_CUT], par[ks.P_ELECTRON_CUT] = settings.photon_cutoff_MeV, settings.electron_cutoff_MeV
        par[ks.P_MAX_LOSS] = settings.max_energy_loss_fraction
        par[ks.P_LN_KEEP] = math.log(1.0 - settings.max_energy_loss_fraction)
        par[ks.P_LN_ECUT] = math.log(settings.electron_cutoff_MeV)
        par[ks.P_MAX_STEP_CM] = settings.max_step_fraction_of_voxel * min(spacing) / 10.0
        par[ks.P_VR] = 1.0 if variance_reduction else 0.0
        par[ks.P_MU_SCORE] = SCORE_POINTS_PER_VOXEL / (min(spacing) / 10.0)
        par[ks.P_W_MIN], par[ks.P_W_SURVIVE] = W_MIN, W_SURVIVE
        par[ks.P_SX], par[ks.P_SY], par[ks.P_SZ] = spacing
        par[ks.P_LNS0], par[ks.P_DLNS] = ln_s0, d_ln_s
        par[ks.P_RANGE_REJECTION] = 1.0 if range_rejection else 0.0
        ipar = np.zeros(ks.N_IPAR, dtype=np.int64)
        ipar[ks.I_NE] = log_e.size
        ipar[ks.I_NZ], ipar[ks.I_NY], ipar[ks.I_NX] = self.shape
        ipar[ks.I_NBANDS], ipar[ks.I_NTALLY], ipar[ks.I_NWENTZEL] = n_bands, self.n_tally, self.went.size
        ipar[ks.I_NRINV] = self.rinv.shape[1] - 3
        self.spec = np.zeros((3, 2))
        self.lines = np.zeros((3, 1))
        self.src_cdf = np.ones(1)
        self.src_voxel = np.zeros(1, dtype=np.int64)
        self.src_guide = np.zeros(1, dtype=np.int64)
        if sampler is not None:
            self.src_cdf = sampler.cdf.double().numpy()
            self.src_voxel = sampler.source_voxels.numpy().astype(np.int64)
            # guide table of the inverse-CDF search (kernel_source.search_guided), one entry per source voxel
            self.src_guide = np.searchsorted(self.src_cdf, np.arange(self.src_cdf.size) / self.src_cdf.size,
                                             side="left").astype(np.int64)
            ipar[ks.I_NSRC] = self.src_cdf.size
            if sampler.spectrum_energy is not None:
                par[ks.P_BETA_YIELD] = sampler.beta_yield
                par[ks.P_POSITRON_FRACTION] = sampler.positron_fraction
                self.spec = np.stack([sampler.spectrum_energy.numpy(), sampler.spectrum_pdf.numpy(),
                                      sampler.spectrum_cdf.numpy()])
            energies, kinds, yields = [], [], []
            for particle, e, y in sampler.lines:
                energies.append(e.numpy())
                kinds.append(np.full(e.shape[0], float(particle)))
                yields.append(np.asarray(y, dtype=np.float64))
            local_MeV = sampler.local_energy_per_decay_MeV
            if energies:
                e, kind, y = np.concatenate(energies), np.concatenate(kinds), np.concatenate(yields)
                at_emission = emitted_at_rest(e, kind, settings, split_photons)
                local_MeV += float(np.sum(e[at_emission] * y[at_emission]))
                e, kind, y = e[~at_emission], kind[~at_emission], y[~at_emission]
                if y.sum() > 0:
                    par[ks.P_LINE_YIELD] = y.sum()
                    self.lines = np.stack([e, kind, np.cumsum(y) / y.sum()])
            par[ks.P_LOCAL_MeV] = local_MeV
        ipar[ks.I_NSPEC] = self.spec.shape[1]
        ipar[ks.I_NLINES] = self.lines.shape[1]
        self.par, self.ipar = par, ipar

    def common_args(self) -> tuple:
        return (self.tab, self.majorant, self.density, self.material, self.safety, self.went, self.rinv, self.edges,
                self.par, self.ipar)


def _wentzel_inverse_table(n: int = 4000) -> tuple:
    """ln A of the Wentzel screening parameter on a uniform grid of ln s (s: step in first transport mean free
    paths), from the exact first moment ⟨1 − cos θ⟩ = 1 − e^−s = 2A((1 + A) ln(1 + 1/A) − 1), for A from 1e-9
    (the torch engine's range) up to ⟨1 − cos θ⟩ = 0.999, where the kernel turns isotropic:
    (table, ln s0, Δ ln s). Tabulated on ln s so that a step needs ln s = ln t − ln λ1 (one logarithm), not
    λ1, s, e^−s and ln⟨1 − cos θ⟩."""
    a = np.logspace(-9, 5, 20000)
    g = 2 * a * ((1 + a) * np.log1p(1 / a) - 1)
    ln_s_of_g = np.log(-np.log1p(-np.clip(g, None, 0.9999999)))
    ln_s = np.linspace(ln_s_of_g[0], np.log(-np.log(1e-3)), n)
    return np.interp(ln_s, ln_s_of_g, np.log(a)), float(ln_s[0]), float(ln_s[1] - ln_s[0])


def _range_inverse_table(log_range: np.ndarray, par_dlne: float, lne0: float, n: int = 4096) -> np.ndarray:
    """Per material row: [ln R0, Δ ln R, d ln E/d ln R below R0, ln E at n uniform ln R from R0 to R_max]
    (the inverse of the log-log range table, exact at the table's nodes; 17 × finer than its grid)."""
    n_rows, n_e = log_range.shape
    log_e = lne0 + par_dlne * np.arange(n_e)
    out = np.zeros((n_rows, 3 + n))
    for m in range(n_rows):
        lr = log_range[m]
        if not np.all(np.diff(lr) > 0):  # rows of materials not in the tables (all 1e-30): never used
            out[m, 1], out[m, 2] = 1.0, 1.0
            continue
        grid = np.linspace(lr[0], lr[-1], n)
        out[m, 0], out[m, 1] = lr[0], grid[1] - grid[0]
        out[m, 2] = par_dlne / (lr[1] - lr[0])
        out[m, 3:] = np.interp(grid, lr, log_e)
    return out


class _Runner:
    """Runs launches of decays (or given particles) on the CPU or a CUDA GPU; returns int64 tallies."""

    def __init__(self, problem: KernelProblem, device: str, threads: Optional[int]) -> None:
        from .kernel_build import cpu_kernels, cuda_kernels, empty_tallies

        self.problem, self.device = problem, device
        self.empty = empty_tallies
        if device.startswith("cuda"):
            from numba import cuda

            self.cuda = cuda
            self.decays_kernel, self.particles_kernel = cuda_kernels()
            p = problem
            self.d_src = [cuda.to_device(x) for x in (p.src_cdf, p.src_voxel, p.src_guide, p.spec, p.lines)]
            self.d_common = [cuda.to_device(x) for x in p.common_args()]
            self.n_slots = 1
        else:
            import numba

            self.decays_kernel, self.particles_kernel = cpu_kernels()
            pool = numba.config.NUMBA_NUM_THREADS
            self.threads = max(1, min(int(threads), pool)) if threads is not None else numba.get_num_threads()
            self.n_slots = pool  # thread ids range over the whole pool
        self.tally = self.scal = None  # the batch's tallies, made by the first decays() (particles() needs none)

    def decays(self, seed: int, first: int, n: int, stratum: Tuple[int, int] = (0, 0)) -> None:
        """Transport decays ``first … first + n − 1`` and add them to the current batch (per-thread tallies on
        the CPU, one atomic array on the GPU; :meth:`take_batch` folds them into the running sums).

        ``stratum``: (first history, number of histories) of the batch whose source points are stratified
        (``kernel_source.decay``); (0, 0) samples them independently."""
        p = self.problem
        s_first, s_n = np.int64(stratum[0]), np.int64(stratum[1])
        if self.tally is None:
            self.tally, self.scal = self.empty(self.n_slots, p.n_tally, p.n_voxels)
            if self.device.startswith("cuda"):
                self.d_tally, self.d_scal = self.cuda.to_device(self.tally), self.cuda.to_device(self.scal)
        if self.device.startswith("cuda"):
            threads = 128
            blocks = max(1, min((n + threads - 1) // threads, 65535))
            self.decays_kernel[blocks, threads](np.int64(seed), np.int64(first), np.int64(n), s_first, s_n,
                                                *self.d_src, *self.d_common, self.d_tally, self.d_scal)
            return
        import numba

        previous = numba.get_num_threads()
        numba.set_num_threads(self.threads)  # for this launch only
        try:
            with numba.parallel_chunksize(1):
                self.decays_kernel(np.int64(seed), np.int64(first), np.int64(n), np.int64(BLOCK_DECAYS), s_first, s_n,
                                   p.src_cdf, p.src_voxel, p.src_guide, p.spec, p.lines, *p.common_args(), self.tally,
                                   self.scal)
        finally:
            numba.set_num_threads(previous)

    def take_batch(self, sum_x: np.ndarray, sum_x2: np.ndarray, total: np.ndarray, n_decays: int) -> np.ndarray:
        """Fold the batch (``n_decays`` decays) into ``sum_x``/``sum_x2`` (energy per decay [MeV], tally 0)
        and ``total`` [MeV]; start the next batch empty. Returns the batch's scalar tallies (int64 units)."""
        from .kernel_build import batch_accumulator

        q = ks.QUANTUM_MeV
        cuda = self.device.startswith("cuda")
        if cuda:
            self.d_tally.copy_to_host(self.tally)
            self.d_scal.copy_to_host(self.scal)
        batch_accumulator()(self.tally, sum_x, sum_x2, total, q, q / n_decays)  # also zeroes self.tally
        scal = self.scal.sum(axis=0)
        self.scal[:] = 0
        if cuda:  # the zeroed host tallies start the device's next batch
            self.d_tally.copy_to_device(self.tally)
            self.d_scal.copy_to_device(self.scal)
        return scal

    def particles(self, seed: int, kind: np.ndarray, position_mm: np.ndarray, direction: np.ndarray,
                  energy_MeV: np.ndarray) -> tuple:
        p = self.problem
        tally, scal = self.empty(self.n_slots, p.n_tally, p.n_voxels)
        args = (np.ascontiguousarray(kind, dtype=np.int64), np.ascontiguousarray(position_mm, dtype=np.float64),
                np.ascontiguousarray(direction, dtype=np.float64), np.ascontiguousarray(energy_MeV, dtype=np.float64))
        if self.device.startswith("cuda"):
            d_tally, d_scal = self.cuda.to_device(tally), self.cuda.to_device(scal)
            threads = 64
            blocks = max(1, (args[3].size + threads - 1) // threads)
            self.particles_kernel[blocks, threads](np.int64(seed), *[self.cuda.to_device(a) for a in args],
                                                   *self.d_common, d_tally, d_scal)
            return d_tally.copy_to_host().sum(axis=0), d_scal.copy_to_host().sum(axis=0)
        self.particles_kernel(np.int64(seed), *args, *p.common_args(), tally, scal)
        return tally.sum(axis=0), scal.sum(axis=0)


def _resolve_kernel_device(device: str) -> str:
    from ..devices import resolve_device
    from .kernel_build import cuda_available

    dev = resolve_device(device) if device != "cuda-sim" else "cuda"
    if dev.startswith("cuda") and not cuda_available():
        raise DeepDoseInputError("device 'cuda' requested but numba sees no CUDA GPU (install numba-cuda and the "
                                 "NVIDIA driver), or use the torch engine (engine='torch').")
    return dev


def transport_particles(density_g_per_cm3: np.ndarray, material_labels: np.ndarray, spacing_mm, kind: np.ndarray,
                        position_mm: np.ndarray, direction: np.ndarray, energy_MeV: np.ndarray, seed: int = 0,
                        device: str = "cpu", settings: Optional[TransportSettings] = None,
                        variance_reduction: bool = False) -> dict:
    """Transport given primaries (kind 0 electron, 1 positron, 2 photon; positions [mm, grid frame])
    with the kernel; returns the energy per voxel [MeV] and the scalar tallies [MeV, path in mm]."""
    density = np.asarray(density_g_per_cm3, dtype=np.float32)
    problem = KernelProblem(density, np.asarray(material_labels, np.uint8), spacing_mm,
                            settings or TransportSettings(), variance_reduction, (), False)
    runner = _Runner(problem, _resolve_kernel_device(device), None)
    tally, scal = runner.particles(seed, kind, position_mm, direction, energy_MeV)
    q = ks.QUANTUM_MeV
    return {"edep_MeV": (tally[0] * q).reshape(problem.shape), "emitted_MeV": scal[ks.S_EMITTED] * q,
            "escaped_MeV": scal[ks.S_ESCAPED] * q, "escaped_uncollided_MeV": scal[ks.S_ESCAPED_UNCOLLIDED] * q,
            "created_MeV": scal[ks.S_CREATED] * q, "charged_path_length_mm": scal[ks.S_PATH_nm] * 1e-6}


def run_monte_carlo_kernel(activity_Bq_per_mL: np.ndarray, density_g_per_cm3: np.ndarray,
                           material_labels: np.ndarray, spacing_mm, nuclide: Nuclide | str, n_decays: int,
                           seed: int = 0, device: str = "auto", n_batches: int = 10,
                           settings: Optional[TransportSettings] = None,
                           progress: Optional[Callable[[float, str], None]] = None,
                           cancel: Optional[Callable[[], bool]] = None, exclude_kinds: tuple = (),
                           split_photons: bool = False, photon_band_edges_MeV: Sequence[float] = (),
                           variance_reduction: bool = False, target_uncertainty: Optional[float] = None,
                           max_decays: Optional[int] = None, threads: Optional[int] = None,
                           stratified_source: bool = True) -> MonteCarloResult:
    """Simulate ``n_decays`` decays of ``nuclide`` distributed like the activity map (compiled kernel).

    Arguments as :func:`DeepDoseLib.mc.run_monte_carlo`, plus:
        variance_reduction: photon kerma scoring at Woodcock points with implicit capture and Russian
            roulette (see :mod:`DeepDoseLib.mc.kernel_source`); the expected dose equals the analog run's.
        target_uncertainty: relative (0.02 = 2 %): after the ``n_decays`` of the first ``n_batches``
            batches, add batches of the same size until the median relative uncertainty in tissue voxels
            above half the tissue maximum reaches it, or ``max_decays`` (default 100 × n_decays) is spent.
        threads: CPU threads (default: numba's pool, NUMBA_NUM_THREADS). Results do not depend on it.
        stratified_source: draw the source points of each batch by stratified sampling of the activity's
            cumulative distribution (default): each voxel gets its expected number of decays (± 1) instead of a
            multinomial number, which removes the count noise where the dose is deposited near the decay
            (Lu-177's β on the demo torso: median uncertainty 8.1 → 5.2 % at the same decays;
            docs/validation/mc_kernel.md).
            The expectation is the analog one and the batches stay independent. False: independent draws.
    """
    activity = np.asarray(activity_Bq_per_mL, dtype=np.float64)
    density = np.asarray(density_g_per_cm3, dtype=np.float32)
    labels = np.asarray(material_labels, dtype=np.uint8)
    _validate(activity, density, labels, n_decays)
    if target_uncertainty is not None and not (0 < float(target_uncertainty) < 1):
        raise DeepDoseInputError(f"The target uncertainty must be a fraction in (0, 1), e.g. 0.02 for 2 % "
                                 f"(got {target_uncertainty}).")
    nuc = get_nuclide(nuclide) if isinstance(nuclide, str) else nuclide
    dev = _resolve_kernel_device(device)
    n_decays = int(n_decays)
    n_batches = max(2 if target_uncertainty else 1, min(int(n_batches), n_decays))
    band_edges = tuple(sorted(float(v) for v in photon_band_edges_MeV))
    if band_edges and (band_edges[0] <= 0 or len(set(band_edges)) != len(band_edges)):
        raise ValueError(f"photon band edges must be distinct and > 0 MeV (got {photon_band_edges_MeV})")
    split_photons = split_photons or bool(band_edges)
    sampler = DecaySampler(activity, spacing_mm, nuc, device="cpu", exclude_kinds=tuple(exclude_kinds))
    problem = KernelProblem(density, labels, spacing_mm, settings or TransportSettings(), variance_reduction,
                            band_edges, split_photons, sampler)
    runner = _Runner(problem, dev, threads)
    notes: List[str] = ["decay positions stratified per batch" if stratified_source
                        else "decay positions drawn independently"]
    launch = CUDA_LAUNCH_DECAYS if dev.startswith("cuda") else CPU_LAUNCH_DECAYS
    batch_size = max(1, n_decays // n_batches)
    budget = int(max_decays) if max_decays is not None else (100 * n_decays if target_uncertainty else n_decays)
    planned = n_decays
    nv, q = problem.n_voxels, ks.QUANTUM_MeV
    sum_x = np.zeros(nv)
    sum_x2 = np.zeros(nv)
    total = np.zeros((problem.n_tally, nv))
    scal_total = np.zeros(ks.N_SCAL)
    mass_kg = density.astype(np.float64).ravel() * float(np.prod(spacing_mm)) * 1e-3 * KG_PER_G
    start, done, b = time.perf_counter(), 0, 0
    while True:
        this = n_decays - done if (target_uncertainty is None and b == n_batches - 1) else batch_size
        left = this
        stratum = (done, this) if stratified_source else (0, 0)
        while left > 0:
            if cancel is not None and cancel():
                raise MonteCarloCancelled(f"Monte Carlo cancelled after {done} of {planned} decays; no result.")
            n = min(launch, left)
            runner.decays(seed, done, n, stratum)
            done += n
            left -= n
            if progress is not None:
                rate = done / max(time.perf_counter() - start, 1e-9)
                progress(min(done / planned, 1.0), f"MC {nuc.name}: {done:,}/{planned:,} decays ({rate:,.0f}/s)")
        scal_total += runner.take_batch(sum_x, sum_x2, total, this)
        b += 1
        if target_uncertainty is None:
            if b == n_batches:
                break
            continue
        if b < n_batches:
            continue
        rel = _relative_uncertainty(sum_x, sum_x2, b, total[0] / done)
        u = hot_tissue_median_uncertainty((total[0] / mass_kg).reshape(problem.shape), rel.reshape(problem.shape),
                                          density)
        if not (u > target_uncertainty):
            notes.append(f"target uncertainty {100 * target_uncertainty:g} % reached after {done:,} decays "
                         f"(hot-tissue median {100 * u:.2f} %)")
            break
        if done + batch_size > budget:
            notes.append(f"target uncertainty {100 * target_uncertainty:g} % NOT reached: hot-tissue median "
                         f"{100 * u:.2f} % after {done:,} decays (limit {budget:,})")
            logger.warning(notes[-1])
            break
        needed = int(math.ceil(done * (u / target_uncertainty) ** 2))
        planned = min(budget, max(needed, done + batch_size))
    seconds = time.perf_counter() - start
    mean = total[0] / done
    rel = _relative_uncertainty(sum_x, sum_x2, b, mean) if b > 1 else np.full(nv, np.nan)
    if b == 1:
        notes.append("one batch only: no uncertainty estimate")
    to_mGy_per_h = sampler.total_activity_Bq * J_PER_MEV / mass_kg * S_PER_H * MGY_PER_GY / done

    def as_dose(energy_MeV: np.ndarray) -> np.ndarray:
        return (energy_MeV * to_mGy_per_h).astype(np.float32).reshape(problem.shape)

    bands = None
    if band_edges:
        bands = np.stack([as_dose(total[2 + k]) for k in range(len(band_edges) + 1)])
    created = scal_total[ks.S_CREATED] * q
    return MonteCarloResult(as_dose(total[0]), rel.astype(np.float32).reshape(problem.shape), done, int(seed), seconds,
                            f"{dev} (kernel)", scal_total[ks.S_EMITTED] * q + created, float(total[0].sum()),
                            scal_total[ks.S_ESCAPED] * q, sampler.total_activity_Bq, created, notes,
                            as_dose(total[1]) if split_photons else None, bands)


def _relative_uncertainty(sum_x: np.ndarray, sum_x2: np.ndarray, n_batches: int, mean: np.ndarray) -> np.ndarray:
    batch_mean = sum_x / n_batches
    var = np.clip(sum_x2 - n_batches * batch_mean * batch_mean, 0, None) / (n_batches * (n_batches - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mean > 0, np.sqrt(var) / np.maximum(mean, 1e-300), 0.0)
