"""The one way our xlsx reports lay out a table: a bold, frozen header row, set column widths,
wrapped cells, and text that can never run as a formula in whoever opens the file."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from openpyxl.styles import Alignment, Font
from openpyxl.worksheet.worksheet import Worksheet

COLUMNS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def table(sheet: Worksheet, header: Sequence[str], rows: Sequence[Sequence[Any]], widths: Sequence[int]) -> None:
    sheet.append(list(header))
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    first = sheet.max_row + 1
    for row in rows:
        sheet.append(list(row))
        for cell in sheet[sheet.max_row]:
            if cell.data_type == "f":  # a clerk's "=..." stays text
                cell.data_type = "s"
    for column, width in zip(COLUMNS, widths, strict=False):
        sheet.column_dimensions[column].width = width
    for line in sheet.iter_rows(min_row=first):
        for cell in line:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    sheet.freeze_panes = f"A{first}"
