"""Shared fixtures: real workspaces in tmp_path, real SQLite files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from supervise.periods import TZ
from supervise.workspace import Workspace, init_workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A fresh workspace with the default registry and rulebooks."""
    return init_workspace(tmp_path / "home")


def at(text: str) -> datetime:
    """'2025-04-05 23:59' in Asia/Shanghai."""
    return datetime.fromisoformat(text).replace(tzinfo=TZ)
