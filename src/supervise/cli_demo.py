"""Commands of the demo area (registered on the `supervise` group)."""

from __future__ import annotations

from .cli import cli  # noqa: F401
