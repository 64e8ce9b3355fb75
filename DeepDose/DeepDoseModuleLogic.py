"""The DeepDose module's logic, without Qt and without the parameter-node wrapper.

:class:`DeepDoseLogic` is an adapter over :mod:`DeepDoseLib.mrml` on ``slicer.mrmlScene``; the panel
rules (which method options apply, when Apply is enabled, the processing device, the PET unit and
calibration) are plain functions here so that they run, and are tested, on slicer-core's real MRML
without the application. Nothing here imports torch or DeepDoseLib's dose engines when the panel
opens: DeepDoseLib is imported lazily (``import DeepDoseLib`` itself is torch-free).
"""
from __future__ import annotations

import importlib.util
import logging
import os
import sys
from typing import Optional, Sequence, Tuple

import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic

import DeepDoseCLIRunner

try:
    from slicer.i18n import tr as _
except ImportError:  # Slicer without i18n support

    def _(text):
        return text


def _bootstrapDeepDoseLibPath() -> None:
    """From a source checkout, put the repository root (parent of this folder) on ``sys.path``.

    Slicer only adds each module's own folder to ``sys.path``; an installed extension has
    DeepDoseLib beside the module in the scripted-modules folder, so nothing is done then.
    """
    if importlib.util.find_spec("DeepDoseLib") is not None:
        return
    repositoryRoot = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.isdir(os.path.join(repositoryRoot, "DeepDoseLib")) and repositoryRoot not in sys.path:
        sys.path.insert(0, repositoryRoot)


_bootstrapDeepDoseLibPath()

from DeepDoseLib.nuclides import list_nuclides  # noqa: E402  (torch-free)

#: Minimum torch that loads the bundled TorchScript models (file format 4, torch.jit.load); installed through
#: the PyTorch extension's installer (SlicerPyTorch's PyTorchUtils) as a pip version requirement.
TORCH_VERSION_REQUIREMENT = ">=2.0"
TORCH_MISSING_MESSAGE = _(
    "DeepDose needs PyTorch (torch {requirement}), which is not installed in Slicer's Python.\n"
    "Install the PyTorch extension from the Extensions Manager, restart Slicer, then press 'Install PyTorch' "
    "(it uses the PyTorch extension's installer)."
).format(requirement=TORCH_VERSION_REQUIREMENT)

#: Choices of the panel (bound to the combo boxes through the parameter node's ``Choice`` annotations).
NUCLIDE_CHOICES = tuple(list_nuclides())
#: Methods in the order a clinician should consider them (DeepDoseLib.METHODS, checked by the tests).
METHOD_CHOICES = ("deepdose", "vsv_scaled", "vsv", "led", "mc", "mird")
DEVICE_CHOICES = ("automatic", "CPU", "GPU")
DEVICE_TO_TORCH = {"automatic": "auto", "CPU": "cpu", "GPU": "cuda"}
#: Units a non-DICOM PET/SPECT volume can be declared in, and their factor to Bq/mL.
PET_UNIT_CHOICES = ("Bq/mL", "kBq/mL", "MBq/mL")
PET_UNIT_TO_BQ_PER_ML = {"Bq/mL": 1.0, "kBq/mL": 1.0e3, "MBq/mL": 1.0e6}
DEFAULT_ISODOSE_LEVELS = "10, 25, 50, 75, 90"

METHOD_TITLES = {
    "deepdose": "Deep-dose: 3D U-Net (recommended)",
    "vsv_scaled": "VSV, density-scaled (lung, bone)",
    "vsv": "VSV: voxel S-value convolution",
    "led": "LED: local energy deposition",
    "mc": "MC: Monte Carlo (reference)",
    "mird": "MIRD: organ level (needs organs)",
}
#: One line per method for the panel: accuracy and time from the bundled Ga-68 model card's benchmark
#: (ICRP-110 adult female torso, organ mean dose rate vs a 1e8-decay Monte Carlo; one CPU thread).
METHOD_GUIDANCE = {
    "deepdose": "Best accuracy in minutes at most: every organ within 3 % of Monte Carlo (Ga-68 torso), ~15 s on "
                "one CPU thread. Needs PyTorch and a model for the nuclide.",
    "vsv_scaled": "Good everywhere: organs within 4.5 % of Monte Carlo (lungs -4.3 %, bone -3.2 %), ~2 s.",
    "vsv": "Fast (~0.4 s) and good in soft tissue (within 1.5 %), but lungs -41 % and bone +9 %: avoid for lung "
           "or bone.",
    "led": "Instant but crude: organs 5-40 % low (no photon or electron transport). For quick checks only.",
    "mc": "Reference: Monte Carlo with its statistical uncertainty; tens of minutes for 2 % uncertainty.",
    "mird": "Organ-level mean dose rates (one value per segment), no voxel map: select the organs.",
}
#: Method options the panel shows (parameter-node names = the registry's Slicer names); clipNegative applies to
#: every method. The others (kernel decays, batches...) keep their declared defaults in the GUI.
ALL_METHOD_OPTIONS = ("includePhotons", "decays", "seed", "vsvDensityCorrection", "modelFile")


def _panel_options_by_method() -> dict:
    """``{method: panel options it uses}`` from the registry's declarations (the others are disabled)."""
    from DeepDoseLib.dose_methods import registered_methods

    return {m.name: tuple(s.slicer_name for s in m.specs() if s.slicer_name in ALL_METHOD_OPTIONS)
            for m in registered_methods()}


#: Panel options each method uses.
METHOD_OPTIONS = _panel_options_by_method()


def importDeepDoseLib():
    """Import DeepDoseLib with its dose engines and MRML bridge; ImportError with installation advice without torch."""
    try:
        import DeepDoseLib
        import DeepDoseLib.dose  # noqa: F401  (the engines: torch)
        import DeepDoseLib.mrml  # noqa: F401  (the MRML bridge used by the logic)
    except ImportError as error:
        missing = getattr(error, "name", "") or ""
        if missing.split(".")[0] == "torch" or "torch" in str(error):
            raise ImportError(TORCH_MISSING_MESSAGE) from error
        raise
    return DeepDoseLib


def pyTorchInstalled() -> bool:
    """Whether torch can be imported (checked without importing it)."""
    return importlib.util.find_spec("torch") is not None


def modelPathOrNone(modelFile) -> Optional[str]:
    """The model file a run uses: None for "the bundled model" (``Path()`` reads back as ``"."``)."""
    from DeepDoseLib.model_card import is_bundled_choice

    return None if is_bundled_choice(modelFile) else str(modelFile)


def enabledOptions(method: str) -> dict:
    """``{option name: enabled}`` for the method options of the panel."""
    used = METHOD_OPTIONS.get(method, ())
    return {name: name in used for name in ALL_METHOD_OPTIONS}


#: Values the parameter node may hold from an earlier DeepDose (saved scenes): mapped to today's choices.
LEGACY_DEVICE_VALUES = {"auto": "automatic", "cpu": "CPU", "cuda": "GPU"}
#: Choice parameters and their allowed values; a value outside them would make the wrapper's combo-box
#: connector raise inside connectGui (a dead panel), so such values are reset before the node is wrapped.
CHOICE_PARAMETERS = {"nuclide": NUCLIDE_CHOICES, "method": METHOD_CHOICES, "device": DEVICE_CHOICES,
                     "petUnit": PET_UNIT_CHOICES}
#: Integer parameters and their ranges (as annotated in DeepDoseParameterNode).
INT_PARAMETER_RANGES = {"decays": (1000, 2000000000), "seed": (0, 2147483647)}


def migrateParameterNode(node) -> list:
    """Make a (possibly saved, older) ``vtkMRMLScriptedModuleNode`` acceptable to DeepDoseParameterNode.

    Values the wrapper would refuse (a choice that no longer exists, an integer outside its range, a
    legacy device name) are mapped or removed, so the default applies; returns what was changed.
    """
    changed = []
    if node is None:
        return changed
    device = node.GetParameter("device")
    if device in LEGACY_DEVICE_VALUES:
        node.SetParameter("device", LEGACY_DEVICE_VALUES[device])
        changed.append("device")
    for name, choices in CHOICE_PARAMETERS.items():
        if node.HasParameter(name) and node.GetParameter(name) not in choices:
            node.UnsetParameter(name)
            changed.append(name)
    for name, (low, high) in INT_PARAMETER_RANGES.items():
        if node.HasParameter(name):
            try:
                value = int(node.GetParameter(name))
            except ValueError:
                value = None
            if value is None or not low <= value <= high:
                node.UnsetParameter(name)
                changed.append(name)
    return changed


def applyState(ctNode, petNode, method: str, running: bool = False, libraryError: Optional[str] = None,
               segmentationNode=None, torchAvailable: Optional[bool] = None) -> Tuple[bool, str]:
    """``(enabled, reason)`` of the Apply button; ``reason`` is its tooltip (what to do when disabled)."""
    if libraryError:
        return False, libraryError
    if running:
        return False, _("A calculation is running: wait or press Cancel")
    if ctNode is None or petNode is None:
        return False, _("Select a CT volume (HU) and a PET/SPECT volume")
    if method not in METHOD_CHOICES:
        return False, _("Choose a method")
    if method == "mird" and segmentationNode is None:
        return False, _("The MIRD organ-level method needs organs: select a segmentation")
    if torchAvailable is None:
        torchAvailable = pyTorchInstalled()
    if not torchAvailable:
        return False, TORCH_MISSING_MESSAGE
    return True, _("Compute the dose-rate map (mGy/h) on the PET grid in a separate process")


class DeepDoseLogic(ScriptedLoadableModuleLogic):
    """Adapter over :mod:`DeepDoseLib.mrml` on ``slicer.mrmlScene`` (no Qt here)."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    @staticmethod
    def availableMethods() -> tuple:
        return tuple(importDeepDoseLib().METHODS)

    @staticmethod
    def parseIsodoseLevels(text: str) -> list:
        importDeepDoseLib()
        from DeepDoseLib.mrml import parse_levels_percent

        return parse_levels_percent(text or DEFAULT_ISODOSE_LEVELS)

    enabledOptions = staticmethod(enabledOptions)
    applyState = staticmethod(applyState)

    @staticmethod
    def methodGuidance(method: str) -> str:
        """One line on the accuracy and time of ``method`` (from the benchmark in the bundled model card)."""
        return METHOD_GUIDANCE.get(method, "")

    # -- console scripting: in-process, synchronous -------------------------------------------

    def run(
        self,
        ctNode,
        petNode,
        nuclide: str = "Ga68",
        method: str = "deepdose",
        segmentationNode=None,
        includePhotons: bool = False,
        clipNegative: bool = False,
        decays: Optional[int] = None,
        seed: int = 0,
        vsvDensityCorrection: bool = False,
        device: str = "auto",
        isodoseLevelsPercent: Sequence[float] = (10.0, 25.0, 50.0, 75.0, 90.0),
        progress=None,
        modelFile=None,
    ):
        """Compute the dose-rate map of ``petNode`` (Bq/mL) with ``ctNode`` (HU) and build every output.

        Returns a ``DeepDoseLib.mrml.DosimetryResult``: ``dose_node`` (mGy/h), ``uncertainty_node``
        (MC), ``isodose_model_node``, ``dvh_table_nodes``, ``plot_series_nodes``, ``chart_node``,
        ``stats_table_node``, ``folder_item``. Raises ImportError (with installation advice) when
        PyTorch is missing and ValueError (DeepDoseInputError) for unusable inputs.
        """
        DeepDoseLib = importDeepDoseLib()
        from DeepDoseLib.dose import MethodOptions

        logging.info("DeepDose: computing %s dose rate for %s (%s)", method, nuclide,
                     petNode.GetName() if petNode else None)
        options = MethodOptions(include_photons=includePhotons, seed=int(seed), density_correction=vsvDensityCorrection,
                                model_path=modelPathOrNone(modelFile))
        if decays is not None:  # default: the declared one (DeepDoseLib.dose_methods.mc)
            options.n_decays = int(decays)
        result = DeepDoseLib.mrml.run_dosimetry(
            slicer.mrmlScene, ctNode, petNode, nuclide, method, segmentation_node=segmentationNode,
            isodose_levels_percent=isodoseLevelsPercent, options=options, device=DEVICE_TO_TORCH.get(device, device),
            clip_negative=clipNegative, progress=progress)
        for note in result.notes:
            logging.info("DeepDose: %s", note)
        return result

    @staticmethod
    def modelCardSummary(modelFile, nuclide: str):
        """The clinician summary of the Deep-dose model a run would use (card only: no torch, no weights)."""
        from DeepDoseLib.model_card import clinician_model_summary

        return clinician_model_summary(modelPathOrNone(modelFile), nuclide)

    def updateIsodoseLevels(self, doseNode, levelsText: str):
        """Recompute the isodose lines of ``doseNode`` with levels in % (e.g. ``"10, 50, 90"``)."""
        importDeepDoseLib()
        from DeepDoseLib.mrml import find_isodose_model, parse_levels_percent, update_isodose_levels

        model = find_isodose_model(slicer.mrmlScene, doseNode) if doseNode is not None else None
        if model is None:
            raise ValueError(_("The dose-rate volume has no DeepDose isodose model."))
        return update_isodose_levels(slicer.mrmlScene, model, parse_levels_percent(levelsText))

    # -- GUI: out-of-process through the DeepDoseCLI module (DeepDoseCLIRunner) ------------------

    cliParameters = staticmethod(DeepDoseCLIRunner.cliParameters)
    cliMethods = staticmethod(DeepDoseCLIRunner.cliMethods)
    cliErrorMessage = staticmethod(DeepDoseCLIRunner.cliErrorMessage)

    def startCLI(self, ctNode, petNode, nuclide: str = "Ga68", method: str = "deepdose", segmentationNode=None,
                 **options):
        """Start DeepDoseCLI asynchronously; returns a ``DeepDoseCLIRun`` (``cliNode``: progress, status, Cancel)."""
        if "device" in options:
            options["device"] = DEVICE_TO_TORCH.get(options["device"], options["device"])
        if "modelFile" in options:
            options["modelFile"] = modelPathOrNone(options["modelFile"]) or ""
        return DeepDoseCLIRunner.startCLI(importDeepDoseLib(), slicer.mrmlScene, ctNode, petNode, nuclide, method,
                                          segmentationNode, **options)

    def finishCLI(self, run):
        """After the CLI completed: display the dose and build isodose, DVH and statistics nodes."""
        return DeepDoseCLIRunner.finishCLI(importDeepDoseLib(), slicer.mrmlScene, run)

    @staticmethod
    def discardCLI(run) -> None:
        """Remove the empty output nodes of a failed or cancelled run."""
        DeepDoseCLIRunner.discardCLI(slicer.mrmlScene, run)

    @staticmethod
    def showResult(result) -> None:
        """Show the DVH chart in the layout's plot view (when the application has one)."""
        if result.chart_node is None:
            return
        plotsLogic = getattr(getattr(slicer.modules, "plots", None), "logic", None)
        if plotsLogic is not None:
            plotsLogic().ShowChartInLayout(result.chart_node)

    # -- PyTorch -------------------------------------------------------------------------------

    def ensurePyTorch(self, confirm=None) -> bool:
        """True when torch is importable; otherwise install it if ``confirm(question)`` says yes (the widget asks
        the user; the logic shows no dialog). Without ``confirm`` nothing is installed."""
        if pyTorchInstalled():
            return True
        if confirm is None or not confirm(TORCH_MISSING_MESSAGE + "\n\n" + _("Install PyTorch now?")):
            return False
        return self.installPyTorch()

    @staticmethod
    def installPyTorch() -> bool:
        """Install torch (``TORCH_VERSION_REQUIREMENT``) with the PyTorch extension's installer (PyTorchUtils).

        Without the PyTorch extension nothing is installed: ImportError tells the user to install it from the
        Extensions Manager (pip inside Slicer would pick a torch build that need not match the GPU driver).
        """
        try:
            import PyTorchUtils
        except ImportError:
            raise ImportError(TORCH_MISSING_MESSAGE) from None
        torchLogic = PyTorchUtils.PyTorchUtilsLogic()
        torch = torchLogic.installTorch(askConfirmation=False, torchVersionRequirement=TORCH_VERSION_REQUIREMENT)
        importlib.invalidate_caches()
        return torch is not None

    # -- PET/SPECT units, reference time, RT Dose ---------------------------------------------------

    @staticmethod
    def _fileForInstance():
        database = getattr(slicer, "dicomDatabase", None)
        return database.fileForInstance if database is not None else None

    @staticmethod
    def describePetUnits(petNode, fileForInstance=None) -> "PetUnitsInfo":
        """What the panel says about the PET's unit before Apply (cheap: no conversion)."""
        if petNode is None:
            return PetUnitsInfo(False, _("Select a PET/SPECT volume: its unit and reference time are shown here."))
        if (petNode.GetAttribute("DICOM.instanceUIDs") or "").strip():  # as DeepDoseLib.mrml.is_dicom_volume
            return PetUnitsInfo(True, _("DICOM PET: converted to Bq/mL from its own Units, decay correction and "
                                        "times when you press Apply (refused, with the tag named, if they are "
                                        "missing). The unit chooser does not apply."))
        return PetUnitsInfo(False, _("Not from DICOM: the file carries no unit. Choose the unit of its values "
                                     "(and a SPECT calibration factor if needed); the total activity is checked "
                                     "on Apply."))

    def preparePet(self, petNode, ctNode=None, petUnit: str = "Bq/mL", calibrationFactor: float = 1.0,
                   fileForInstance=None):
        """The PET of a run in Bq/mL (``DeepDoseLib.mrml.PetActivity``); converts or refuses as the command line.

        DICOM volumes use their headers (from the DICOM database); others ``petUnit`` x ``calibrationFactor``.
        ``warnings`` lists implausible total activities (shown to the user before the run).
        """
        from DeepDoseLib.mrml.pet_units import pet_activity

        return pet_activity(slicer.mrmlScene, petNode, pet_unit=petUnit, calibration_factor=float(calibrationFactor),
                            file_for_instance=fileForInstance or self._fileForInstance(), ct_node=ctNode)

    @staticmethod
    def finishPreparedPet(result, pet) -> None:
        """Record the reference time and the user's PET on the dose node; remove a temporary converted PET."""
        if pet is not None:
            pet.finish(result.dose_node)

    @staticmethod
    def discardPreparedPet(pet) -> None:
        if pet is not None:
            pet.discard()

    @staticmethod
    def resultMessage(result, pet=None) -> str:
        """Status line after a run: the maximum dose rate in tissue, where Deep-dose fell back to its baseline (and
        how much), and the activity's reference time."""
        text = _("Dose rate ready: maximum in tissue {value:.4g} mGy/h.").format(value=result.reference_dose_rate)
        fallbackText = getattr(result, "fallback_text", None)
        if fallbackText:
            text += " " + fallbackText + "."
        if pet is not None:
            text += " " + pet.summary()
        return text

    def exportRTDose(self, doseNode, path, fileForInstance=None):
        """Write ``doseNode`` as DICOM RT Dose in the PET's patient/study (absorbed dose: GY; dose rate: never GY)."""
        from DeepDoseLib.mrml import dicom_files_of_node, export_rtdose
        from DeepDoseLib.mrml.logic import REFERENCE_PET

        petNode = doseNode.GetNodeReference(REFERENCE_PET) if doseNode is not None else None
        files = dicom_files_of_node(petNode, fileForInstance or self._fileForInstance())
        return export_rtdose(doseNode, path, reference_files=files or None)


class PetUnitsInfo:
    """``fromDicom``: the volume's unit comes from its DICOM tags; ``text``: what the panel shows."""

    def __init__(self, fromDicom: bool, text: str) -> None:
        self.fromDicom = fromDicom
        self.text = text
