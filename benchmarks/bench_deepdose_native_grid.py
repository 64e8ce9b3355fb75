"""What the native → model grid → native round trip costs Deep-dose in small lesions, and the native-grid
factor field that removes it (issue 19, item 3; docs/validation/deepdose_generalization.md).

Synthetic abdomen at 3.9 × 3.9 × 4.4 mm, three 4–6 mL lesions at 16–20× the liver, 6 mm FWHM blur. Reference:
the density-scaled VSV on the native grid (kernels of ``DECAYS`` decays; cached in ``$DEEPDOSE_CACHE_DIR``).

    python benchmarks/bench_deepdose_native_grid.py [DECAYS]   # default 1e5 (noisy kernels, minutes)
"""
import time, json, sys, numpy as np
from DeepDoseLib.methods.scaled_vsv import compute_scaled_kernels, scaled_vsv_dose_rate
from DeepDoseLib.deepdose.model_io import resolve_model
from DeepDoseLib.deepdose.inference import deepdose_dose_rate
from DeepDoseLib.deepdose.safety import safe_deepdose
from DeepDoseLib.deepdose_rule import SafetyRule
sp = (3.9, 3.9, 4.4)  # x, y, z
decays = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
t = time.perf_counter()
kn = compute_scaled_kernels("Ga68", sp, n_decays=decays, device="cpu")
tk = time.perf_counter() - t
print("kernels", tk, flush=True)
nz, ny, nx = 60, 70, 90
z, y, x = np.meshgrid((np.arange(nz) - nz / 2 + .5) * sp[2], (np.arange(ny) - ny / 2 + .5) * sp[1],
                      (np.arange(nx) - nx / 2 + .5) * sp[0], indexing="ij")
body = (x / 160) ** 2 + (y / 120) ** 2 <= 1
rho = np.where(body, 1.03, 0.0012).astype(np.float32)
lung = body & (z > 60) & ((np.abs(x) - 70) ** 2 / 55 ** 2 + (y / 70) ** 2 <= 1)
rho[lung] = 0.26
liver = body & (z <= 60) & (z > -90) & ((x + 60) ** 2 / 75 ** 2 + (y / 80) ** 2 <= 1)
spleen = body & (z <= 40) & (z > -30) & ((x - 90) ** 2 / 30 ** 2 + ((y - 20) / 40) ** 2 <= 1)
kid = body & (z < -20) & (z > -120) & (((np.abs(x) - 60) ** 2 / 25 ** 2 + ((y + 60) / 30) ** 2) <= 1)
spine = body & ((x / 20) ** 2 + ((y + 70) / 20) ** 2 <= 1)
rho[spine] = 1.4
a = np.where(body, 1.0, 0.0).astype(np.float32) * 2e3
a[lung] = 0.0
a[liver] = 1e4; a[spleen] = 1.5e4; a[kid] = 3e4; a[spine] = 2.5e3
rng = np.random.default_rng(0)
lesions = {}
for i, (cx, cy, cz, vol, c) in enumerate([(-80, 20, 0, 4.0, 20), (-40, -30, -40, 5.0, 16), (-60, 40, 30, 6.0, 18)]):
    r = (3 * vol * 1000 / (4 * np.pi)) ** (1 / 3)
    m = (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 <= r ** 2
    a[m] = 1e4 * c
    lesions[f"lesion_{i+1}_{vol:g}mL"] = m
from scipy.ndimage import gaussian_filter
sig = [6 / 2.3548 / s for s in sp[::-1]]
a = gaussian_filter(a, sig).astype(np.float32)  # 6 mm FWHM
structs = dict(lesions, liver=liver, spleen=spleen, kidneys=kid, lung=lung)
m = resolve_model(None, "Ga68")
res = {"kernel_decays": decays, "kernel_seconds": tk}
t = time.perf_counter(); ref = scaled_vsv_dose_rate(a, rho, kn); res["t_vsv_scaled_native"] = time.perf_counter() - t
t = time.perf_counter(); raw = deepdose_dose_rate(a, rho, sp, m); res["t_deepdose_raw"] = time.perf_counter() - t
t = time.perf_counter(); sm = safe_deepdose(a, rho, sp, m, SafetyRule(flips=0), baseline_grid="model"); res["t_safe_model"] = time.perf_counter() - t
t = time.perf_counter(); sn = safe_deepdose(a, rho, sp, m, SafetyRule(flips=0), baseline_grid="native", native_kernels=kn); res["t_safe_native"] = time.perf_counter() - t
rows = {}
for name, mk in structs.items():
    r0 = float(ref[mk].mean())
    rows[name] = {"mL": float(mk.sum() * np.prod(sp) / 1000),
                  "baseline_resampled_vs_native_pct": 100 * (float(sm.baseline_mGy_per_h[mk].mean()) / r0 - 1),
                  "deepdose_raw_pct": 100 * (float(raw[mk].mean()) / r0 - 1),
                  "safe_model_grid_pct": 100 * (float(sm.dose_rate_mGy_per_h[mk].mean()) / r0 - 1),
                  "safe_native_factor_field_pct": 100 * (float(sn.dose_rate_mGy_per_h[mk].mean()) / r0 - 1)}

res["structures_vs_vsv_scaled_native"] = rows
res["notes_native"] = sn.notes
print(json.dumps(res, indent=1))

