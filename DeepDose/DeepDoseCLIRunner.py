"""Running DeepDoseCLI out-of-process for the DeepDose module: parameters, start, finish, errors.

Slicer runs the scripted CLI in its own process (``slicer.cli.run(..., wait_for_completion=False)``):
the GUI stays responsive, the CLI node reports progress (``<filter-progress>`` lines) and status, and
``cliNode.Cancel()`` stops it. The outputs (isodose, DVH, statistics) are then built in-process by
``DeepDoseLib.mrml.build_dosimetry_outputs``. No Qt here; the module's logic delegates to these
functions (scene and DeepDoseLib passed explicitly).
"""
from __future__ import annotations


import slicer

try:
    from slicer.i18n import tr as _
except ImportError:  # Slicer without i18n support

    def _(text):
        return text


class DeepDoseCLIRun:
    """A DeepDoseCLI job started by :meth:`DeepDoseLogic.startCLI` and what is needed to finish it."""

    def __init__(self, cliNode, ctNode, petNode, doseNode, uncertaintyNode, parameters):
        self.cliNode = cliNode
        self.ctNode = ctNode
        self.petNode = petNode
        self.doseNode = doseNode
        self.uncertaintyNode = uncertaintyNode
        self.parameters = parameters
        self.segmentationNode = None
        self.fallbackNode = None  # Deep-dose: labelmap of the voxels where it returned its baseline
        self.labelsNode = None
        self.isodoseLevelsPercent = None
        self.preparedPet = None  # the PET in Bq/mL the run used (DeepDoseLib.mrml.PetActivity), set by the widget

    def removeTemporaryNodes(self) -> None:
        if self.labelsNode is not None and self.labelsNode.GetScene() is not None:
            self.labelsNode.GetScene().RemoveNode(self.labelsNode)
        self.labelsNode = None



def cliParameters(ctNode, petNode, doseNode, uncertaintyNode=None, nuclide: str = "Ga68", method: str = "led",
                  clipNegative: bool = False, device: str = "auto", labelsNode=None, fallbackNode=None,
                  **methodOptions) -> dict:
    """Parameters of DeepDoseCLI (names of DeepDoseCLI.xml); the PET is passed in Bq/mL.

    ``methodOptions``: the dose methods' options by their Slicer names (``includePhotons``, ``decays``, ``seed``,
    ``vsvDensityCorrection``, ``modelFile``...: the registry's declarations, which also generate the XML). Each is
    checked against its declared range; options not given get their declared defaults. ``labelsNode``: organ
    label map on the PET grid for the organ-level (MIRD) method. ``fallbackNode``: labelmap output of Deep-dose's
    fallback mask (1 = the density-scaled VSV baseline was returned).
    """
    from DeepDoseLib.dose_methods import declared_options

    parameters = {
        "ctVolume": ctNode,
        "petVolume": petNode,
        "doseRateVolume": doseNode,
        "nuclide": nuclide,
        "method": method,
        "petUnit": "Bq/mL",
        "clipNegative": bool(clipNegative),
        "device": device,
    }
    specs = {spec.slicer_name: (users[0], spec) for spec, users in declared_options(key="slicer_name")}
    unknown = sorted(set(methodOptions) - set(specs))
    if unknown:
        raise ValueError(_("Unknown method option(s): {names}.").format(names=", ".join(unknown)))
    for name, (owner, spec) in specs.items():
        value = spec.check(methodOptions.get(name, spec.default), owner)
        if value is not None:  # an empty model file: the CLI uses the bundled model
            parameters[name] = value
    if uncertaintyNode is not None:
        parameters["uncertaintyVolume"] = uncertaintyNode
    if labelsNode is not None:
        parameters["labelsVolume"] = labelsNode
    if fallbackNode is not None:
        parameters["fallbackVolume"] = fallbackNode
    return parameters


def cliModule():
    """``slicer.modules.deepdosecli`` (None when the CLI module is not loaded)."""
    return getattr(getattr(slicer, "modules", None), "deepdosecli", None)


def cliMethods() -> tuple:
    """Methods DeepDoseCLI accepts: the registry's (its XML enumeration is generated from the same registry)."""
    from DeepDoseLib.dose_methods import method_names

    return method_names()


def startCLI(DeepDoseLib, scene, ctNode, petNode, nuclide: str = "Ga68", method: str = "led", segmentationNode=None,
             **options) -> DeepDoseCLIRun:
    """Start DeepDoseCLI asynchronously (``slicer.cli.run(..., wait_for_completion=False)``).

    Creates the (empty) output nodes; returns a :class:`DeepDoseCLIRun` whose ``cliNode``
    reports progress and status and can be cancelled (``cliNode.Cancel()``).
    """
    if ctNode is None or petNode is None:
        raise ValueError(_("Select a CT volume (HU) and a PET volume (Bq/mL)."))
    if method not in DeepDoseLib.METHODS:
        raise ValueError(_("Method {method} is not available; choose one of {methods}.").format(
            method=method, methods=", ".join(DeepDoseLib.METHODS)))
    module = cliModule()
    if module is None:
        raise RuntimeError(_("The DeepDoseCLI module is not loaded: add the DeepDoseCLI folder to Slicer's "
                             "additional module paths (Edit > Application Settings > Modules) and restart."))
    doseNode = scene.AddNewNodeByClass(
        "vtkMRMLScalarVolumeNode", scene.GenerateUniqueName(DeepDoseLib.mrml.dose_node_name(petNode, method, nuclide)))
    uncertaintyNode = None
    if method == "mc":
        uncertaintyNode = scene.AddNewNodeByClass(
            "vtkMRMLScalarVolumeNode", scene.GenerateUniqueName("%s uncertainty (MC, fraction)" % doseNode.GetName()))
    fallbackNode = None
    if method == "deepdose":  # removed after the run when nothing fell back
        fallbackNode = scene.AddNewNodeByClass(
            "vtkMRMLLabelMapVolumeNode", scene.GenerateUniqueName(DeepDoseLib.mrml.fallback_node_name(doseNode)))
    labelsNode = None
    if method == "mird":
        if segmentationNode is None:
            raise ValueError(_("The MIRD organ-level method needs organs: select a segmentation."))
        from DeepDoseLib.mrml.structures import segmentation_label_map

        labels, _names = segmentation_label_map(scene, segmentationNode, petNode)
        labelsNode = DeepDoseLib.mrml.volume_node_from_image(scene, labels, "DeepDose MIRD organs", labelmap=True)
        labelsNode.SetHideFromEditors(True)
    parameters = cliParameters(ctNode, petNode, doseNode, uncertaintyNode, nuclide, method, labelsNode=labelsNode,
                               fallbackNode=fallbackNode, **options)
    cliNode = slicer.cli.run(module, None, parameters, wait_for_completion=False)
    run = DeepDoseCLIRun(cliNode, ctNode, petNode, doseNode, uncertaintyNode, parameters)
    run.segmentationNode = segmentationNode
    run.fallbackNode = fallbackNode
    run.labelsNode = labelsNode
    return run


def finishCLI(DeepDoseLib, scene, run: DeepDoseCLIRun):
    """After the CLI completed: display the dose and build isodose, DVH and statistics nodes."""
    run.removeTemporaryNodes()
    parameters = run.parameters
    uncertaintyNode = run.uncertaintyNode
    if uncertaintyNode is not None and uncertaintyNode.GetImageData() is None:
        scene.RemoveNode(uncertaintyNode)
        uncertaintyNode = None
    return DeepDoseLib.mrml.build_dosimetry_outputs(
        scene, run.doseNode, run.ctNode, run.segmentationNode, uncertaintyNode,
        run.isodoseLevelsPercent or (10.0, 25.0, 50.0, 75.0, 90.0), pet_node=run.petNode,
        method=parameters["method"], nuclide=parameters["nuclide"],
        include_photons=parameters["includePhotons"], clip_negative=parameters["clipNegative"],
        notes=cliNotes(run.cliNode), fallback_node=run.fallbackNode)


def cliNotes(cliNode) -> list:
    """The notes DeepDoseCLI printed (its standard output without the ``<filter-...>`` progress lines)."""
    getText = getattr(cliNode, "GetOutputText", None)
    text = (getText() if getText is not None else "") or ""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("<filter-")]


def discardCLI(scene, run: DeepDoseCLIRun) -> None:
    """Remove the empty output nodes of a failed or cancelled run."""
    run.removeTemporaryNodes()
    for node in (run.doseNode, run.uncertaintyNode, run.fallbackNode):
        if node is not None and node.GetScene() is not None:
            scene.RemoveNode(node)


def cliErrorMessage(cliNode) -> str:
    """The DeepDose error line of the CLI (what the physicist needs), else its whole error output."""
    errorText = cliNode.GetErrorText() or ""
    for line in errorText.splitlines():
        if line.startswith("DeepDose error:"):
            return line
    return _("The dose calculation failed:\n{error}").format(error=errorText.strip() or cliNode.GetStatusString())
