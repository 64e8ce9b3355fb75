"""Presentation of results for people: the self-contained HTML dosimetry report (needs matplotlib)."""
from __future__ import annotations

from .content import REPORT_ISODOSE_PERCENTS, ReportData, ReportInput, report_data
from .html import render_html, render_report, write_report

__all__ = ["REPORT_ISODOSE_PERCENTS", "ReportData", "ReportInput", "render_html", "render_report", "report_data",
           "write_report"]
