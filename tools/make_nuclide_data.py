"""Regenerate ``DeepDoseLib/data/nuclides/*.json`` from ICRP Publication 107.

Source: ICRP Publication 107, "Nuclear Decay Data for Dosimetric Calculations" (Ann. ICRP 38(3), 2008),
as packaged on PyPI by ``icrp107-database`` (``pip install icrp107-database==0.0.3``).

Usage::

    python tools/make_nuclide_data.py            # writes the default nuclide set
    python tools/make_nuclide_data.py Ac-225 ...  # writes extra nuclides as well

Each file holds the half-life, every emission table (energy [MeV], yield [per decay]) and the
continuous beta spectrum (ICRP-107 .BET: number of beta particles per MeV per decay, β− and β+
together) exactly as ICRP-107 lists them. Nothing is fitted or rounded.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

DEFAULT_NUCLIDES = [
    "F-18", "Ga-68", "Cu-64", "Zr-89", "Y-90", "Tc-99m", "In-111", "I-123", "I-124", "I-131",
    "Sm-153", "Tb-161", "Ho-166", "Lu-177", "Re-188",
]
TIME_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "y": 365.25 * 86400.0,
               "ms": 1e-3, "us": 1e-6}
OUT_DIR = Path(__file__).resolve().parents[1] / "DeepDoseLib" / "data" / "nuclides"


def convert(symbol: str) -> dict:
    import icrp107_database
    from importlib.metadata import version

    path = Path(icrp107_database.__file__).parent / "icrp107" / f"{symbol}.json"
    raw = json.load(open(path, "rb"))
    data = json.loads(raw) if isinstance(raw, str) else raw
    emissions = data["emissions"]
    spectrum = emissions.get("b-spectra", [])
    return {
        "name": symbol.replace("-", ""),
        "symbol": symbol,
        "half_life": data["half_life"],
        "half_life_unit": data["time_unit"],
        "half_life_s": data["half_life"] * TIME_UNIT_S[data["time_unit"]],
        "source": f"ICRP Publication 107 (2008), via PyPI icrp107-database {version('icrp107-database')}",
        "emissions": {kind: [[float(e), float(w)] for e, w in lines]
                      for kind, lines in emissions.items() if kind != "b-spectra" and lines},
        "beta_spectrum": {
            "comment": "ICRP-107 .BET: beta particles per MeV per decay, beta- and beta+ combined",
            "energy_MeV": [float(e) for e, _ in spectrum],
            "particles_per_MeV_per_decay": [float(w) for _, w in spectrum],
        },
    }


def main(argv: list[str]) -> int:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for symbol in DEFAULT_NUCLIDES + argv:
        record = convert(symbol)
        target = OUT_DIR / f"{record['name']}.json"
        target.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {target.relative_to(OUT_DIR.parents[2])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
