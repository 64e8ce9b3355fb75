"""The dose-method registry: each method declares its options once and every front end derives from it."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pytest

from DeepDoseLib.dose_methods import DoseMethod, MethodOutput, get_method, option, register, registered_methods
from DeepDoseLib.dose_methods import registry as registry_module
from DeepDoseLib.errors import DeepDoseInputError


def test_every_method_is_declared_completely():
    methods = registered_methods()
    assert [m.name for m in methods] == ["led", "vsv", "vsv_scaled", "mc", "mird", "deepdose"]
    for method in methods:
        assert method.title and method.guidance and method.assumptions, method.name
        assert dataclasses.is_dataclass(method.Options), method.name
        for spec in method.specs():
            assert spec.help and spec.flag and spec.label, (method.name, spec.name)
            assert spec.check(spec.default, method.name) == spec.default  # every default lies in its range


def test_an_option_shared_by_two_methods_is_one_declaration():
    by_flag = {}
    for method in registered_methods():
        for spec in method.specs():
            other = by_flag.setdefault(spec.flag, spec)
            assert (other.name, other.type, other.default, other.minimum, other.maximum) == \
                (spec.name, spec.type, spec.default, spec.minimum, spec.maximum), spec.flag
    assert {"kernel-decays", "decays", "include-photons", "model"} <= set(by_flag)


@pytest.mark.parametrize("value, message", [(float("nan"), "finite"), (math.inf, "finite"), (-5, r"\[1, "),
                                            (0, r"\[1, "), (2.5, "whole number"), ("many", "number")])
def test_numeric_options_are_checked(value, message):
    decays = next(s for s in get_method("mc").specs() if s.flag == "decays")
    with pytest.raises(DeepDoseInputError, match=message):
        decays.check(value, "mc")
    assert decays.check("1e7", "mc") == 10_000_000


def test_unknown_options_and_radius_are_refused():
    with pytest.raises(DeepDoseInputError, match="unknown option"):
        get_method("led").options(photons=True)
    with pytest.raises(DeepDoseInputError, match="--kernel-radius-mm"):
        get_method("vsv").options(kernel_radius_mm=-5)


def test_a_new_method_reaches_every_front_end():
    """What docs/adding_a_method.md shows: one class, and the command line, the Slicer CLI XML and the report
    list it with its options."""
    @dataclass
    class HalfOptions:
        factor: float = option(0.5, "HALF: fraction of the LED dose rate", flag="half-factor", minimum=0.0,
                               maximum=1.0)

    class HalfLED(DoseMethod):
        name, title, guidance, assumptions, Options, order = \
            "half_led", "Half LED", "A test method.", ("Half the local energy deposition.",), HalfOptions, 99

        def run(self, inputs, nuclide, options, context):
            return MethodOutput(np.full(inputs.activity_Bq_per_mL.shape, options.factor, np.float32))

    register(HalfLED)
    try:
        from DeepDoseLib.cli import build_parser
        from DeepDoseLib.report.content import method_text
        from DeepDoseLib.slicer_cli_xml import method_parameters_xml

        args = build_parser().parse_args(["dose", "--ct", "c", "--pet", "p", "--out", "o.nrrd", "--method",
                                          "half_led", "--half-factor", "0.25"])
        assert args.method == "half_led" and args.factor == 0.25
        xml = method_parameters_xml()
        assert "<element>half_led</element>" in xml and "<name>halfFactor</name>" in xml
        assert method_text("half_led") == ("Half LED", ["Half the local energy deposition."])
    finally:
        registry_module._REGISTRY.pop("half_led")


def test_method_options_hold_every_field_of_every_method():
    from DeepDoseLib.dose import MethodOptions, method_options

    fields = set(MethodOptions.__dataclass_fields__)
    for method in registered_methods():
        assert {f.name for f in dataclasses.fields(method.Options)} <= fields
    opts = method_options("mc", MethodOptions(n_decays=1000, seed=3, include_photons=True))
    assert (opts.n_decays, opts.seed, opts.n_batches) == (1000, 3, 10)


def test_importing_the_registry_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, DeepDoseLib; from DeepDoseLib.dose_methods import registered_methods; registered_methods();"
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
