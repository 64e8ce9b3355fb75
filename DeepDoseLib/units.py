"""Physical constants and unit conversions used across DeepDose.

Units of the project: activity Bq/mL, density g/cm³, energy MeV, dose rate mGy/h,
absorbed dose Gy, spacing mm (SimpleITK/ITK LPS physical space).
"""
from __future__ import annotations

#: Joule per MeV (CODATA 2018, exact since the 2019 SI redefinition of e).
J_PER_MEV = 1.602176634e-13
#: Seconds per hour.
S_PER_H = 3600.0
#: mGy per Gy.
MGY_PER_GY = 1000.0
#: kg per g.
KG_PER_G = 1.0e-3

#: Dose rate [mGy/h] deposited by 1 Bq/mL emitting 1 MeV per decay into 1 g/cm³:
#: 1 Bq/cm³ × 1 MeV × J_PER_MEV / (1 g/cm³ × KG_PER_G) [Gy/s] × 3600 × 1000.
MGY_PER_H_PER_BQ_PER_ML_MEV_PER_G_PER_CM3 = J_PER_MEV / KG_PER_G * S_PER_H * MGY_PER_GY


def mm3_to_mL(volume_mm3: float) -> float:
    """Convert a volume from mm³ to mL (cm³)."""
    return volume_mm3 * 1.0e-3
