"""The bulletin page in a real headless Chromium: it renders, shows every county, needs no network."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from supervise.workspace import Workspace

from .bulletin_support import Dom, render
from .conftest import require_peer

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)

pytestmark = [pytest.mark.chromium]


@pytest.fixture(autouse=True)
def _needs_chromium() -> None:
    require_peer("a headless Chromium", CHROMIUM)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    cmd = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
        # Any attempt to reach the network fails to resolve: the page must not need it.
        "--host-resolver-rules=MAP * ~NOTFOUND", *args,
    ]
    return subprocess.run(cmd, capture_output=True, timeout=120, check=True)


def png_summary(data: bytes) -> tuple[int, int, int]:
    """(width, height, distinct byte values in the decompressed scanlines).

    A blank page's scanlines filter to runs of one value (0 after Sub/Up filtering, 255 unfiltered),
    so a handful of distinct bytes means nothing was drawn; text and colour give dozens.
    """
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


def test_page_renders_in_chromium(filled: Workspace, tmp_path: Path) -> None:
    out = render(filled)
    shot = tmp_path / "page.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", out.html.as_uri())
    width, height, distinct = png_summary(shot.read_bytes())
    assert (width, height) == (1280, 2000)
    assert distinct > 32, "the screenshot is blank"

    dom_text = chromium(tmp_path, "--dump-dom", out.html.as_uri()).stdout.decode("utf-8")
    dom = Dom()
    dom.feed(dom_text)
    text = "".join(dom.text)
    for county in filled.registry.assessed_counties():
        assert county.name in text
    assert "script" not in dom.tags                       # nothing from a submission became markup
    assert "<script>alert(1)</script>" in text
    assert "svg" in dom.tags and "rect" in dom.tags      # the inline chart
    assert not [u for u in dom.urls if u.startswith(("http:", "https:", "//"))]


def test_email_renders_in_chromium(filled: Workspace, tmp_path: Path) -> None:
    out = render(filled)
    dom_text = chromium(tmp_path, "--dump-dom", out.email_html.as_uri()).stdout.decode("utf-8")
    dom = Dom()
    dom.feed(dom_text)
    assert "script" not in dom.tags and "svg" not in dom.tags and "style" not in dom.tags
    text = "".join(dom.text)
    assert all(c.name in text for c in filled.registry.assessed_counties())
    assert "鼓励先进：排名前三" in text and "鞭策后进：排名后三" in text
