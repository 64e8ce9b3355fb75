"""Presentation of results for people: the self-contained HTML dosimetry report (needs matplotlib)."""
from __future__ import annotations

from .html import REPORT_ISODOSE_PERCENTS, ReportInput, render_report, write_report

__all__ = ["REPORT_ISODOSE_PERCENTS", "ReportInput", "render_report", "write_report"]
