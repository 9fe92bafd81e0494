"""The shipped data (top-level data/, jobs/, reports/templates/) reaches a wheel install.

The wheel is built from this checkout and installed into a fresh virtual environment; the
environment borrows the test environment's third-party packages through a .pth line (no network),
but its `supervise` and its shipped files are the wheel's alone.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_code_package_is_listed_for_the_build() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(p.parent.relative_to(ROOT / "src").parts) for p in (ROOT / "src" / "supervise").rglob("__init__.py")
    }
    assert on_disk <= listed, f"packages missing from pyproject's [tool.setuptools] packages: {on_disk - listed}"
    shipped = {name for name in listed if name.startswith("supervise_shipped.")}
    assert shipped == {"supervise_shipped.data", "supervise_shipped.jobs", "supervise_shipped.templates"}


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp), str(ROOT)],
        check=True, timeout=300,
    )
    (wheel,) = tmp.glob("supervise-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = next((venv / "lib").glob("python3*/site-packages"))
    # Third-party packages from the test environment, after the venv's own site-packages.
    (site / "zz_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps",
         "--no-index", str(wheel)],
        check=True, timeout=300,
    )
    return venv


def test_the_wheel_ships_the_single_copies_and_init_copies_them(wheel_venv: Path, tmp_path: Path) -> None:
    py = str(wheel_venv / "bin" / "python")
    where = subprocess.run(
        [py, "-c", "import supervise, supervise.assets as a; print(supervise.__file__);"
         "print(a.shipped('data')); print(a.shipped('jobs')); print(a.shipped('templates'))"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout.split()
    assert all(str(wheel_venv) in line for line in where), where

    home = tmp_path / "ws"
    subprocess.run([str(wheel_venv / "bin" / "supervise"), "--home", str(home), "init"], check=True,
                   capture_output=True, timeout=120)
    assert (home / "jobs" / "schedule.toml").read_bytes() == (ROOT / "jobs" / "schedule.toml").read_bytes()
    for name in ("counties.csv", "clusters.csv", "targets.csv", "indicators.csv"):
        assert (home / "reference" / name).read_bytes() == (ROOT / "data" / name).read_bytes()
    for rule in (ROOT / "data" / "rules").glob("*.toml"):
        assert (home / "rules" / rule.name).read_bytes() == rule.read_bytes()
    page = subprocess.run(
        [py, "-c", "from supervise.templating import environment;"
         "print(sorted(environment().list_templates()))"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout
    for template in (ROOT / "reports" / "templates").glob("*.html"):
        assert template.name in page
