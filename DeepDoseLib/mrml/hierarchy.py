"""One subject-hierarchy folder per DeepDose run, holding every node the run created.

Inside Slicer the subject hierarchy gets an item for each new node by itself; with the MRML
library alone it does not, so :func:`place_in_folder` creates the item when it is missing. Either
way the folder survives saving and reloading the scene (it is part of the subject-hierarchy node).
"""
from __future__ import annotations

from typing import List

#: Attribute of a run folder (subject-hierarchy item attribute) -> "1".
FOLDER_ATTRIBUTE = "DeepDose.Run"


def subject_hierarchy(scene):
    """The scene's ``vtkMRMLSubjectHierarchyNode`` (created on first use)."""
    import slicer

    return slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)


def run_folders(scene) -> List[int]:
    """Item IDs of the DeepDose run folders of ``scene``, in creation order."""
    import vtk

    sh = subject_hierarchy(scene)
    children = vtk.vtkIdList()
    sh.GetItemChildren(sh.GetSceneItemID(), children, True)
    items = [children.GetId(i) for i in range(children.GetNumberOfIds())]
    return [item for item in items if sh.GetItemAttribute(item, FOLDER_ATTRIBUTE) == "1"]


def create_run_folder(scene, name: str, parent_item: int = 0) -> int:
    """Create a folder item named ``name`` under ``parent_item`` (default: the scene item), flagged as a DeepDose run."""
    sh = subject_hierarchy(scene)
    folder = sh.CreateFolderItem(parent_item or sh.GetSceneItemID(), name)
    sh.SetItemAttribute(folder, FOLDER_ATTRIBUTE, "1")
    return folder


def place_in_folder(scene, folder_item: int, node) -> int:
    """Put ``node`` under ``folder_item`` (creating its subject-hierarchy item if needed)."""
    sh = subject_hierarchy(scene)
    item = sh.GetItemByDataNode(node)
    if item:
        sh.SetItemParent(item, folder_item)
        return item
    return sh.CreateItem(folder_item, node)


def folder_nodes(scene, folder_item: int) -> list:
    """The data nodes below ``folder_item`` (recursively), in hierarchy order."""
    import vtk

    sh = subject_hierarchy(scene)
    children = vtk.vtkIdList()
    sh.GetItemChildren(folder_item, children, True)
    nodes = []
    for i in range(children.GetNumberOfIds()):
        node = sh.GetItemDataNode(children.GetId(i))
        if node is not None:
            nodes.append(node)
    return nodes


#: Where SlicerRT reads the unit of a dose volume: attributes of the dose volume's **Study** ancestor in the
#: subject hierarchy (vtkSlicerRtCommon::DICOMRTIMPORT_DOSE_UNIT_NAME/VALUE_ATTRIBUTE_NAME; the DVH logic and
#: the Isodose widget call GetAttributeFromItemAncestor(item, name, "Study")). Set on the node alone,
#: SlicerRT shows "Dose [?]".
DOSE_UNIT_NAME_ATTRIBUTE = "DicomRtImport.DoseUnitName"
DOSE_UNIT_VALUE_ATTRIBUTE = "DicomRtImport.DoseUnitValue"
#: A study item created by DeepDose (non-DICOM inputs, or a study whose dose unit is already another one).
CREATED_STUDY_ATTRIBUTE = "DeepDose.CreatedStudy"


def _level(name: str) -> str:
    import slicer

    return getattr(slicer.vtkMRMLSubjectHierarchyConstants, "GetDICOMLevel" + name)()


def dose_study_item(scene, reference_node, unit: str) -> int:
    """The Study item a dose in ``unit`` (e.g. ``"mGy/h"``) computed from ``reference_node`` (the PET) belongs in.

    The PET's own study when it has one (DICOM-loaded data: Patient > Study > series) and that study holds no
    dose of another unit; otherwise a study created under the PET's patient (or under a new patient item
    "DeepDose patient" for data not loaded from DICOM). The study gets SlicerRT's dose unit attributes
    (``DicomRtImport.DoseUnitName`` = ``unit``, ``DicomRtImport.DoseUnitValue`` = "1": the voxel values are
    already in ``unit``). The input nodes are not moved.
    """
    sh = subject_hierarchy(scene)
    item = sh.GetItemByDataNode(reference_node) if reference_node is not None else 0
    study = sh.GetItemAncestorAtLevel(item, _level("Study")) if item else 0
    patient = sh.GetItemAncestorAtLevel(item, _level("Patient")) if item else 0
    if study and sh.GetItemAttribute(study, DOSE_UNIT_NAME_ATTRIBUTE) not in ("", unit):
        study = 0  # SlicerRT has one dose unit per study: a dose of another unit gets its own study
    if not study:
        if not patient:
            patient = sh.CreateSubjectItem(sh.GetSceneItemID(), "DeepDose patient")
            sh.SetItemAttribute(patient, CREATED_STUDY_ATTRIBUTE, "1")
        name = "DeepDose %s" % unit
        children = vtk_id_list_children(sh, patient)
        study = next((c for c in children if sh.GetItemLevel(c) == _level("Study") and sh.GetItemName(c) == name
                      and sh.GetItemAttribute(c, DOSE_UNIT_NAME_ATTRIBUTE) == unit), 0)
        if not study:
            study = sh.CreateStudyItem(patient, name)
            sh.SetItemAttribute(study, CREATED_STUDY_ATTRIBUTE, "1")
    sh.SetItemAttribute(study, DOSE_UNIT_NAME_ATTRIBUTE, unit)
    sh.SetItemAttribute(study, DOSE_UNIT_VALUE_ATTRIBUTE, "1")
    return study


def vtk_id_list_children(sh, item: int) -> List[int]:
    """Direct children of a subject-hierarchy item."""
    import vtk

    children = vtk.vtkIdList()
    sh.GetItemChildren(item, children, False)
    return [children.GetId(i) for i in range(children.GetNumberOfIds())]
