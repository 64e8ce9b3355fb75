"""Regenerate ``DeepDoseLib/data/mird/photon_sphere_absorbed_fractions.json`` with DeepDose's MC engine.

Self-absorbed fractions φ(E, m) of monoenergetic photons emitted uniformly in unit-density spheres
(ICRU-46 soft tissue composition at 1.0 g/cm³) in air, the photon part of the MIRD organ-level (sphere)
model used by ``--method mird``. Each sphere is voxelised with ~24 voxels across its diameter; φ is
deposited / emitted energy in the sphere's voxels, reported with the mass of the voxelised sphere.

    python tools/make_sphere_absorbed_fractions.py [--photons 40000] [--seed 1]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

ENERGIES_MeV = [0.015, 0.02, 0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 3.0]
MASSES_g = [1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0]
OUT = Path(__file__).resolve().parents[1] / "DeepDoseLib" / "data" / "mird" / "photon_sphere_absorbed_fractions.json"


def absorbed_fraction(energy_MeV: float, mass_g: float, n_photons: int, seed: int) -> tuple:
    from DeepDoseLib.mc.geometry import VoxelGrid
    from DeepDoseLib.mc.sources import PHOTON, Particles, isotropic_directions
    from DeepDoseLib.mc.transport import EnergyTally, Transport
    from DeepDoseLib.physics import load_physics_tables
    from DeepDoseLib.tissue import materials

    radius_mm = (3.0 * mass_g / (4.0 * np.pi)) ** (1 / 3) * 10.0
    spacing = radius_mm / 12.0
    n = 29  # 24 voxels across the sphere plus an air margin
    c = (n - 1) / 2
    z, y, x = np.meshgrid(*[np.arange(n)] * 3, indexing="ij")
    inside = ((x - c) ** 2 + (y - c) ** 2 + (z - c) ** 2) * spacing ** 2 <= radius_mm ** 2
    density = np.where(inside, 1.0, 0.0012).astype(np.float32)
    labels = np.where(inside, materials()["soft_tissue"].label, materials()["air"].label).astype(np.uint8)
    voxel_mass_g = float(inside.sum()) * (spacing / 10.0) ** 3
    grid = VoxelGrid(density, labels, (spacing,) * 3)
    transport = Transport(grid, load_physics_tables())
    tally = EnergyTally(grid.n_voxels, "cpu")
    gen = torch.Generator().manual_seed(seed)
    # uniform points in the voxelised sphere: pick voxels, then uniform inside each voxel
    voxels = np.flatnonzero(inside.ravel())
    pick = torch.as_tensor(voxels)[torch.randint(len(voxels), (n_photons,), generator=gen)]
    idx = torch.stack((pick % n, (pick // n) % n, pick // (n * n)), dim=1).float()
    pos = (idx + torch.rand(n_photons, 3, generator=gen) - 0.5) * spacing
    photons = Particles(pos, isotropic_directions(n_photons, gen, "cpu"), torch.full((n_photons,), energy_MeV),
                        torch.full((n_photons,), PHOTON, dtype=torch.int8))
    transport.photons(photons, tally, gen)
    deposited = float(tally.edep.reshape(inside.shape)[torch.as_tensor(inside)].sum())
    phi = deposited / (n_photons * energy_MeV)
    return phi, voxel_mass_g, float(np.sqrt(phi * (1 - phi) / n_photons))  # binomial-like σ (upper bound)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photons", type=int, default=40000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    start = time.perf_counter()
    table, masses = [], []
    for i, m in enumerate(MASSES_g):
        row = []
        for j, e in enumerate(ENERGIES_MeV):
            phi, vm, _ = absorbed_fraction(e, m, args.photons, args.seed + 100 * i + j)
            row.append(round(phi, 5))
        masses.append(vm)
        table.append(row)
        print(f"{m:g} g: " + " ".join(f"{p:.3f}" for p in row), flush=True)
    from DeepDoseLib import __version__

    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "comment": "Photon self-absorbed fractions in unit-density soft-tissue spheres (in air), computed by "
                   "DeepDose's Monte Carlo engine with tools/make_sphere_absorbed_fractions.py "
                   f"(--photons {args.photons} --seed {args.seed}, DeepDose {__version__}). Rows: sphere masses "
                   "(voxelised), columns: photon energies.",
        "energy_MeV": ENERGIES_MeV, "mass_g": masses, "nominal_mass_g": MASSES_g,
        "absorbed_fraction": table, "seconds": round(time.perf_counter() - start, 1)}, indent=1) + "\n")
    print(f"wrote {OUT} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
