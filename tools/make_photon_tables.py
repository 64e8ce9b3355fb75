"""Regenerate ``DeepDoseLib/data/physics/photon_tables.json`` (photon coefficients per material).

Source below 800 keV: the Elam, Ravel & Sieber (2002) tables (Radiat. Phys. Chem. 63, 121) as shipped by
PyPI ``xraydb`` (``pip install xraydb``; elemental ``mu_elam(element, energy_eV, kind)`` in cm²/g), mixed
by the mass fractions of ``DeepDoseLib/data/materials.json``. Above 800 keV xraydb is wrong (its tables
stop there and it returns the 800 keV value at every higher energy), so:

* incoherent = Klein–Nishina σ_KN × electrons per gram × r(E), where the binding correction
  r = Elam/KN measured at 800 keV (|r − 1| ≈ 2×10⁻⁴, i.e. the curve is continuous there) relaxes
  to 1 as 800 keV/E;
* photoelectric and coherent continue the power law of Elam between 700 and 800 keV (log-log slopes
  ≈ −2.3 and −2.0); together they are < 0.4 % of the total above 800 keV in all materials here;
* pair production is neglected (see ``DeepDoseLib.physics.photons.pair_production_mu_rho``).

μ_en/ρ = photo (all of the photon energy absorbed locally: fluorescence and Auger cascades are not
followed, correct at voxel scale where K x-rays of tissue elements, ≤ 4 keV, travel < 0.2 mm) +
incoherent × σ_tr/σ (Klein–Nishina). The bremsstrahlung fraction g of the secondary electrons
(water: ≤ 0.4 % below 2 MeV, 0.6 % at 3 MeV) is ignored, so this is μ_tr/ρ ≈ μ_en/ρ.

Usage::

    python tools/make_photon_tables.py      # rewrites the JSON for every material of materials.json
"""
from __future__ import annotations

import json
import math
import re
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from DeepDoseLib.physics.constants import electrons_per_gram  # noqa: E402
from DeepDoseLib.physics.photons import (PHOTON_TABLE_FILE, klein_nishina_cross_section_cm2,  # noqa: E402
                                         klein_nishina_energy_transfer_fraction)
from DeepDoseLib.tissue import materials  # noqa: E402

ENERGY_MIN_MeV = 1.0e-3
ENERGY_MAX_MeV = 4.0
N_POINTS = 241                 # Δ(ln E) = ln(4000)/240 = 0.0346 (3.5 % steps)
ELAM_LIMIT_MeV = 0.8           # xraydb/Elam tables end here
SLOPE_FROM_MeV = 0.7           # power-law continuation fitted between 700 and 800 keV
XRAYDB_KIND = {"photo": "photo", "incoherent": "incoh", "coherent": "coh"}


def elam_mixture(mass_fractions: dict, energy_MeV: np.ndarray, kind: str) -> np.ndarray:
    """Σ w_i (μ/ρ)_i [cm²/g] from xraydb's Elam tables (energies ≤ 800 keV)."""
    import xraydb

    energy_eV = np.atleast_1d(energy_MeV) * 1.0e6
    return sum(w * np.asarray(xraydb.mu_elam(el, energy_eV, kind=XRAYDB_KIND[kind]), dtype=np.float64)
               for el, w in mass_fractions.items())


def material_coefficients(mass_fractions: dict, energy_MeV: np.ndarray) -> dict:
    """photo, incoherent, coherent, energy_absorption [cm²/g] on the grid, plus diagnostics."""
    low = energy_MeV <= ELAM_LIMIT_MeV * (1 + 1e-12)
    high_e = energy_MeV[~low]
    anchors = np.array([SLOPE_FROM_MeV, ELAM_LIMIT_MeV])
    n_e = electrons_per_gram(mass_fractions)
    out, info = {}, {}
    for kind in ("photo", "coherent"):
        at = elam_mixture(mass_fractions, anchors, kind)
        slope = math.log(at[1] / at[0]) / math.log(anchors[1] / anchors[0])
        out[kind] = np.concatenate([elam_mixture(mass_fractions, energy_MeV[low], kind),
                                    at[1] * (high_e / ELAM_LIMIT_MeV) ** slope])
        info[f"{kind}_loglog_slope_above_800keV"] = round(slope, 4)
    kn_800 = klein_nishina_cross_section_cm2(ELAM_LIMIT_MeV) * n_e
    binding_800 = float(elam_mixture(mass_fractions, anchors[1:], "incoherent")[0] / kn_800)
    binding = 1.0 + (binding_800 - 1.0) * (ELAM_LIMIT_MeV / high_e)
    out["incoherent"] = np.concatenate([elam_mixture(mass_fractions, energy_MeV[low], "incoherent"),
                                        klein_nishina_cross_section_cm2(high_e) * n_e * binding])
    info["elam_over_klein_nishina_at_800keV"] = round(binding_800, 6)
    out["energy_absorption"] = out["photo"] + out["incoherent"] * klein_nishina_energy_transfer_fraction(energy_MeV)
    return {"coefficients": out, "info": info}


def main() -> None:
    import xraydb

    energy = np.exp(np.linspace(math.log(ENERGY_MIN_MeV), math.log(ENERGY_MAX_MeV), N_POINTS))
    record = {
        "description": "Photon mass attenuation coefficients [cm^2/g] per DeepDose material: photo(electric), "
                       "incoherent (bound Compton), coherent (Rayleigh); energy_absorption = mu_en/rho [cm^2/g]. "
                       "total = photo + incoherent + coherent (pair production neglected). See README.md.",
        "provenance": {
            "generator": "tools/make_photon_tables.py",
            "below_800keV": f"Elam, Ravel & Sieber, Radiat. Phys. Chem. 63 (2002) 121, via PyPI xraydb "
                            f"{xraydb.__version__} (mu_elam), mixed by mass fractions",
            "above_800keV": "incoherent: Klein-Nishina x electrons/g x Elam/KN ratio at 800 keV relaxing as "
                            "800keV/E; photo, coherent: log-log power law fitted to Elam at 700-800 keV",
            "energy_absorption": "photo + incoherent x Klein-Nishina sigma_tr/sigma (fluorescence and "
                                 "bremsstrahlung of secondaries ignored)",
            "compositions": "DeepDoseLib/data/materials.json (ICRU 46)",
        },
        "grid": {"energy_min_MeV": ENERGY_MIN_MeV, "energy_max_MeV": ENERGY_MAX_MeV, "n_points": N_POINTS,
                 "spacing": "uniform in ln(E)"},
        "energy_MeV": [float(f"{e:.6g}") for e in energy],
        "materials": {},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # any xraydb validity warning must stop the run
        for name, m in materials().items():
            result = material_coefficients(m.mass_fractions, energy)
            entry = {"label": m.label, "mass_percent": {el: round(100.0 * w, 6) for el, w in m.mass_fractions.items()},
                     **result["info"]}
            entry.update({k: [float(f"{v:.6g}") for v in arr] for k, arr in result["coefficients"].items()})
            record["materials"][name] = entry
            print(f"{name:12s} Elam/KN at 800 keV = {result['info']['elam_over_klein_nishina_at_800keV']:.6f}")
    PHOTON_TABLE_FILE.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=1)
    # one line per array
    text = re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text)
    PHOTON_TABLE_FILE.write_text(text + "\n")
    print(f"wrote {PHOTON_TABLE_FILE.relative_to(ROOT)} ({N_POINTS} energies, {len(record['materials'])} materials)")


if __name__ == "__main__":
    main()
