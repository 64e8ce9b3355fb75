"""Conformance of DeepDose.ui + DeepDoseParameterNode with Slicer's parameterNodeWrapper GUI connectors.

slicer-core (PyPI) has no Qt and no ``slicer.parameterNodeWrapper``, so the wrapper cannot run here,
and replacing it by a stand-in would test nothing about it. Instead its documented rules are encoded
below as facts, read from Slicer's source (``Base/Python/slicer/parameterNodeWrapper/guiConnectors.py``,
``validators.py``, ``serializers.py``; identical in Slicer 5.8 and main) and the developer guide's
"parameter node wrapper" page:

* ``createGuiConnector`` takes the first registered connector whose ``canRepresent(widget, datatype)``
  holds and otherwise raises "Unable to create GUI connector from datatype ... to widget type ...";
  ``canRepresent`` compares the exact widget class (``type(widget) == ...``) and the unannotated type.
* ``QSpinBox``/``QSlider`` <-> ``int``; ``QDoubleSpinBox``/``ctkSliderWidget`` <-> ``float``: the range
  comes from ``WithinRange`` (or ``Minimum``/``Maximum``); without it the connector sets
  ``[-2**31, 2**31-1]`` (int) or ``[-inf, inf]`` (float), overwriting the .ui's minimum and maximum;
  sliders without a range raise.
* ``QComboBox`` <-> ``int``/``float``/``str``/``bool`` only with a ``Choice`` annotation (else it raises), or
  an ``enum.Enum``; the connector refills the combo box with the choices.
* ``QCheckBox``/``QPushButton`` <-> ``bool``; ``QLineEdit``/``QTextEdit`` <-> ``str``.
* ``ctkPathLineEdit``/``ctkDirectoryButton`` <-> ``pathlib`` types only (never ``str``); the serializer's
  default for a path is ``Path()``, which reads back as ``Path('.')``.
* ``qMRMLNodeComboBox``/``qMRMLSubjectHierarchyTreeView`` <-> an MRML node class or a Union of them; the
  connector overwrites the combo box's ``nodeTypes`` with the annotated class.
* Validators run on every write, the default included (``_initMethod`` writes it): a default outside its
  ``WithinRange``/``Choice`` raises when the parameter node is created.

Each widget of DeepDose.ui with a ``SlicerParameterName`` is checked against the annotation of the field
of the same name in DeepDose.py (read from the source; annotation expressions are evaluated with the
real ``typing``, ``pathlib`` and MRML classes of slicer-core, the real choice lists of
DeepDoseModuleLogic, and the validator facts below).
"""
from __future__ import annotations

import ast
import enum
import math
import os
import pathlib
import typing
import xml.etree.ElementTree as ET

import pytest

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
MODULE_PY = os.path.join(REPO_ROOT, "DeepDose", "DeepDose.py")
MODULE_UI = os.path.join(REPO_ROOT, "DeepDose", "Resources", "UI", "DeepDose.ui")


# -- facts: the validators/annotations of slicer.parameterNodeWrapper (validators.py, guiConnectors.py) ------

class WithinRange:
    def __init__(self, minimum, maximum):
        self.minimum, self.maximum = minimum, maximum

    def validate(self, value):
        return self.minimum <= value <= self.maximum


class Minimum:
    def __init__(self, minimum):
        self.minimum = minimum

    def validate(self, value):
        return value >= self.minimum


class Maximum:
    def __init__(self, maximum):
        self.maximum = maximum

    def validate(self, value):
        return value <= self.maximum


class Choice:
    def __init__(self, choices):
        self.choices = choices

    def validate(self, value):
        return value in self.choices


class Decimals:
    def __init__(self, value):
        self.value = value


class SingleStep:
    def __init__(self, value):
        self.value = value


VALIDATOR_FACTS = {cls.__name__: cls for cls in (WithinRange, Minimum, Maximum, Choice, Decimals, SingleStep)}
PATH_TYPES = (pathlib.Path, pathlib.PosixPath, pathlib.WindowsPath, pathlib.PurePath, pathlib.PurePosixPath,
              pathlib.PureWindowsPath)
INT_FULL_RANGE = (-2 ** 31, 2 ** 31 - 1)
FLOAT_FULL_RANGE = (-math.inf, math.inf)


def split(annotated):
    """(unannotated type, metadata list) as the wrapper's util.splitAnnotations."""
    if typing.get_origin(annotated) is typing.Annotated:
        return annotated.__origin__, list(annotated.__metadata__)
    return annotated, []


def first(metadata, cls):
    return next((m for m in metadata if isinstance(m, cls)), None)


def is_node_type(datatype) -> bool:
    import slicer

    if typing.get_origin(datatype) is typing.Union:
        args = [a for a in typing.get_args(datatype) if a is not type(None)]
        return bool(args) and all(is_node_type(a) for a in args)
    return isinstance(datatype, type) and issubclass(datatype, slicer.vtkMRMLNode)


def connector_for(widget_class: str, annotated):
    """The connector Slicer's createGuiConnector would pick, and the range it imposes, or a reason it raises.

    Returns ``(connector name or None, effective (min, max) or None, problem or None)``.
    """
    datatype, metadata = split(annotated)
    within, lo, hi = first(metadata, WithinRange), first(metadata, Minimum), first(metadata, Maximum)

    def numeric_range(full):
        if within is not None:
            return (within.minimum, within.maximum)
        return (lo.minimum if lo else full[0], hi.maximum if hi else full[1])

    bounded = within is not None or (lo is not None and hi is not None)
    if widget_class in ("QCheckBox", "QPushButton") and datatype is bool:
        return widget_class + "ToBool", None, None
    if widget_class in ("QSlider", "QSpinBox") and datatype is int:
        if widget_class == "QSlider" and not bounded:
            return None, None, "a QSlider needs a bounded int (WithinRange or Minimum+Maximum): the connector raises"
        return "QSliderOrSpinBoxToInt", numeric_range(INT_FULL_RANGE), None
    if widget_class in ("QDoubleSpinBox", "ctkSliderWidget") and datatype is float:
        if widget_class == "ctkSliderWidget" and not bounded:
            return None, None, "a ctkSliderWidget needs a bounded float: the connector raises"
        return "QDoubleSpinBoxCtkSliderWidgetToFloat", numeric_range(FLOAT_FULL_RANGE), None
    if widget_class == "QComboBox":
        if isinstance(datatype, type) and issubclass(datatype, enum.Enum):
            return "QComboBoxToEnum", None, None
        if datatype in (int, float, str, bool):
            if first(metadata, Choice) is None:
                return None, None, "a QComboBox bound to %s needs Choice([...]): the connector raises" % datatype
            return "QComboBoxToStringable", None, None
    if widget_class in ("QLineEdit", "QTextEdit") and datatype is str:
        return widget_class + "ToStr", None, None
    if widget_class in ("ctkPathLineEdit", "ctkDirectoryButton") and datatype in PATH_TYPES:
        return widget_class + "ToPath", None, None
    if widget_class in ("qMRMLNodeComboBox", "qMRMLSubjectHierarchyTreeView") and is_node_type(datatype):
        return widget_class + "ToNode", None, None
    return None, None, ("Unable to create GUI connector from datatype '%s' to widget type '%s'"
                        % (annotated, widget_class))


# -- reading DeepDose.py and DeepDose.ui ---------------------------------------------------------------

def _module_namespace(tree, module_logic):
    """Names the annotations of DeepDose.py refer to, resolved to the real objects (validators: facts)."""
    import slicer

    namespace = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                name = alias.asname or alias.name
                if node.module == "slicer.parameterNodeWrapper":
                    if alias.name in VALIDATOR_FACTS:
                        namespace[name] = VALIDATOR_FACTS[alias.name]
                elif node.module == "slicer":
                    namespace[name] = getattr(slicer, alias.name)
                elif node.module == "DeepDoseModuleLogic":
                    namespace[name] = getattr(module_logic, alias.name)
                elif node.module in ("typing", "pathlib"):
                    namespace[name] = getattr({"typing": typing, "pathlib": pathlib}[node.module], alias.name)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                namespace[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return namespace


def parameter_fields(module_logic, source_path=MODULE_PY):
    """``{name: (annotated type, default or NO_DEFAULT)}`` of DeepDoseParameterNode, evaluated as Slicer would."""
    with open(source_path, encoding="utf-8") as stream:
        tree = ast.parse(stream.read(), feature_version=(3, 9))
    namespace = _module_namespace(tree, module_logic)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "DeepDoseParameterNode")
    assert any(getattr(d, "id", None) == "parameterNodeWrapper" for d in cls.decorator_list)
    fields = {}
    for item in cls.body:
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            annotated = eval(compile(ast.Expression(item.annotation), source_path, "eval"), dict(namespace))
            default = NO_DEFAULT if item.value is None else \
                eval(compile(ast.Expression(item.value), source_path, "eval"), dict(namespace))
            fields[item.target.id] = (annotated, default)
    return fields


NO_DEFAULT = object()


def ui_bound_widgets(ui_path=MODULE_UI):
    """``{parameter name: (widget class, widget name, {property: text})}`` for widgets with SlicerParameterName."""
    bound = {}
    for widget in ET.parse(ui_path).getroot().iter("widget"):
        props = {p.get("name"): p for p in widget.findall("property")}
        if "SlicerParameterName" in props:
            values = {}
            for name, prop in props.items():
                child = list(prop)[0] if len(prop) else None
                if child is not None and child.tag in ("number", "double", "string", "bool"):
                    values[name] = child.text
                elif child is not None and child.tag == "stringlist":
                    values[name] = [s.text for s in child.findall("string")]
            bound[values["SlicerParameterName"]] = (widget.get("class"), widget.get("name"), values)
    return bound


def conformance_problems(fields, bound):
    """Every way the .ui and the parameter node disagree with the wrapper's rules (empty: conformant)."""
    problems = []
    for parameter, (widget_class, widget_name, props) in sorted(bound.items()):
        if parameter not in fields:
            problems.append("%s: SlicerParameterName %r has no parameter-node field" % (widget_name, parameter))
            continue
        annotated, default = fields[parameter]
        connector, effective, problem = connector_for(widget_class, annotated)
        if problem:
            problems.append("%s (%s) <- %s: %s" % (widget_name, widget_class, parameter, problem))
            continue
        datatype, metadata = split(annotated)
        if effective is not None:
            for bound_name, index in (("minimum", 0), ("maximum", 1)):
                if bound_name in props and float(props[bound_name]) != float(effective[index]):
                    problems.append("%s: the .ui %s %s is overwritten by the connector with %s (annotate the range)"
                                    % (widget_name, bound_name, props[bound_name], effective[index]))
            if default is not NO_DEFAULT and not effective[0] <= default <= effective[1]:
                problems.append("%s: default %r outside the widget range %s" % (parameter, default, effective))
        for validator in metadata:
            if hasattr(validator, "validate") and default is not NO_DEFAULT and not validator.validate(default):
                problems.append("%s: default %r fails %s (the wrapper raises when it writes the default)"
                                % (parameter, default, type(validator).__name__))
        if widget_class == "qMRMLNodeComboBox" and props.get("nodeTypes"):
            names = sorted(t.__name__ for t in (typing.get_args(datatype) or (datatype,)) if t is not type(None))
            if sorted(props["nodeTypes"]) != names:
                problems.append("%s: .ui nodeTypes %s are replaced by %s" % (widget_name, props["nodeTypes"], names))
        if datatype in PATH_TYPES and default is not NO_DEFAULT and not isinstance(default, datatype):
            problems.append("%s: default %r is not a %s" % (parameter, default, datatype.__name__))
    return problems


#: Input widget classes the panel must bind through the wrapper (no hand-written syncing).
INPUT_WIDGET_CLASSES = ("QComboBox", "QSpinBox", "QDoubleSpinBox", "QCheckBox", "QLineEdit", "ctkPathLineEdit",
                        "qMRMLNodeComboBox", "ctkSliderWidget", "QSlider")


@pytest.fixture
def module_logic(monkeypatch, scene):
    from slicer_module_loader import load_module_logic

    return load_module_logic(monkeypatch, scene)


def test_every_bound_widget_is_connectable_with_defaults_in_range(module_logic):
    fields = parameter_fields(module_logic)
    bound = ui_bound_widgets()
    assert bound, "DeepDose.ui has no SlicerParameterName"
    assert conformance_problems(fields, bound) == []


def test_every_input_widget_is_bound_through_the_wrapper():
    unbound = [w.get("name") for w in ET.parse(MODULE_UI).getroot().iter("widget")
               if w.get("class") in INPUT_WIDGET_CLASSES
               and not any(p.get("name") == "SlicerParameterName" for p in w.findall("property"))]
    assert unbound == []


def test_choice_lists_are_what_the_library_offers(module_logic):
    import DeepDoseLib
    from DeepDoseLib.image_io import PET_UNIT_TO_BQ_PER_ML

    fields = parameter_fields(module_logic)
    choices = {name: first(split(annotated)[1], Choice).choices for name, (annotated, _) in fields.items()
               if first(split(annotated)[1], Choice) is not None}
    assert set(choices["method"]) == set(DeepDoseLib.METHODS)
    assert list(choices["nuclide"]) == DeepDoseLib.list_nuclides()
    assert set(choices["petUnit"]) == set(PET_UNIT_TO_BQ_PER_ML)
    assert module_logic.PET_UNIT_TO_BQ_PER_ML == PET_UNIT_TO_BQ_PER_ML
    assert set(module_logic.METHOD_OPTIONS) == set(choices["method"]) == set(module_logic.METHOD_GUIDANCE)


def test_the_rules_catch_the_panel_that_never_enabled_apply(module_logic, tmp_path):
    """The earlier panel (modelFile: str on a ctkPathLineEdit, unbounded decays/seed) is rejected."""
    fields = parameter_fields(module_logic)
    broken = dict(fields, modelFile=(str, ""), decays=(int, 1000000), seed=(int, 0))
    problems = conformance_problems(broken, ui_bound_widgets())
    assert any("Unable to create GUI connector from datatype '<class 'str'>' to widget type 'ctkPathLineEdit'" in p
               for p in problems), problems
    assert any("decaysSpinBox: the .ui minimum 1000 is overwritten" in p for p in problems), problems
    # A default outside its range and a combo box without choices are caught too.
    assert any("fails WithinRange" in p for p in conformance_problems(
        dict(fields, decays=(typing.Annotated[int, WithinRange(1000, 2000000000)], 5)), ui_bound_widgets()))
    assert any("needs Choice" in p for p in conformance_problems(dict(fields, method=(str, "led")),
                                                                  ui_bound_widgets()))


def test_empty_model_path_means_the_bundled_model(module_logic):
    annotated, default = parameter_fields(module_logic)["modelFile"]
    assert split(annotated)[0] in PATH_TYPES and default == pathlib.Path() and str(default) == "."
    assert module_logic.modelPathOrNone(default) is None
    assert module_logic.modelPathOrNone(pathlib.Path("/models/m.pt")) == "/models/m.pt"


def test_migration_tables_match_the_annotations(module_logic):
    """migrateParameterNode resets exactly what the annotations would refuse."""
    fields = parameter_fields(module_logic)
    for name, (annotated, _default) in fields.items():
        datatype, metadata = split(annotated)
        choice, within = first(metadata, Choice), first(metadata, WithinRange)
        if choice is not None:
            assert tuple(module_logic.CHOICE_PARAMETERS[name]) == tuple(choice.choices), name
        if within is not None and datatype is int:
            assert module_logic.INT_PARAMETER_RANGES[name] == (within.minimum, within.maximum), name
    assert set(module_logic.CHOICE_PARAMETERS) == {n for n, (a, _) in fields.items() if first(split(a)[1], Choice)}
