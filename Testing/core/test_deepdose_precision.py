"""The network's arithmetic (DeepDoseLib.deepdose.precision): bfloat16 touches the network's correction only,
never the float32 baseline it refines; ``auto`` picks bfloat16 only where the CPU computes it natively."""
from __future__ import annotations

import numpy as np
import pytest

from deepdose_helpers import card, local_kernels, net

from DeepDoseLib.deepdose.inference import deepdose_dose_rate
from DeepDoseLib.deepdose.model_io import export_model, load_model
from DeepDoseLib.deepdose.precision import cpu_has_native_bf16, cpuinfo_lists_native_bf16, resolve_precision
from DeepDoseLib.dose_methods.registry import get_method

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # Testing/conftest.py

# flag lines as Linux writes them (arch/x86 cpufeatures names): an AVX-512-BF16 CPU (AMD Zen 4, Intel Cooper
# Lake), an AMX CPU (Intel Sapphire Rapids) and an AVX-512 CPU without bfloat16 (Intel Skylake-SP)
ZEN4 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_bf16 avx512_vnni\n"
SAPPHIRE_RAPIDS = "flags\t\t: fpu avx2 avx512f avx512bw amx_bf16 amx_tile amx_int8\n"
SKYLAKE = "flags\t\t: fpu avx2 avx512f avx512bw avx512dq avx512_vnni\n"


def test_native_bf16_is_read_from_the_cpu_flags():
    assert cpuinfo_lists_native_bf16(ZEN4)
    assert cpuinfo_lists_native_bf16(SAPPHIRE_RAPIDS)
    assert not cpuinfo_lists_native_bf16(SKYLAKE)
    assert not cpuinfo_lists_native_bf16("")  # no flags line (not Linux): float32


def test_precision_resolution():
    assert resolve_precision("float32", "cpu") == "float32"
    assert resolve_precision("bfloat16", "cpu") == "bfloat16"
    assert resolve_precision("auto", "cuda") == "float32"  # bfloat16 on a GPU is not measured: not by default
    assert resolve_precision("auto", "cpu") == ("bfloat16" if cpu_has_native_bf16() else "float32")
    with pytest.raises(ValueError):
        resolve_precision("float16", "cpu")


def _case(shape=(20, 24, 28), seed=0):
    rng = np.random.default_rng(seed)
    rho = np.full(shape, 1.0, np.float32)
    rho[:, :, : shape[2] // 3] = 0.3
    a = (1e3 * (1 + rng.random(shape))).astype(np.float32)
    a[6:10, 8:12, 14:18] = 3e4
    return a, rho


def test_bfloat16_leaves_the_baseline_in_float32(tmp_path):
    """With the untrained network (zero correction) the output is the float32 baseline bit for bit in bfloat16
    too: the baseline channels and the residual sum are not rounded to bfloat16's 8-bit mantissa (which would move
    them by up to 0.4 %)."""
    model = load_model(export_model(net(False), local_kernels(photon_fraction=0.3), tmp_path / "m.pt", card(16)))
    a, rho = _case()
    f32 = deepdose_dose_rate(a, rho, (4.0, 4.0, 4.0), model, precision="float32")
    bf16 = deepdose_dose_rate(a, rho, (4.0, 4.0, 4.0), model, precision="bfloat16")
    assert bf16.dtype == np.float32 and f32.max() > 0
    np.testing.assert_array_equal(bf16, f32)


def test_bfloat16_changes_only_the_correction_a_little(tmp_path):
    """A random network (corrections of tens of %): bfloat16 moves the output by a small part of the correction."""
    model = load_model(export_model(net(True), local_kernels(photon_fraction=0.3), tmp_path / "m.pt", card(16)))
    base_model = load_model(export_model(net(False), local_kernels(photon_fraction=0.3), tmp_path / "b.pt", card(16)))
    a, rho = _case(seed=3)
    baseline = deepdose_dose_rate(a, rho, (4.0, 4.0, 4.0), base_model)
    f32 = deepdose_dose_rate(a, rho, (4.0, 4.0, 4.0), model, precision="float32")
    bf16 = deepdose_dose_rate(a, rho, (4.0, 4.0, 4.0), model, precision="bfloat16")
    hot = f32 > 0.1 * f32.max()
    correction = np.abs(f32[hot] - baseline[hot])
    change = np.abs(bf16[hot] - f32[hot])
    assert np.median(correction / f32[hot]) > 0.05  # the network does correct
    assert not np.array_equal(bf16, f32)  # bfloat16 did run
    assert np.median(change / f32[hot]) < 0.01
    assert np.median(change) < 0.1 * np.median(correction)


def test_the_method_declares_the_precision_option():
    options = get_method("deepdose").Options()
    assert options.precision == "auto"
