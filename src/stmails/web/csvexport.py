"""Spreadsheet-safe CSV now lives in `stmails.services.csvexport`; re-exported for old callers."""

from stmails.services.csvexport import FORMULA_TRIGGERS, csv_lines, neutralize

__all__ = ["FORMULA_TRIGGERS", "csv_lines", "neutralize"]
