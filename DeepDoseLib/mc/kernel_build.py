"""Compile :mod:`DeepDoseLib.mc.kernel_source` for the CPU (numba.njit + prange) and CUDA (numba.cuda).

The transport functions are compiled from the same Python source for both targets: each function of
``kernel_source.FUNCTIONS`` is re-created with a target namespace in which its callees are the
target's compiled versions; only ``tally_add``/``scal_add`` differ (plain add into a per-thread tally
on the CPU, atomic add on the GPU). Compiled CPU code is cached on disk by numba (first use: ~20 s).
"""
from __future__ import annotations

import hashlib
import inspect
import types
from functools import lru_cache

import numpy as np

from . import kernel_source as src

cuda = None  # numba.cuda, imported on first use by cuda_kernels()
numba = None  # imported on first use by cpu_kernels()


def _namespace(jit, overrides: dict, extra: dict = None) -> dict:
    ns = dict(vars(src))
    ns.update(extra or {})
    for name in src.FUNCTIONS:
        if name in overrides:
            fn = overrides[name]
            ns[name] = jit(types.FunctionType(fn.__code__, ns, name)) if fn is not None else ns[name]
            continue
        fn = getattr(src, name)
        clone = types.FunctionType(fn.__code__, ns, name, fn.__defaults__, fn.__closure__)
        clone.__module__ = src.__name__
        clone.__qualname__ = name
        ns[name] = jit(clone)
    return ns


_decay_cpu = _particle_cpu = None  # the compiled per-history functions, set by cpu_kernels()


def _run_decays_cpu(seed, first, n, block, stratum_first, stratum_n, src_cdf, src_voxel, src_guide, spec, lines, tab,
                    majorant, density, material, safety, went, rinv, edges, par, ipar, tally, scal):
    n_blocks = (n + block - 1) // block
    for b in numba.prange(n_blocks):  # noqa: F821 (numba is imported by cpu_kernels)
        slot = numba.get_thread_id()  # noqa: F821
        for h in range(first + b * block, first + min(n, (b + 1) * block)):
            _decay_cpu(seed, h, stratum_first, stratum_n, src_cdf, src_voxel, src_guide, spec, lines, tab, majorant,
                       density, material, safety, went, rinv, edges, par, ipar, tally, scal, slot)


def _run_particles_cpu(seed, kind, pos, direction, energy, tab, majorant, density, material, safety, went, rinv, edges,
                       par, ipar, tally, scal):
    for p in numba.prange(energy.shape[0]):  # noqa: F821
        slot = numba.get_thread_id()  # noqa: F821
        _particle_cpu(seed, p, kind[p], pos[p, 0], pos[p, 1], pos[p, 2], direction[p, 0], direction[p, 1],
                      direction[p, 2], energy[p], tab, majorant, density, material, safety, went, rinv, edges, par,
                      ipar, tally, scal, slot)


@lru_cache(maxsize=1)
def cpu_kernels():
    """(decays, particles) CPU drivers: parallel over blocks of histories, one int64 tally per thread.

    The drivers are module-level functions (not closures) so that numba's on-disk cache finds them again
    in the next process."""
    global numba, _decay_cpu, _particle_cpu
    import numba

    ns = _namespace(lambda f: numba.njit(cache=True, fastmath=False, error_model="numpy")(f), {})
    _decay_cpu, _particle_cpu = ns["decay"], ns["particle"]
    return (numba.njit(parallel=True, cache=True)(_versioned(_run_decays_cpu)),
            numba.njit(parallel=True, cache=True)(_versioned(_run_particles_cpu)))


def _versioned(driver):
    """The driver under a name that carries a digest of ``kernel_source.py``.

    numba's on-disk cache keys a function by its own file's time stamp only, not by the functions it calls:
    after an edit of the transport source (or an upgrade that keeps ``kernel_build.py``'s stamp) the cached
    driver would still hold the old, inlined transport. A name per source version gives it a cache entry of
    its own."""
    digest = hashlib.sha1(inspect.getsource(src).encode()).hexdigest()[:12]
    name = f"{driver.__name__}_{digest}"
    clone = types.FunctionType(driver.__code__, driver.__globals__, name)
    clone.__module__, clone.__qualname__ = driver.__module__, name
    return clone


def _atomic_tally_add(tally, slot, k, flat, q):
    cuda.atomic.add(tally, (slot, k, flat), q)  # noqa: F821 (``cuda`` is put in the namespace)


def _atomic_scal_add(scal, slot, k, q):
    cuda.atomic.add(scal, (slot, k), q)  # noqa: F821


@lru_cache(maxsize=1)
def cuda_kernels():
    """(decays, particles) CUDA kernels: one thread per history (grid-stride), atomic int64 tallies.

    Works with ``NUMBA_ENABLE_CUDASIM=1`` (numba's CUDA simulator, in Python: for tests only)."""
    global cuda  # a module global, as the simulator swaps the kernels' global ``cuda`` for its own
    from numba import cuda

    ns = _namespace(cuda.jit(device=True), {"tally_add": _atomic_tally_add, "scal_add": _atomic_scal_add},
                    {"cuda": cuda})
    decay, particle = ns["decay"], ns["particle"]

    @cuda.jit
    def run_decays(seed, first, n, stratum_first, stratum_n, src_cdf, src_voxel, src_guide, spec, lines, tab, majorant,
                   density, material, safety, went, rinv, edges, par, ipar, tally, scal):
        start = cuda.grid(1)
        stride = cuda.gridsize(1)
        for i in range(start, n, stride):
            decay(seed, first + i, stratum_first, stratum_n, src_cdf, src_voxel, src_guide, spec, lines, tab, majorant,
                  density, material, safety, went, rinv, edges, par, ipar, tally, scal, 0)

    @cuda.jit
    def run_particles(seed, kind, pos, direction, energy, tab, majorant, density, material, safety, went, rinv, edges,
                      par, ipar, tally, scal):
        p = cuda.grid(1)
        if p < energy.shape[0]:
            particle(seed, p, kind[p], pos[p, 0], pos[p, 1], pos[p, 2], direction[p, 0], direction[p, 1],
                     direction[p, 2], energy[p], tab, majorant, density, material, safety, went, rinv, edges, par, ipar,
                     tally, scal, 0)

    return run_decays, run_particles


def numba_available() -> bool:
    """True when numba can be imported (it is a dependency, but an embedding Python may lack it)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def cuda_available() -> bool:
    """True when numba can launch CUDA kernels here (a GPU and its driver, or the simulator)."""
    try:
        from numba import cuda

        return bool(cuda.is_available())
    except Exception:  # noqa: BLE001 - any import or driver problem means no CUDA kernel
        return False


def _take_batch(tally, sum_x, sum_x2, total, q, inv_n):
    n_slots, n_tally, nv = tally.shape
    for v in numba.prange(nv):  # noqa: F821
        for k in range(n_tally):
            s = np.int64(0)
            for j in range(n_slots):
                s += tally[j, k, v]
                tally[j, k, v] = 0
            if k == 0:
                x = s * inv_n
                sum_x[v] += x
                sum_x2[v] += x * x
            total[k, v] += s * q


@lru_cache(maxsize=1)
def batch_accumulator():
    """``take(tally, sum_x, sum_x2, total, q, q_per_decay)``: one parallel pass over the per-thread int64
    tallies (slots, tallies, voxels) that sums the slots, zeroes them for the next batch, and adds the batch
    to the running sums: ``sum_x``/``sum_x2`` of the batch's energy per decay [MeV] (tally 0) and ``total``
    [MeV] of every tally. It replaces ~10 NumPy passes over the volume per batch (36 ms per batch on the
    demo torso, 15 % of a Lu-177 run of 2e6 decays in 10 batches)."""
    global numba
    import numba

    return numba.njit(parallel=True, cache=True)(_take_batch)


def empty_tallies(n_slots: int, n_tally: int, n_voxels: int) -> tuple:
    return (np.zeros((n_slots, n_tally, n_voxels), dtype=np.int64),
            np.zeros((n_slots, src.N_SCAL), dtype=np.int64))
