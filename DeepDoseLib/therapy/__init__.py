"""Therapy dosimetry: several time points → absorbed dose [Gy], BED/EQD2/EUD and their uncertainty.

Modules (data flows downward): :mod:`.registration` (CT-to-CT, SimpleITK), :mod:`.kinetics` (fits per structure
and voxel, AICc, covariance), :mod:`.radiobiology` (LQ + Lea–Catcheside, EUD), :mod:`.uncertainty` (EANM 2018
propagation), :mod:`.recovery` (sphere recovery curves), :mod:`.study` (the pipeline), :mod:`.outputs` and
:mod:`.report` (files, HTML), :mod:`.command` (``deepdose therapy``), :mod:`.synthetic` (test phantoms),
:mod:`.acquisition_time` (scan times from DICOM). The Slicer bridge is :mod:`DeepDoseLib.mrml.therapy`.
"""
from __future__ import annotations

from .study import StructureResult, TherapyOptions, TherapyResult, TimePoint, run_therapy_study

__all__ = ["StructureResult", "TherapyOptions", "TherapyResult", "TimePoint", "run_therapy_study"]
