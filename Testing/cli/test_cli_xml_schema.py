"""DeepDoseCLI.xml follows the CTK command-line-module XML schema (ctkCmdLineModule.xsd).

The schema itself is not shipped (it is CTK's file); this test checks the same rules, element by
element: the order of the sequences (xsd:sequence is ordered), which elements are required, the
name / flag patterns, the flag-or-index choice, the channel values, the enumeration elements and
the constraints (minimum?, maximum?, step). Slicer's own parser is more lenient than the schema;
following the schema keeps the module loadable by any CTK host.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from conftest import REPO_ROOT

XML_PATH = REPO_ROOT / "DeepDoseCLI" / "DeepDoseCLI.xml"

EXECUTABLE_SEQUENCE = [("category", 0, 1), ("title", 1, 1), ("description", 1, 1), ("version", 0, 1),
                       ("documentation-url", 0, 1), ("license", 0, 1), ("contributor", 0, 1),
                       ("acknowledgements", 0, 1), ("parameters", 1, None)]
SCALAR = {"integer", "float", "double"}
MULTIPLE = SCALAR | {"string", "directory", "point", "region", "file", "image", "geometry"}
ENUMERATIONS = {"integer-enumeration", "float-enumeration", "double-enumeration", "string-enumeration"}
VECTORS = {"integer-vector", "float-vector", "double-vector"}
PARAMETER_TAGS = SCALAR | MULTIPLE | ENUMERATIONS | VECTORS | {"boolean", "string-vector"}
IMAGE_TYPES = {"scalar", "label", "tensor", "diffusion-weighted", "vector", "model"}
NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*\Z")
FLAG = re.compile(r"-?[a-zA-Z]\Z")
LONGFLAG = re.compile(r"-?-?[_a-zA-Z][_a-zA-Z0-9]*\Z")


def check_sequence(tags, sequence, where):
    """Children ``tags`` must follow ``sequence`` [(tag, min, max or None)] in order."""
    position = 0
    for tag, minimum, maximum in sequence:
        count = 0
        while position < len(tags) and tags[position] == tag:
            position += 1
            count += 1
        assert count >= minimum, "%s: <%s> is required" % (where, tag)
        assert maximum is None or count <= maximum, "%s: at most %d <%s>" % (where, maximum, tag)
    assert position == len(tags), "%s: unexpected or misplaced <%s> (order: %s)" % (
        where, tags[position], ", ".join(t for t, _, _ in sequence))


def check_parameter(element, where):
    tags = [child.tag for child in element]
    assert tags and tags[0] == "name", "%s: <name> comes first" % where
    name = element.findtext("name")
    assert NAME.match(name), "%s: bad name %r" % (where, name)
    where = "%s <%s> %s" % (where, element.tag, name)
    # The choice: (flag, longflag?) | longflag | index.
    position = 1
    if tags[position:position + 1] == ["flag"]:
        assert FLAG.match(element.findtext("flag")), where
        position += 1
        if tags[position:position + 1] == ["longflag"]:
            position += 1
    elif tags[position:position + 1] == ["longflag"]:
        position += 1
    elif tags[position:position + 1] == ["index"]:
        assert element.findtext("index").isdigit(), "%s: index is a non-negative integer" % where
        position += 1
    else:
        pytest.fail("%s: flag, longflag or index must follow <name>" % where)
    if element.find("longflag") is not None:
        assert LONGFLAG.match(element.findtext("longflag")), where
    tail = [("description", 1, 1), ("label", 1, 1), ("default", 0, 1), ("channel", 0, 1)]
    if element.tag in SCALAR or element.tag in VECTORS:
        tail.append(("constraints", 0, 1))
    if element.tag in ENUMERATIONS:
        tail.append(("element", 1, None))
    check_sequence(tags[position:], tail, where)
    if element.find("channel") is not None:
        assert element.findtext("channel") in ("input", "output"), where
    allowed_attributes = {"hidden"}
    if element.tag in MULTIPLE:
        allowed_attributes.add("multiple")
    if element.tag in ("file", "image", "geometry"):
        allowed_attributes.add("fileExtensions")
    if element.tag in ("image", "geometry"):
        allowed_attributes.add("type")
    if element.tag in ("point", "region"):
        allowed_attributes.add("coordinateSystem")
    assert set(element.attrib) <= allowed_attributes, "%s: attributes %s" % (where, sorted(element.attrib))
    if element.tag == "image" and "type" in element.attrib:
        assert element.attrib["type"] in IMAGE_TYPES, where
    constraints = element.find("constraints")
    if constraints is not None:
        children = [child.tag for child in constraints]
        assert set(children) <= {"minimum", "maximum", "step"} and len(children) == len(set(children)), where
        assert "step" in children, "%s: <constraints> needs <step>" % where
        for child in constraints:
            float(child.text)  # xsd:double


def test_cli_xml_follows_the_ctk_schema():
    root = ET.parse(XML_PATH).getroot()
    assert root.tag == "executable"
    check_sequence([child.tag for child in root], EXECUTABLE_SEQUENCE, "executable")
    names = []
    for group in root.findall("parameters"):
        tags = [child.tag for child in group]
        assert tags[:2] == ["label", "description"], "each <parameters> starts with <label>, <description>"
        assert len(tags) > 2 and set(tags[2:]) <= PARAMETER_TAGS, "parameters group %r" % group.findtext("label")
        assert set(group.attrib) <= {"advanced"}
        for element in group[2:]:
            check_parameter(element, "group %r:" % group.findtext("label"))
            names.append(element.findtext("name"))
    assert len(names) == len(set(names)), "parameter names are unique within the module"
    indices = sorted(int(e.findtext("index")) for e in root.iter() if e.find("index") is not None)
    assert indices == list(range(len(indices))), "indices run 0, 1, 2, ..."


def test_generated_method_group_is_current():
    """The XML's method group is generated from the dose-method registry (tools/make_cli_xml.py)."""
    from DeepDoseLib.slicer_cli_xml import update_cli_xml

    assert update_cli_xml(XML_PATH), "DeepDoseCLI.xml is out of date: run python tools/make_cli_xml.py"
