"""Therapy dosimetry: time per study and the registration engine choice (SimpleITK vs itk-elastix), measured.

1. Registration: the uniform-sphere study with its second scan moved by 8 mm and rotated by 3°
   (:func:`DeepDoseLib.therapy.synthetic.sphere_study`), registered rigidly to the first CT by SimpleITK
   (:func:`DeepDoseLib.therapy.registration.register_ct`) and — when ``itk-elastix`` is importable, e.g. from
   ``pip install --target DIR itk-elastix`` and ``--elastix-path DIR`` — by elastix with its default rigid
   parameter map. Per engine: wall-clock seconds, and the error of the sphere core's mean activity after the
   activity map is carried into the reference frame (truth: C₀e^(−λt) exactly), same run, same machine.
2. Time per study: the Lu-177 DOTATATE-like 4-time-point study (:func:`dotatate_study`) end to end for each
   ``--methods`` (default led, vsv_scaled, deepdose), with the split of the time.

    python benchmarks/bench_therapy.py [--methods led deepdose] [--elastix-path /tmp/elx] [--threads 2]
"""
from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import SimpleITK as sitk


def _core_error(activity_ref: sitk.Image, labels: sitk.Image, truth_Bq_per_mL: float) -> float:
    a = sitk.GetArrayViewFromImage(activity_ref)
    core = sitk.GetArrayViewFromImage(labels) == 1
    return float(a[core].mean()) / truth_Bq_per_mL - 1.0


def bench_registration(elastix_path: str = "") -> None:
    from DeepDoseLib.therapy.registration import register_ct, resample_into_reference
    from DeepDoseLib.therapy.synthetic import rigid_motion, sphere_study

    study = sphere_study(moved={1: rigid_motion((8.0, 0.0, 0.0), 3.0, centre_mm=(0.0, -10.0, 0.0))})
    ref, moved = study.time_points[0], study.time_points[1]
    c0, lam = study.kinetics[1]
    truth = c0 * math.exp(-lam * moved.time_h)
    print("| engine | seconds | core mean activity error after registration | without registration |")
    print("|---|---|---|---|")
    unregistered = _core_error(sitk.Resample(moved.activity, ref.activity), study.labels, truth)
    t0 = time.perf_counter()
    reg = register_ct(ref.ct_HU, moved.ct_HU, "scan 2")
    seconds = time.perf_counter() - t0
    err = _core_error(resample_into_reference(moved.activity, ref.activity, reg.transform), study.labels, truth)
    print(f"| SimpleITK Euler3D + Mattes MI, 3 levels | {seconds:.2f} | {100 * err:+.2f} % | {100 * unregistered:+.2f} % |")
    if elastix_path:
        sys.path.insert(0, elastix_path)
    try:
        import itk
    except ImportError:
        print("| itk-elastix | not installed (pip install --target DIR itk-elastix; --elastix-path DIR) | | |")
        return

    def to_itk(image: sitk.Image):
        out = itk.image_from_array(sitk.GetArrayFromImage(image).astype(np.float32))
        out.SetSpacing(image.GetSpacing())
        out.SetOrigin(image.GetOrigin())
        return out

    fixed, moving, activity = to_itk(ref.ct_HU), to_itk(moved.ct_HU), to_itk(moved.activity)
    parameters = itk.ParameterObject.New()
    parameters.AddParameterMap(parameters.GetDefaultParameterMap("rigid"))
    t0 = time.perf_counter()
    _, transform = itk.elastix_registration_method(fixed, moving, parameter_object=parameters, log_to_console=False)
    seconds = time.perf_counter() - t0
    moved_activity = itk.transformix_filter(activity, transform)
    out = sitk.GetImageFromArray(itk.array_from_image(moved_activity))
    out.CopyInformation(ref.activity)
    err = _core_error(out, study.labels, truth)
    print(f"| itk-elastix default rigid map | {seconds:.2f} | {100 * err:+.2f} % | {100 * unregistered:+.2f} % |")


def bench_study(methods) -> None:
    from DeepDoseLib.nuclides import get_nuclide
    from DeepDoseLib.therapy.study import TherapyOptions, run_therapy_study
    from DeepDoseLib.therapy.synthetic import dotatate_study
    from DeepDoseLib.tissue import hu_to_density

    study = dotatate_study()
    grid = study.time_points[0].activity
    print(f"\nLu-177 DOTATATE-like study: 4 time points, {'x'.join(map(str, grid.GetSize()))} voxels of "
          f"{grid.GetSpacing()[0]:g} mm, 6 structures")
    print("| method | total s | dose rates s | registrations s | integration + radiobiology s | structures s | "
          "liver D50 vs analytic |")
    print("|---|---|---|---|---|---|---|")
    c0, lam = study.kinetics[1]
    rho = float(hu_to_density(np.array([55.0], np.float32))[0])
    analytic = c0 / lam * get_nuclide("Lu177").charged_energy_per_decay_MeV * 1.602176634e-13 * 3600 / (rho * 1e-3)
    for method in methods:
        result = run_therapy_study(study.time_points, TherapyOptions(nuclide="Lu177", method=method),
                                   labels=study.labels, label_names=study.label_names)
        s = result.seconds
        part = lambda key: sum(v for k, v in s.items() if k.startswith(key))  # noqa: E731
        liver = next(x for x in result.structures if x.name == "liver")
        print(f"| {method} | {s['total']:.1f} | {part('dose rate'):.1f} | {part('registration'):.1f} | "
              f"{s['time integration and radiobiology']:.1f} | {s.get('structures', 0):.1f} | "
              f"{100 * (liver.D50_Gy / analytic - 1):+.1f} % |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=["led", "vsv_scaled", "deepdose"])
    parser.add_argument("--elastix-path", default="")
    parser.add_argument("--threads", type=int, default=0, help="torch/ITK threads (0: library default)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
    bench_registration(args.elastix_path)
    bench_study(args.methods)
    return 0


if __name__ == "__main__":
    sys.exit(main())
