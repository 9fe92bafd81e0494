"""Where the shipped data is: the top-level `data/`, `jobs/` and `reports/templates/` folders.

They are the single copies. The build maps them into the wheel as the resource folders
`supervise_shipped.data`, `.jobs` and `.templates` (pyproject's package-dir); an editable
install maps the same names onto the source tree, so both installs find them the same way,
by import name. The workspace copies (`supervise init`) are the ones that run; these are the
defaults they are made from.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

SHIPPED = "supervise_shipped"


@cache
def shipped(folder: str) -> Path:
    """The folder of shipped files: "data", "jobs" or "templates"."""
    spec = importlib.util.find_spec(f"{SHIPPED}.{folder}")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the shipped folder {folder!r} is not installed ({SHIPPED}.{folder})")
    return Path(list(spec.submodule_search_locations)[0])
