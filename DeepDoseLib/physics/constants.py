"""Physical constants and elemental data shared by the photon and electron physics.

Constants: CODATA 2018. Standard atomic weights: IUPAC 2007 values as used by the NIST databases
(ESTAR, XCOM), so that Z/A of the mixtures matches NIST (water 0.55508).
"""
from __future__ import annotations

import math
from typing import Dict, Mapping, Tuple, Union

from ..errors import DeepDoseInputError
from ..tissue import Material, materials

#: Electron rest energy m c² [MeV].
ELECTRON_REST_ENERGY_MeV = 0.51099895
#: Classical electron radius r_e [cm].
CLASSICAL_ELECTRON_RADIUS_cm = 2.8179403262e-13
#: Avogadro constant [1/mol].
AVOGADRO_per_mol = 6.02214076e23
#: Fine-structure constant α.
FINE_STRUCTURE = 1.0 / 137.035999084
#: Plasma-energy constant: ħω_p [eV] = 28.816 √(ρ [g/cm³] · Z/A [mol/g]) (ICRU 37).
PLASMA_ENERGY_CONSTANT_eV = 28.816
#: 2π r_e² m c² N_A [MeV cm²/mol], the prefactor of the Bethe stopping-power formula.
BETHE_PREFACTOR_MeV_cm2_per_mol = (2.0 * math.pi * CLASSICAL_ELECTRON_RADIUS_cm ** 2
                                   * ELECTRON_REST_ENERGY_MeV * AVOGADRO_per_mol)

#: Element symbol → (atomic number Z, standard atomic weight A [g/mol]).
ELEMENTS: Dict[str, Tuple[int, float]] = {
    "H": (1, 1.00794), "He": (2, 4.002602), "Li": (3, 6.941), "Be": (4, 9.012182), "B": (5, 10.811),
    "C": (6, 12.0107), "N": (7, 14.0067), "O": (8, 15.9994), "F": (9, 18.9984032), "Ne": (10, 20.1797),
    "Na": (11, 22.98977), "Mg": (12, 24.305), "Al": (13, 26.981538), "Si": (14, 28.0855),
    "P": (15, 30.973761), "S": (16, 32.065), "Cl": (17, 35.453), "Ar": (18, 39.948), "K": (19, 39.0983),
    "Ca": (20, 40.078), "Ti": (22, 47.867), "Fe": (26, 55.845), "Cu": (29, 63.546), "Zn": (30, 65.409),
    "Br": (35, 79.904), "Sr": (38, 87.62), "I": (53, 126.90447), "Ba": (56, 137.327), "Gd": (64, 157.25),
    "W": (74, 183.84), "Pb": (82, 207.2),
}


def element_z_a(symbol: str) -> Tuple[int, float]:
    """(Z, A [g/mol]) of an element symbol; raises :class:`DeepDoseInputError` if unknown."""
    try:
        return ELEMENTS[symbol]
    except KeyError:
        raise DeepDoseInputError(
            f"Element {symbol!r} has no atomic data in DeepDoseLib.physics.constants.ELEMENTS; "
            f"known: {', '.join(ELEMENTS)}.") from None


def electrons_per_gram(mass_fractions: Mapping[str, float]) -> float:
    """Electron density per unit mass N_A Σ w_i Z_i/A_i [electrons/g] of a mixture."""
    return AVOGADRO_per_mol * z_over_a(mass_fractions)


def z_over_a(mass_fractions: Mapping[str, float]) -> float:
    """Mean ratio ⟨Z/A⟩ = Σ w_i Z_i/A_i [mol/g] of a mixture given by mass fractions."""
    return sum(w * element_z_a(el)[0] / element_z_a(el)[1] for el, w in mass_fractions.items())


def resolve_material(material: Union[str, Material]) -> Material:
    """The :class:`DeepDoseLib.tissue.Material` for a name of ``data/materials.json`` (or the object itself)."""
    if isinstance(material, Material):
        return material
    known = materials()
    if material not in known:
        raise DeepDoseInputError(f"Unknown material {material!r}; known: {', '.join(sorted(known))}.")
    return known[material]
