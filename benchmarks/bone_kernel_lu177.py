"""Lu-177 voxel S-values in soft tissue and cortical bone against Lanconelli et al. 2012 (the bone question).

Prints S(0,0,0) and S(1,0,0) [mGy/(MBq·s)] of our Monte Carlo (compiled kernel) with their batch
uncertainties, split into the charged-particle and photon parts, for variants that isolate the candidate
causes of a bone/soft-tissue difference: emissions (β + photons only, as the database evidently simulated,
or all ICRP-107 emissions), bone density (ICRU-46 1.92 vs ICRP-23 1.85 g/cm³), and the condensed-history
step (25 % vs 5 % energy loss per step). Reference values: Lanconelli et al., Phys Med Biol 57 (2012)
517, files 177Lu4.8mmsoft.txt and 177Lu4.42mmbone.txt of the database (GitHub MGHPhysicsResearch/
MIRDCalculation, commit d7cf198).

    python benchmarks/bone_kernel_lu177.py [--decays 4e6]
"""
from __future__ import annotations

import argparse

import numpy as np

from DeepDoseLib.mc import run_monte_carlo
from DeepDoseLib.mc.transport import TransportSettings
from DeepDoseLib.tissue import materials

#: Lanconelli 2012 Lu-177 voxel S-values [mGy/(MBq·s)] (source voxel, first face neighbour)
REFERENCE = {("soft_tissue", 4.8): (0.178, 2.46e-3), ("bone", 4.42): (0.132, 1.21e-3)}
BETA_AND_PHOTONS = ("IE", "auger")  # left out: the database's Lu-177 source


def s_values(medium: str, density: float, spacing: float, n: int, exclude=(), loss=0.25, seed=1) -> dict:
    half = 4
    shape = (2 * half + 1,) * 3
    a = np.zeros(shape, np.float32)
    a[half, half, half] = 1.0 / (spacing ** 3 * 1e-3)  # 1 Bq
    rho = np.full(shape, density, np.float32)
    lab = np.full(shape, materials()[medium].label, np.uint8)
    res = run_monte_carlo(a, rho, lab, (spacing,) * 3, "Lu177", n, seed=seed, exclude_kinds=exclude,
                          split_photons=True, n_batches=20, settings=TransportSettings(max_energy_loss_fraction=loss))
    to_s = 1e6 / 3600.0  # mGy/h per Bq → mGy/(MBq·s)
    d, u, p = res.dose_rate_mGy_per_h * to_s, res.relative_uncertainty, res.photon_dose_rate_mGy_per_h * to_s
    c = (half, half, half)
    faces = [(half, half, half + 1), (half, half, half - 1), (half, half + 1, half), (half, half - 1, half),
             (half + 1, half, half), (half - 1, half, half)]
    s1 = float(np.mean([d[f] for f in faces]))
    u1 = float(np.sqrt(np.mean([u[f] ** 2 for f in faces]) / 6))  # mean of six (nearly independent) voxels
    return {"S000": float(d[c]), "u000": float(u[c]), "S100": s1, "u100": u1,
            "photon_share_100": float(np.mean([p[f] for f in faces])) / s1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decays", type=float, default=4e6)
    args = parser.parse_args()
    n = int(args.decays)
    rows = [("soft 4.8 mm, β+γ", "soft_tissue", 1.03, 4.8, BETA_AND_PHOTONS, 0.25),
            ("soft 4.8 mm, all emissions", "soft_tissue", 1.03, 4.8, (), 0.25),
            ("soft 4.8 mm ρ 1.04, β+γ", "soft_tissue", 1.04, 4.8, BETA_AND_PHOTONS, 0.25),
            ("bone 4.42 mm ρ 1.92, β+γ", "bone", 1.92, 4.42, BETA_AND_PHOTONS, 0.25),
            ("bone 4.42 mm ρ 1.92, all emissions", "bone", 1.92, 4.42, (), 0.25),
            ("bone 4.42 mm ρ 1.85, β+γ", "bone", 1.85, 4.42, BETA_AND_PHOTONS, 0.25),
            ("bone 4.42 mm ρ 1.92, β+γ, 5 % steps", "bone", 1.92, 4.42, BETA_AND_PHOTONS, 0.05),
            ("soft 4.8 mm, β+γ, 5 % steps", "soft_tissue", 1.03, 4.8, BETA_AND_PHOTONS, 0.05)]
    print("variant\tS000\t±\tvs_ref\tS100\t±\tvs_ref\tphoton_share_S100")
    for name, medium, rho, spacing, exclude, loss in rows:
        r = s_values(medium, rho, spacing, n, exclude, loss)
        ref = REFERENCE[(medium, spacing)]
        print(f"{name}\t{r['S000']:.4g}\t{100 * r['u000']:.1f}%\t{100 * (r['S000'] / ref[0] - 1):+.1f}%\t"
              f"{r['S100']:.4g}\t{100 * r['u100']:.1f}%\t{100 * (r['S100'] / ref[1] - 1):+.1f}%\t"
              f"{100 * r['photon_share_100']:.0f}%", flush=True)


if __name__ == "__main__":
    main()
