"""Analysis of dose-rate maps (organ statistics; DVH, isodose and time integration to come)."""
from __future__ import annotations

from .organs import OrganStatistics, organ_statistics, format_organ_table

__all__ = ["OrganStatistics", "organ_statistics", "format_organ_table"]
