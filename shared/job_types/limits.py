"""Size and nesting limits for the free-form JSON parts of payloads (params, bodies)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

# Serialized size caps; generous for templates and webhooks, small enough for one document.
MAX_PARAMS_BYTES = 16 * 1024
MAX_BODY_BYTES = 16 * 1024
# Nesting inside one free-form value; the API separately caps the whole payload's depth.
MAX_JSON_DEPTH = 6


def json_bytes(value: Any) -> bytes:
    """Compact UTF-8 JSON of `value` (as it is measured, signed and sent)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def json_depth(value: Any) -> int:
    """Nesting depth: 0 for a scalar, 1 for a flat object or array, and so on."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        children: list[Any] | None = None
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list | tuple):
            children = list(item)
        if children is None:
            deepest = max(deepest, depth)
            continue
        deepest = max(deepest, depth + 1)
        pending.extend((child, depth + 1) for child in children)
    return deepest


def bounded_json(max_bytes: int, max_depth: int = MAX_JSON_DEPTH) -> Callable[[Any], Any]:
    """A pydantic after-validator: the value must be JSON, at most `max_bytes` and `max_depth`."""

    def check(value: Any) -> Any:
        depth = json_depth(value)
        if depth > max_depth:
            raise ValueError(f"nested {depth} levels deep; at most {max_depth} allowed")
        try:
            size = len(json_bytes(value))
        except (TypeError, ValueError) as error:
            raise ValueError(f"must be plain JSON ({error})") from None
        if size > max_bytes:
            raise ValueError(f"is {size} bytes as JSON; at most {max_bytes} allowed")
        return value

    return check
