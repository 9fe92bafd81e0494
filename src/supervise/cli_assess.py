"""Commands of the assess area (registered on the `supervise` group)."""

from __future__ import annotations

from .cli import cli  # noqa: F401
