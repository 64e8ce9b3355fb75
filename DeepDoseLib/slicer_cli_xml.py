"""The Slicer CLI module's method parameters, generated from the dose-method registry.

``DeepDoseCLI/DeepDoseCLI.xml`` holds one ``<parameters>`` group between two marker comments that is
written by :func:`update_cli_xml` (``python tools/make_cli_xml.py``) from the registry: the method
enumeration and every method's options, so the Slicer CLI cannot drift from the ``deepdose`` command.
A test checks that the committed XML equals the generated one. Pure text: no Slicer import.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Union
from xml.sax.saxutils import escape

from .dose_methods import OptionSpec, declared_options, registered_methods

__all__ = ["BEGIN_MARKER", "END_MARKER", "INT32_MAX", "method_parameters_xml", "update_cli_xml"]

BEGIN_MARKER = "<!-- BEGIN generated from DeepDoseLib.dose_methods by tools/make_cli_xml.py: do not edit -->"
END_MARKER = "<!-- END generated -->"
#: Slicer CLI integers are C ints.
INT32_MAX = 2**31 - 1
DEFAULT_METHOD = "led"


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _number(value: float, integer: bool) -> str:
    return str(int(value)) if integer else repr(float(value))


def _option_xml(spec: OptionSpec, users: List[str], indent: str) -> List[str]:
    description = f"{spec.help} (methods: {', '.join(users)})"
    head = [f"<name>{spec.slicer_name}</name>", f"<longflag>--{spec.slicer_name}</longflag>",
            f"<description>{_cdata(description)}</description>", f"<label>{escape(spec.label)}</label>"]
    if spec.is_path:
        tag = f'file fileExtensions="{",".join(spec.extensions)}"' if spec.extensions else "file"
        body = head + ["<channel>input</channel>"]
    elif spec.type is bool:
        tag, body = "boolean", head + [f"<default>{'true' if spec.default else 'false'}</default>"]
    elif spec.type in (int, float):
        integer = spec.type is int
        tag = "integer" if integer else "double"
        limit = INT32_MAX if integer else None
        maximum = limit if spec.maximum is None else (spec.maximum if limit is None else min(spec.maximum, limit))
        constraints = []
        if spec.minimum is not None:
            constraints.append(f"  <minimum>{_number(spec.minimum, integer)}</minimum>")
        if maximum is not None:
            constraints.append(f"  <maximum>{_number(maximum, integer)}</maximum>")
        constraints.append(f"  <step>{1 if integer else (0.001 if spec.percent else 1.0)}</step>")
        default = [] if spec.default is None else [f"<default>{_number(spec.default, integer)}</default>"]
        body = head + default + ["<constraints>"] + constraints + ["</constraints>"]
    elif spec.choices:
        tag = "string-enumeration"
        body = head + [f"<default>{escape(str(spec.default))}</default>"] + \
            [f"<element>{escape(c)}</element>" for c in spec.choices]
    else:
        tag, body = "string", head + [f"<default>{escape(str(spec.default))}</default>"]
    close = tag.split()[0]
    return [f"{indent}<{tag}>"] + [f"{indent}  {line}" for line in body] + [f"{indent}</{close}>"]


def method_parameters_xml(indent: str = "  ") -> str:
    """The generated ``<parameters>`` group: the method enumeration and every method option."""
    methods = registered_methods()
    inner = indent * 2
    lines = [f"{indent}<parameters>", f"{inner}<label>Method and options</label>",
             f"{inner}<description>{_cdata('Dose method and the options of each method (each method reads its own).')}"
             f"</description>", f"{inner}<string-enumeration>", f"{inner}  <name>method</name>",
             f"{inner}  <longflag>--method</longflag>",
             f"{inner}  <description>{_cdata('; '.join(f'{m.name} = {m.title}: {m.guidance}' for m in methods))}"
             f"</description>", f"{inner}  <label>Method</label>", f"{inner}  <default>{DEFAULT_METHOD}</default>"]
    lines += [f"{inner}  <element>{m.name}</element>" for m in methods] + [f"{inner}</string-enumeration>"]
    for spec, users in declared_options(methods, key="slicer_name"):
        lines += _option_xml(spec, users, inner)
    lines.append(f"{indent}</parameters>")
    return "\n".join(lines)


def update_cli_xml(path: Union[str, Path], write: bool = False) -> bool:
    """Whether the generated group of the XML at ``path`` is current; with ``write``, make it so.

    Raises
    ------
    ValueError
        When the file lacks the marker comments.
    """
    text = Path(path).read_text(encoding="utf-8")
    start, end = text.find(BEGIN_MARKER), text.find(END_MARKER)
    if start < 0 or end < start:
        raise ValueError(f"{path}: no generated section ({BEGIN_MARKER} ... {END_MARKER})")
    new = text[:start] + BEGIN_MARKER + "\n" + method_parameters_xml() + "\n  " + text[end:]
    if new != text and write:
        Path(path).write_text(new, encoding="utf-8")
    return new == text
