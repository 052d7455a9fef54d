"""Turn pydantic errors into `field path -> message`, the way a client sees them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError


def field_path(loc: tuple[int | str, ...]) -> str:
    """("to", 3) -> "to[3]"; ("headers", "X-A") -> "headers.X-A"."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def payload_errors(model: type[BaseModel], payload: Any) -> dict[str, str]:
    """Every error of validating `payload`, keyed by field path (empty dict: valid)."""
    try:
        model.model_validate(payload)
    except ValidationError as error:
        return {field_path(item["loc"]): item["msg"] for item in error.errors()}
    return {}
