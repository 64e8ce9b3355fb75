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


def create_run_folder(scene, name: str) -> int:
    """Create a folder item named ``name`` under the scene item, flagged as a DeepDose run."""
    sh = subject_hierarchy(scene)
    folder = sh.CreateFolderItem(sh.GetSceneItemID(), name)
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
