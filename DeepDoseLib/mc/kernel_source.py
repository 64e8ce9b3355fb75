"""One transport source for the compiled Monte Carlo kernel: plain scalar Python, compiled twice.

Every function here follows one particle (or one decay) with scalar arithmetic only: no allocation,
no NumPy calls besides integer casts, tuples for multiple results. :mod:`DeepDoseLib.mc.kernel_build`
compiles the same functions with ``numba.njit`` (CPU; the driver runs histories in parallel with
``prange``) and with ``numba.cuda.jit(device=True)`` (GPU; one thread per history). The only
target-specific function, ``tally_add``, is injected by the builder (a plain add into a per-thread
tally on the CPU, an atomic add on the GPU).

Physics: the same as the torch reference engine (:mod:`DeepDoseLib.mc.transport`) and the same tables
(:mod:`DeepDoseLib.physics`): Woodcock photon tracking with the energy-dependent majorant,
photo-absorption / Klein–Nishina Compton / Thomson-Rayleigh, local deposition of photon-made
electrons; class-I CSDA condensed history for electrons and positrons with energy-loss (25 %) and
geometric (half a voxel, air safety) step limits, random-hinge Wentzel multiple scattering with the
exact first moment, annihilation at rest into two 511 keV photons.

Random numbers: SplitMix64 (Steele, Lea & Flood 2014) started per history from a hash of (seed,
history index), so a history's random numbers do not depend on which thread runs it. Source points are
drawn by stratified sampling of the activity's cumulative distribution within each batch (``decay``).

Tallies: energy in 64-bit fixed point (``QUANTUM_MeV`` = 1e-9 MeV per unit). Integer addition is
associative, so the sum over histories is bit-identical whatever the number of threads or the order
in which the GPU's atomics land.

Variance reduction (``VR`` flag of ``par``): photon kerma scored at every Woodcock (pseudo-)collision
point, E·μ_dep/μ_s with μ_dep = μ_pe + μ_inc·⟨T/E⟩_KN the engine's own local-deposition coefficient
(so the expectation equals the analog run's exactly, including the kerma approximation for
photon-made electrons that the analog engine makes too), with the sampling rate μ_s = max(μ_majorant,
``MU_SCORE`` per cm) so that every voxel crossed is scored about once; implicit capture (the photon
survives photo-absorption with weight × (1 − μ_pe/μ)) and Russian roulette below weight ``W_MIN``.
"""
from __future__ import annotations

import math

import numpy as np

# ------------------------------------------------------------------ constants (compile-time globals)
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)
SH30 = np.uint64(30)
SH27 = np.uint64(27)
SH31 = np.uint64(31)
SH11 = np.uint64(11)
SEED_SALT = np.uint64(0xD1B54A32D192ED03)
TWO_M53 = 1.0 / 9007199254740992.0
#: fixed-point unit of the energy tallies [MeV]
QUANTUM_MeV = 1e-9
UNITS_PER_MeV = 1e9
ELECTRON_MASS_MeV = 0.51099895
ELECTRON, POSITRON, PHOTON = 0, 1, 2

# rows of the packed table ``tab`` (n_material_rows, N_TAB, nE), natural logs of the values
T_PHOTO, T_INCOH, T_COH, T_DEP, T_RANGE, T_LAMBDA1, T_TOTAL = 0, 1, 2, 3, 4, 5, 6
N_TAB = 7
# entries of the float parameter vector ``par``
(P_LNE0, P_DLNE, P_PHOTON_CUT, P_ELECTRON_CUT, P_MAX_LOSS, P_MAX_STEP_CM, P_VR, P_MU_SCORE, P_W_MIN, P_W_SURVIVE,
 P_BETA_YIELD, P_POSITRON_FRACTION, P_LINE_YIELD, P_LOCAL_MeV, P_SX, P_SY, P_SZ, P_LNS0, P_DLNS,
 P_RANGE_REJECTION, P_LN_KEEP, P_LN_ECUT) = range(22)
N_PAR = 22
# entries of the integer parameter vector ``ipar``
I_NE, I_NX, I_NY, I_NZ, I_NBANDS, I_NTALLY, I_NWENTZEL, I_NSPEC, I_NLINES, I_NSRC, I_NRINV = range(11)
N_IPAR = 11
# columns of the per-slot scalar tally ``scal`` (int64)
S_EMITTED, S_ESCAPED, S_CREATED, S_ESCAPED_UNCOLLIDED, S_PATH_nm = 0, 1, 2, 3, 4
N_SCAL = 5


def tally_add(tally, slot, k, flat, q):  # replaced by the builder (CPU: plain add; GPU: atomic add)
    tally[slot, k, flat] += q


def scal_add(scal, slot, k, q):  # replaced by the builder
    scal[slot, k] += q


# ------------------------------------------------------------------ random numbers
def mix64(z):
    z = (z ^ (z >> SH30)) * MIX1
    z = (z ^ (z >> SH27)) * MIX2
    return z ^ (z >> SH31)


def stream_start(seed, index):
    """Initial SplitMix64 state of history ``index`` for ``seed`` (both non-negative int64)."""
    return mix64(mix64(np.uint64(seed) ^ SEED_SALT) + np.uint64(index) * GOLDEN)


def uniform(state):
    """(new state, u) with u uniform in (0, 1) (53-bit, never 0 or 1)."""
    state = state + GOLDEN
    z = mix64(state)
    return state, (np.float64(z >> SH11) + 0.5) * TWO_M53


# ------------------------------------------------------------------ table lookups
def grid_position_ln(lne, par, ipar):
    """(index, fraction) of ln E (E in MeV) on the uniform ln E grid (clamped as the torch engine)."""
    n = ipar[I_NE]
    x = (lne - par[P_LNE0]) / par[P_DLNE]
    x = min(max(x, 0.0), n - 1 - 1e-6)
    i = int(math.floor(x))
    return i, x - i


def grid_position(e, par, ipar):
    """(index, fraction) of energy ``e`` [MeV] on the uniform ln E grid."""
    return grid_position_ln(math.log(max(e, 1e-30)), par, ipar)


def lookup(tab, m, row, i, w):
    lo = tab[m, row, i]
    return math.exp(lo + w * (tab[m, row, i + 1] - lo))


def ln_energy_from_range(rinv, m, r, par, ipar):
    """ln of the kinetic energy [MeV] whose CSDA range is ``r`` > 0 [g/cm²]: the inverse of the log-log range
    table, tabulated on a uniform ln R grid per material (``rinv[m, 0]`` = ln R0, ``rinv[m, 1]`` = Δ ln R, then
    ``ipar[I_NRINV]`` values of ln E); below R0 the first segment's power law ``rinv[m, 2]`` = d ln E / d ln R."""
    n = ipar[I_NRINV]
    x = (math.log(r) - rinv[m, 0]) / rinv[m, 1]
    if x < 0.0:
        return rinv[m, 3] + x * rinv[m, 1] * rinv[m, 2]
    if x >= n - 1:
        return rinv[m, 3 + n - 1]
    i = int(x)
    lo = rinv[m, 3 + i]
    return lo + (x - i) * (rinv[m, 4 + i] - lo)


def locate(x, y, z, par, ipar):
    """(inside, flat voxel index) of a point [mm, grid frame: voxel centre i at i·spacing]."""
    ix = int(math.floor(x / par[P_SX] + 0.5))
    iy = int(math.floor(y / par[P_SY] + 0.5))
    iz = int(math.floor(z / par[P_SZ] + 0.5))
    nx = ipar[I_NX]
    ny = ipar[I_NY]
    if ix < 0 or iy < 0 or iz < 0 or ix >= nx or iy >= ny or iz >= ipar[I_NZ]:
        return False, 0
    return True, (iz * ny + iy) * nx + ix


# ------------------------------------------------------------------ angles
def azimuth(state):
    """(state, cos φ, sin φ) of a uniform azimuth φ, without trigonometry: a point uniform in the unit disk
    (rejection from the square, acceptance π/4) gives cos φ = (a² − b²)/r², sin φ = 2ab/r²."""
    a = 0.0
    b = 0.0
    r2 = 1.0
    for _ in range(1000):
        state, ua = uniform(state)
        state, ub = uniform(state)
        a = 2.0 * ua - 1.0
        b = 2.0 * ub - 1.0
        r2 = a * a + b * b
        if 1e-300 < r2 <= 1.0:
            break
    return state, (a * a - b * b) / r2, 2.0 * a * b / r2


def rotate(u, v, w, cos_t, cphi, sphi):
    """Direction after a deflection by polar cosine ``cos_t`` and azimuth (cos φ, sin φ) ``cphi``, ``sphi``."""
    sin_t = math.sqrt(max(0.0, 1.0 - cos_t * cos_t))
    t = math.sqrt(max(0.0, 1.0 - w * w))
    if t > 1e-6:
        nu = u * cos_t + sin_t * (u * w * cphi - v * sphi) / t
        nv = v * cos_t + sin_t * (v * w * cphi + u * sphi) / t
        nw = w * cos_t - sin_t * t * cphi
    else:
        nu = sin_t * cphi
        nv = sin_t * sphi
        nw = cos_t if w >= 0.0 else -cos_t
    norm = math.sqrt(nu * nu + nv * nv + nw * nw)
    return nu / norm, nv / norm, nw / norm


def isotropic(state):
    state, a = uniform(state)
    state, cphi, sphi = azimuth(state)
    c = 2.0 * a - 1.0
    s = math.sqrt(max(0.0, 1.0 - c * c))
    return state, s * cphi, s * sphi, c


def compton(state, e):
    """Klein–Nishina (Butcher & Messel): (state, scattered energy [MeV], cos θ)."""
    k = e / ELECTRON_MASS_MeV
    eps0 = 1.0 / (1.0 + 2.0 * k)
    eps0_sq = eps0 * eps0
    a1 = -math.log(eps0)
    a2 = 0.5 * (1.0 - eps0_sq)
    eps = 1.0
    for _ in range(1000):
        state, r0 = uniform(state)
        state, r1 = uniform(state)
        state, r2 = uniform(state)
        if a1 / (a1 + a2) > r0:
            eps = math.exp(-a1 * r1)
        else:
            eps = math.sqrt(eps0_sq + (1.0 - eps0_sq) * r1)
        one_minus_cos = (1.0 - eps) / (eps * k)
        sin2 = one_minus_cos * (2.0 - one_minus_cos)
        if 1.0 - eps * sin2 / (1.0 + eps * eps) >= r2:
            break
    cos_t = min(1.0, max(-1.0, 1.0 - (1.0 - eps) / (eps * k)))
    return state, eps * e, cos_t


def thomson_cosine(state):
    """cos θ with density ∝ 1 + cos²θ (Cardano root of the cubic CDF)."""
    state, u = uniform(state)
    q = 2.0 - 4.0 * u
    d = math.sqrt(q * q + 1.0)
    a = -q + d
    b = -q - d
    mu = math.copysign(math.pow(abs(a), 1.0 / 3.0), a) + math.copysign(math.pow(abs(b), 1.0 / 3.0), b)
    return state, min(1.0, max(-1.0, mu))


def wentzel_cosine(state, ln_s, went, par, ipar):
    """cos θ after a step of s first transport mean free paths, given ln s (Wentzel, exact mean cosine e^−s).

    ``went``: ln A (screening parameter) on a uniform grid of ln s (``P_LNS0``, ``P_DLNS``), tabulated from
    ⟨1 − cos θ⟩ = 1 − e^−s; beyond the grid (⟨1 − cos θ⟩ > 0.999) the direction is isotropic."""
    state, xi = uniform(state)
    n = ipar[I_NWENTZEL]
    x = (ln_s - par[P_LNS0]) / par[P_DLNS]
    if x > n - 1:
        return state, 2.0 * xi - 1.0
    x = min(max(x, 0.0), n - 1 - 1e-9)
    i = int(x)
    a = math.exp(went[i] + (x - i) * (went[i + 1] - went[i]))
    mu = 1.0 - 2.0 * a * xi / (1.0 + a - xi)
    return state, min(1.0, max(-1.0, mu))


# ------------------------------------------------------------------ tallies
def to_units(energy):
    return np.int64(energy * UNITS_PER_MeV + 0.5)


def deposit(tally, slot, flat, energy, photon_energy, edges, ipar):
    """Add ``energy`` [MeV] to voxel ``flat`` (and to the photon/band tallies for photon deposits,
    ``photon_energy`` ≥ 0 being the energy of the interacting photon); returns the units added."""
    q = to_units(energy)
    if q == 0:
        return q
    tally_add(tally, slot, 0, flat, q)
    if photon_energy >= 0.0 and ipar[I_NTALLY] > 1:
        tally_add(tally, slot, 1, flat, q)
        nb = ipar[I_NBANDS]
        if nb > 0:
            band = 0
            for j in range(nb):
                if photon_energy >= edges[j]:
                    band = j + 1
            tally_add(tally, slot, 2 + band, flat, q)
    return q


# ------------------------------------------------------------------ photons
def photon(state, x, y, z, u, v, w, e, weight, tab, majorant, density, material, edges, par, ipar,
           tally, scal, slot):
    """Follow one photon (and weight) until absorbed, below the cut-off, rouletted or out of the grid."""
    cut = par[P_PHOTON_CUT]
    vr = par[P_VR] > 0.0
    collided = False
    if e < cut:  # sub-cut-off photons (e.g. 1.3 X-rays below 1 keV per Lu-177 decay) stop within micrometres
        inside, flat = locate(x, y, z, par, ipar)
        if inside:
            deposit(tally, slot, flat, weight * e, e, edges, ipar)
        else:
            scal_add(scal, slot, S_ESCAPED, to_units(weight * e))
        return state
    e_seen = -1.0
    i = 0
    wi = 0.0
    mu_s = 1.0
    m_seen = -1  # material of the cached total mass attenuation coefficient
    total_per_rho = 0.0
    for _ in range(1000000):
        if e != e_seen:  # table position and majorant change only with the energy
            e_seen = e
            i, wi = grid_position(e, par, ipar)
            mu_max = math.exp(majorant[i] + wi * (majorant[i + 1] - majorant[i]))  # 1/cm
            mu_s = max(mu_max, par[P_MU_SCORE]) if vr else mu_max
            m_seen = -1
        state, r0 = uniform(state)
        state, r1 = uniform(state)
        step_mm = -math.log(r0) / mu_s * 10.0
        x += u * step_mm
        y += v * step_mm
        z += w * step_mm
        inside, flat = locate(x, y, z, par, ipar)
        if not inside:
            q = to_units(weight * e)
            scal_add(scal, slot, S_ESCAPED, q)
            if not collided:
                scal_add(scal, slot, S_ESCAPED_UNCOLLIDED, q)
            return state
        m = material[flat]
        rho = density[flat]
        # the interpolated total decides real vs virtual; a real collision's channel is chosen in proportion to
        # the interpolated channels (they sum to the total within 0.05 %). μ/ρ is looked up again only when the
        # material or the energy changed since the last step (most virtual steps stay in one tissue)
        if m != m_seen:
            m_seen = m
            total_per_rho = lookup(tab, m, T_TOTAL, i, wi)
        total = total_per_rho * rho
        r = r1 * mu_s
        if not vr and r >= total:
            continue
        photo = lookup(tab, m, T_PHOTO, i, wi) * rho
        incoh = lookup(tab, m, T_INCOH, i, wi) * rho
        coh = lookup(tab, m, T_COH, i, wi) * rho
        if r < total:
            r = r / total * (photo + incoh + coh)
            total = photo + incoh + coh
        if vr:
            kerma = lookup(tab, m, T_DEP, i, wi) * rho
            deposit(tally, slot, flat, weight * e * kerma / mu_s, e, edges, ipar)
            if r < total:  # real collision: implicit capture, then Compton or Rayleigh
                weight *= (incoh + coh) / total
                collided = True
                if r / total * (incoh + coh) < incoh:
                    state, e_new, cos_t = compton(state, e)
                    e = e_new
                else:
                    state, cos_t = thomson_cosine(state)
                state, cphi, sphi = azimuth(state)
                u, v, w = rotate(u, v, w, cos_t, cphi, sphi)
            if e < cut:
                deposit(tally, slot, flat, weight * e, e, edges, ipar)
                return state
            if weight < par[P_W_MIN]:  # Russian roulette
                state, rr = uniform(state)
                if rr * par[P_W_SURVIVE] < weight:
                    weight = par[P_W_SURVIVE]
                else:
                    return state
            continue
        if r < photo:
            deposit(tally, slot, flat, weight * e, e, edges, ipar)
            return state
        if r < photo + incoh:
            state, e_new, cos_t = compton(state, e)
            deposit(tally, slot, flat, weight * (e - e_new), e, edges, ipar)
            e = e_new
            state, cphi, sphi = azimuth(state)
            u, v, w = rotate(u, v, w, cos_t, cphi, sphi)
            collided = True
        elif r < total:
            state, cos_t = thomson_cosine(state)
            state, cphi, sphi = azimuth(state)
            u, v, w = rotate(u, v, w, cos_t, cphi, sphi)
            collided = True
        if e < cut:
            deposit(tally, slot, flat, weight * e, e, edges, ipar)
            return state
    return state


# ------------------------------------------------------------------ electrons and positrons
def electron(state, x, y, z, u, v, w, e, tab, density, material, safety, went, rinv, edges, par, ipar, tally, scal,
             slot):
    """Condensed-history CSDA transport of one electron/positron.

    Returns (state, stopped, x, y, z): ``stopped`` is True when the particle came to rest (where a
    positron annihilates), False when it left the grid.
    """
    e_cut = par[P_ELECTRON_CUT]
    max_loss = par[P_MAX_LOSS]
    max_step_cm = par[P_MAX_STEP_CM]
    lne = math.log(max(e, 1e-30))  # carried from step to step: the range inverse gives ln E directly
    m_prev = -1  # material of the previous step, whose residual range r − t is carried into the next step
    r_next = 0.0
    for _ in range(1000000):
        inside, flat = locate(x, y, z, par, ipar)
        if not inside:
            scal_add(scal, slot, S_ESCAPED, to_units(e))
            return state, False, x, y, z
        m = material[flat]
        rho = density[flat]
        if e <= e_cut:
            deposit(tally, slot, flat, e, -1.0, edges, ipar)
            return state, True, x, y, z
        if m == m_prev:  # the CSDA range left after the last step, in the same material [g/cm²]
            r_now = r_next
        else:
            i, wi = grid_position_ln(lne, par, ipar)
            r_now = lookup(tab, m, T_RANGE, i, wi)
        if par[P_RANGE_REJECTION] > 0.0:
            # range rejection: a residual CSDA range shorter than the distance to the voxel's faces keeps
            # the whole track (and its energy) in this voxel; exact for the voxel tally
            range_mm = r_now / rho * 10.0
            gx = x / par[P_SX]
            gy = y / par[P_SY]
            gz = z / par[P_SZ]
            face_mm = min((0.5 - abs(gx - math.floor(gx + 0.5))) * par[P_SX],
                          min((0.5 - abs(gy - math.floor(gy + 0.5))) * par[P_SY],
                              (0.5 - abs(gz - math.floor(gz + 0.5))) * par[P_SZ]))
            if range_mm < face_mm:
                scal_add(scal, slot, S_PATH_nm, np.int64(range_mm * 1e6 + 0.5))
                deposit(tally, slot, flat, e, -1.0, edges, ipar)
                return state, True, x, y, z
        e_target = e * (1.0 - max_loss)
        i2, w2 = grid_position_ln(max(lne + par[P_LN_KEEP], par[P_LN_ECUT]), par, ipar)
        r_target = lookup(tab, m, T_RANGE, i2, w2)
        t_energy = r_now - r_target if e_target > e_cut else r_now
        geometric_cm = max(safety[flat] / 10.0, max_step_cm)
        t = max(min(t_energy, rho * geometric_cm), 1e-12)  # g/cm²
        stops = t >= r_now * (1.0 - 1e-6)
        e_new = 0.0
        lne_new = lne
        if not stops:  # then r_now − t > 1e-6 r_now > 0
            lne_new = min(ln_energy_from_range(rinv, m, r_now - t, par, ipar), lne)
            e_new = min(math.exp(lne_new), e)
        step_mm = t / rho * 10.0
        scal_add(scal, slot, S_PATH_nm, np.int64(step_mm * 1e6 + 0.5))
        state, tau = uniform(state)
        hx = x + u * tau * step_mm
        hy = y + v * tau * step_mm
        hz = z + w * tau * step_mm
        im, wm = grid_position(max(0.5 * (e + e_new), e_cut), par, ipar)
        ln_lam1 = tab[m, T_LAMBDA1, im] + wm * (tab[m, T_LAMBDA1, im + 1] - tab[m, T_LAMBDA1, im])  # ln g/cm²
        state, cos_t = wentzel_cosine(state, math.log(t) - ln_lam1, went, par, ipar)
        state, cphi, sphi = azimuth(state)
        u, v, w = rotate(u, v, w, cos_t, cphi, sphi)
        in_h, flat_h = locate(hx, hy, hz, par, ipar)
        if in_h:
            deposit(tally, slot, flat_h, e - e_new, -1.0, edges, ipar)
        else:
            scal_add(scal, slot, S_ESCAPED, to_units(e - e_new))
        x = hx + u * (1.0 - tau) * step_mm
        y = hy + v * (1.0 - tau) * step_mm
        z = hz + w * (1.0 - tau) * step_mm
        if stops:
            return state, True, x, y, z
        e = e_new
        lne = lne_new
        m_prev = m
        r_next = r_now - t
    return state, True, x, y, z


def charged_then_annihilation(state, x, y, z, u, v, w, e, positron, tab, majorant, density, material, safety, went,
                              rinv, edges, par, ipar, tally, scal, slot):
    """An electron or positron, and for a positron at rest its two back-to-back 511 keV photons."""
    state, stopped, x, y, z = electron(state, x, y, z, u, v, w, e, tab, density, material, safety, went, rinv, edges,
                                       par, ipar, tally, scal, slot)
    if positron and stopped:
        scal_add(scal, slot, S_CREATED, 2 * to_units(ELECTRON_MASS_MeV))
        state, u, v, w = isotropic(state)
        state = photon(state, x, y, z, u, v, w, ELECTRON_MASS_MeV, 1.0, tab, majorant, density, material, edges,
                       par, ipar, tally, scal, slot)
        state = photon(state, x, y, z, -u, -v, -w, ELECTRON_MASS_MeV, 1.0, tab, majorant, density, material, edges,
                       par, ipar, tally, scal, slot)
    return state


# ------------------------------------------------------------------ decays
def search_left(cdf, n, u):
    """First index k with cdf[k] >= u (clamped to n − 1)."""
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) // 2
        if cdf[mid] < u:
            lo = mid + 1
        else:
            hi = mid
    return min(lo, n - 1)


def search_guided(cdf, guide, n, u):
    """``search_left`` through a guide table (Chen & Asau): ``guide[j]`` is the first index with
    cdf ≥ j/K (K = guide size), so the search starts at most a few entries before the answer: O(1)
    expected and one or two cache lines, where a binary search over a million voxels misses the cache
    about ten times. Same result as ``search_left``."""
    k_size = guide.shape[0]
    j = min(int(u * k_size), k_size - 1)
    k = guide[j]
    while k < n - 1 and cdf[k] < u:
        k += 1
    return k


def beta_energy(state, spec, ipar):
    """Energy [MeV] from the tabulated β spectrum (rows: energy, pdf, cdf): exact inverse of the
    piecewise-linear pdf inside the bin."""
    n = ipar[I_NSPEC]
    state, u = uniform(state)
    i = min(max(search_left(spec[2], n, u), 1), n - 1)
    c0 = spec[2, i - 1]
    c1 = spec[2, i]
    e0 = spec[0, i - 1]
    e1 = spec[0, i]
    p0 = spec[1, i - 1]
    p1 = spec[1, i]
    width = e1 - e0
    frac = min(max((u - c0) / max(c1 - c0, 1e-300), 0.0), 1.0)
    a = (p1 - p0) / (2.0 * width)
    c = -frac * 0.5 * (p0 + p1) * width
    xs = (-2.0 * c) / max(p0 + math.sqrt(max(p0 * p0 - 4.0 * a * c, 0.0)), 1e-300)
    return state, min(e0 + xs, e1)


def count(state, mean):
    """floor(mean) plus one with probability frac(mean): the expected count is exactly ``mean``."""
    whole = int(math.floor(mean))
    state, u = uniform(state)
    if u < mean - whole:
        whole += 1
    return state, whole


def decay(seed, history, stratum_first, stratum_n, src_cdf, src_voxel, src_guide, spec, lines, tab, majorant, density,
          material, safety, went, rinv, edges, par, ipar, tally, scal, slot):
    """One decay: position from the activity map (uniform in the voxel), local (alpha) energy, β±
    particles, discrete electron and photon lines, all transported to the end.

    Stratified source sampling (``stratum_n`` > 0): the histories ``stratum_first`` … ``stratum_first +
    stratum_n − 1`` (one batch) split the activity's cumulative distribution into ``stratum_n`` equal strata,
    history j drawing its source point from the j-th, so that every voxel receives its expected number of
    decays within one (not a multinomial number). The expectation is the analog one; the batches stay
    independent, so their spread still estimates the uncertainty. ``stratum_n`` = 0: plain sampling."""
    state = stream_start(seed, history)
    state, u = uniform(state)
    if stratum_n > 0:
        u = min((np.float64(history - stratum_first) + u) / np.float64(stratum_n), 1.0 - TWO_M53)
    k = search_guided(src_cdf, src_guide, ipar[I_NSRC], u)
    flat = src_voxel[k]
    nx = ipar[I_NX]
    ny = ipar[I_NY]
    ix = flat % nx
    iy = (flat // nx) % ny
    iz = flat // (nx * ny)
    state, jx = uniform(state)
    state, jy = uniform(state)
    state, jz = uniform(state)
    x = (ix + jx - 0.5) * par[P_SX]
    y = (iy + jy - 0.5) * par[P_SY]
    z = (iz + jz - 0.5) * par[P_SZ]
    if par[P_LOCAL_MeV] > 0.0:
        q = deposit(tally, slot, flat, par[P_LOCAL_MeV], -1.0, edges, ipar)
        scal_add(scal, slot, S_EMITTED, q)
    if par[P_BETA_YIELD] > 0.0:
        state, n_beta = count(state, par[P_BETA_YIELD])
        for _ in range(n_beta):
            state, r = uniform(state)
            positron = r < par[P_POSITRON_FRACTION]
            state, e = beta_energy(state, spec, ipar)
            scal_add(scal, slot, S_EMITTED, to_units(e))
            state, u, v, w = isotropic(state)
            state = charged_then_annihilation(state, x, y, z, u, v, w, e, positron, tab, majorant, density, material,
                                              safety, went, rinv, edges, par, ipar, tally, scal, slot)
    if par[P_LINE_YIELD] > 0.0:
        state, n_lines = count(state, par[P_LINE_YIELD])
        for _ in range(n_lines):
            state, r = uniform(state)
            j = search_left(lines[2], ipar[I_NLINES], r)
            e = lines[0, j]
            scal_add(scal, slot, S_EMITTED, to_units(e))
            state, u, v, w = isotropic(state)
            if lines[1, j] == PHOTON:
                state = photon(state, x, y, z, u, v, w, e, 1.0, tab, majorant, density, material, edges, par, ipar,
                               tally, scal, slot)
            else:
                state = charged_then_annihilation(state, x, y, z, u, v, w, e, False, tab, majorant, density,
                                                  material, safety, went, rinv, edges, par, ipar, tally, scal, slot)


def particle(seed, index, kind, x, y, z, u, v, w, e, tab, majorant, density, material, safety, went, rinv, edges, par,
             ipar, tally, scal, slot):
    """One given primary particle (tests and pencil beams): photon, electron or positron."""
    state = stream_start(seed, index)
    scal_add(scal, slot, S_EMITTED, to_units(e))
    if kind == PHOTON:
        photon(state, x, y, z, u, v, w, e, 1.0, tab, majorant, density, material, edges, par, ipar, tally, scal, slot)
    else:
        charged_then_annihilation(state, x, y, z, u, v, w, e, kind == POSITRON, tab, majorant, density, material,
                                  safety, went, rinv, edges, par, ipar, tally, scal, slot)


#: functions compiled for each target, callees before callers
FUNCTIONS = ("tally_add", "scal_add", "mix64", "stream_start", "uniform", "grid_position_ln", "grid_position",
             "lookup", "ln_energy_from_range", "locate", "azimuth", "rotate", "isotropic", "compton", "thomson_cosine",
             "wentzel_cosine",
             "to_units", "deposit", "photon", "electron", "charged_then_annihilation", "search_left", "search_guided",
             "beta_energy",
             "count", "decay", "particle")
