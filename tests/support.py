"""Helpers the test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

import os

TEST_JWT_SECRET = "test-secret-0123456789abcdef0123456789"


def external_mongodb_uri() -> str | None:
    """A real MongoDB to test against instead of the local stand-in, if configured."""
    return os.environ.get("CRON_MONGODB_URI") or os.environ.get("MONGODB_URI") or None
