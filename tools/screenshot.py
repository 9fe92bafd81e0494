"""Regenerate docs/bulletin-screenshot.png: the demo's March 2025 bulletin in headless Chromium.

    python tools/screenshot.py [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "bulletin-screenshot.png")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "demo"
        subprocess.run([sys.executable, "-m", "supervise", "--home", str(home), "demo", "--months", "3"],
                       check=True, stdout=subprocess.DEVNULL)
        page = home / "reports" / "2025-03" / "bulletin-2025-03.html"
        subprocess.run(
            [args.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={Path(tmp) / 'profile'}", "--hide-scrollbars",
             "--window-size=1100,1500", f"--screenshot={args.out}", page.as_uri()],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    print(args.out)


if __name__ == "__main__":
    main()
