"""Monte Carlo references that benchmarks store and reuse: one file per case, nuclide, decays and seed
(``NAME_NUCLIDE_DECAYS_seedSEED.npz``: dose [mGy/h], relative uncertainty, the activity it was computed
from, seconds), reused only for the very activity map it was computed from."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from DeepDoseLib.mc import run_monte_carlo


def reference_path(directory: Path, name: str, nuclide: str, decays: float, seed: int) -> Path:
    """Where the MC reference of a case is stored."""
    return Path(directory) / f"{name}_{nuclide}_{decays:.0e}_seed{seed}.npz"


def stored_reference(path: Path, activity: np.ndarray) -> Optional[Tuple[np.ndarray, np.ndarray, float]]:
    """(dose [mGy/h], relative uncertainty, MC seconds) stored at ``path`` for this very activity map, else None."""
    if not path.is_file():
        return None
    with np.load(path) as saved:
        if saved["activity"].shape == activity.shape and np.array_equal(saved["activity"], activity):
            return saved["dose"], saved["uncertainty"], float(saved["seconds"])
    return None


def mc_reference(directory: Optional[Path], name: str, nuclide: str, activity: np.ndarray, density: np.ndarray,
                 materials, spacing_mm, decays: float, seed: int, device: str = "cpu"):
    """(dose [mGy/h], relative uncertainty, seconds) of the case: the stored one in ``directory`` when it was
    computed from this activity map, else a new MC run (stored there when ``directory`` is given)."""
    path = None
    if directory is not None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        path = reference_path(directory, name, nuclide, decays, seed)
        stored = stored_reference(path, activity)
        if stored is not None:
            return stored
    start = time.perf_counter()
    mc = run_monte_carlo(activity, density, materials, spacing_mm, nuclide, int(decays), seed=seed, device=device)
    seconds = time.perf_counter() - start
    if path is not None:
        np.savez_compressed(path, dose=mc.dose_rate_mGy_per_h, uncertainty=mc.relative_uncertainty,
                            activity=activity, seconds=seconds, device=mc.device, notes=np.asarray(mc.notes, str))
    return mc.dose_rate_mGy_per_h, mc.relative_uncertainty, seconds
