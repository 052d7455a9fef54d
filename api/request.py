"""The request class: undecodable JSON bodies are a client error (400), never a 500."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import ClientException


class ApiRequest(Request[Any, Any, Any]):
    """Maps body decoding failures msgspec raises as non-HTTP exceptions to 400."""

    async def json(self) -> Any:
        """The decoded JSON body."""
        try:
            return await super().json()
        except UnicodeDecodeError:
            raise ClientException("request body is not valid UTF-8") from None
        except RecursionError:
            raise ClientException("request body JSON is nested too deeply") from None
