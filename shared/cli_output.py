"""How `cronjobs` shows results: aligned tables for people, JSON for machines."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from bson import ObjectId


@dataclass(frozen=True)
class Output:
    """What a command produced: JSON-able data, shown as a table unless `--json`."""

    data: Any
    columns: tuple[str, ...] = ()
    text: str | None = None


def render(output: Output, *, as_json: bool, out: TextIO) -> None:
    """Write `output` to `out`: JSON, its text, or a table of its rows."""
    if as_json:
        out.write(json.dumps(output.data, default=_json_value, indent=2, sort_keys=True) + "\n")
    elif output.text is not None:
        out.write(output.text + "\n")
    else:
        out.write(_table(output.data, output.columns))


def _json_value(value: object) -> str:
    if isinstance(value, datetime):
        return _cell(value)
    if isinstance(value, ObjectId):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=_json_value, sort_keys=True)
    return str(value)


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    if not rows:
        return "(none)\n"
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    headers = [column.lstrip("_") for column in columns]
    widths = [max(len(text) for text in column) for column in zip(headers, *cells, strict=True)]
    lines = [headers, *cells]
    return "".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        + "\n"
        for line in lines
    )


def key_values(document: Mapping[str, Any]) -> str:
    """One aligned `field  value` line per field."""
    width = max(len(key) for key in document)
    return "\n".join(f"{key.ljust(width)}  {_cell(value)}" for key, value in document.items())
