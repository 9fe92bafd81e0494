"""Parse baselines for the scale benchmark, each run as its own process.

    python parse_floor.py calamine DIR          # the floor: python-calamine to_python() of every sheet
    python parse_floor.py pandas DIR [LIMIT]    # what a user would write: pandas + openpyxl
"""

from __future__ import annotations

import sys
from pathlib import Path


def calamine(files: list[Path]) -> int:
    from python_calamine import CalamineWorkbook

    cells = 0
    for f in files:
        wb = CalamineWorkbook.from_path(str(f))
        for name in wb.sheet_names:
            rows = wb.get_sheet_by_name(name).to_python()
            cells += sum(len(r) for r in rows)
    return cells


def naive_pandas(files: list[Path]) -> int:
    import pandas as pd

    cells = 0
    for f in files:
        for df in pd.read_excel(f, sheet_name=None, engine="openpyxl", header=None).values():
            cells += df.size
    return cells


if __name__ == "__main__":
    mode, folder = sys.argv[1], Path(sys.argv[2])
    files = sorted(folder.glob("*.xlsx"))
    if len(sys.argv) > 3:
        files = files[: int(sys.argv[3])]
    n = calamine(files) if mode == "calamine" else naive_pandas(files)
    print(f"{len(files)} files, {n} cells")
