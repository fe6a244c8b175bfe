"""CSV files that staff open in a spreadsheet program (Excel, WPS)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from backend.core.clock import LOCAL_TIME

# A cell starting with one of these is a formula to a spreadsheet: neutralised with a quote.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any, *, time_format: str | None = None) -> str:
    """One value as text: times in China time (ISO 8601 unless `time_format`), formulas
    neutralised, nothing as empty."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        local = value.astimezone(LOCAL_TIME)
        return local.strftime(time_format) if time_format else local.isoformat()
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_text(rows: Iterable[Iterable[Any]], *, time_format: str | None = None) -> str:
    """Rows as CSV in UTF-8 with a BOM (so spreadsheet programs read Chinese right), CRLF."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow(cell(value, time_format=time_format) for value in row)
    return out.getvalue()
