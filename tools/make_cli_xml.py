#!/usr/bin/env python
"""Rewrite the generated method group of DeepDoseCLI/DeepDoseCLI.xml from the dose-method registry.

    python tools/make_cli_xml.py          # update the file
    python tools/make_cli_xml.py --check  # exit 1 when it is out of date
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from DeepDoseLib.slicer_cli_xml import update_cli_xml  # noqa: E402

XML = ROOT / "DeepDoseCLI" / "DeepDoseCLI.xml"

if __name__ == "__main__":
    check = "--check" in sys.argv[1:]
    current = update_cli_xml(XML, write=not check)
    print(f"{XML}: {'up to date' if current else ('out of date' if check else 'updated')}")
    sys.exit(1 if check and not current else 0)
