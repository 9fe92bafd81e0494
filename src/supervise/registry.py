"""The registry: counties, clusters, annual targets and the indicator dictionary.

Loaded from CSV files (the workspace's `reference/`, defaults shipped from the top-level `data/`).
A broken file is refused with a message naming the file, the line and the fix.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .assets import shipped
from .errors import SuperviseError

MAX_REFERENCE_BYTES = 20_000_000

COUNTY_CODE = re.compile(r"^\d{6}$")
CLUSTER_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")


def unknown_county_message(code: str) -> str:
    """The one line for an unknown county code, the same wherever a code is given."""
    return f"未知的县（市、区）代码 {code}：--county 须为 reference/counties.csv 中的6位代码"


class RegistryError(SuperviseError, ValueError):
    """A reference file that cannot be used as it is."""


GOAL_MEASURES = ("tier", "sum", "mean")
GOAL_TIERS = ("100+", "500+", "200-500")


@dataclass(frozen=True)
class Goal:
    """One of the plan's goals (goals.csv), measured in the bulletin's 目标进度 table.

    measure: `tier` counts the clusters whose revenue (indicator) reached `tier` (100+, 500+,
    200-500 亿元); `sum` / `mean` add up / average the indicator over the clusters that reported it
    (a monthly indicator from the period's data, a quarterly one from the latest quarterly update).
    `target` None: a goal stated as a growth rate (`target_text`), shown without a percentage.
    """

    label: str
    unit: str
    measure: str
    indicator: str
    tier: str
    target: float | None
    target_text: str
    basis: str
    year: int
    policy: str


@dataclass(frozen=True)
class County:
    code: str
    name: str
    kind: str = "县"
    assessed: bool = True
    emails: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cluster:
    code: str
    county_code: str
    county_name: str
    name: str


@dataclass(frozen=True)
class Indicator:
    code: str
    label: str
    unit: str
    dataset: str  # monthly | quarterly
    kind: str  # stock | ytd | text
    type: str  # number | text
    agg: str  # sum | mean | none
    min: float | None
    max: float | None
    integer: bool
    optional: bool
    help: str = ""

    @property
    def is_number(self) -> bool:
        return self.type == "number"

    @property
    def header(self) -> str:
        """Chinese column header with unit, as printed in templates."""
        return f"{self.label}（{self.unit}）" if self.unit else self.label


@dataclass(frozen=True)
class Targets:
    above_net_new: float | None = None
    park_new: float | None = None
    land_disposed: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        return {
            "above_net_new": self.above_net_new,
            "park_new": self.park_new,
            "land_disposed": self.land_disposed,
        }


TARGET_NAMES = ("above_net_new", "park_new", "land_disposed")
# What each annual target is called in reasons and notices.
TARGET_LABELS = {"above_net_new": "净增规上企业", "park_new": "新增入园企业", "land_disposed": "低效用地处置"}


@dataclass
class Registry:
    counties: dict[str, County]
    clusters: dict[str, Cluster]
    indicators: dict[str, Indicator]
    targets: dict[tuple[str, int], Targets] = field(default_factory=dict)
    goals: tuple[Goal, ...] = ()

    def assessed_counties(self) -> list[County]:
        return [c for c in self.counties.values() if c.assessed]

    def clusters_of(self, county_code: str) -> list[Cluster]:
        return [c for c in self.clusters.values() if c.county_code == county_code]

    def indicators_of(self, dataset: str) -> list[Indicator]:
        return [i for i in self.indicators.values() if i.dataset == dataset]

    def targets_for(self, county_code: str, year: int) -> Targets:
        return self.targets.get((county_code, year), Targets())

    def county_name(self, code: str) -> str:
        c = self.counties.get(code)
        return c.name if c else code


# ---------------------------------------------------------------- loading


def default_data_dir() -> Path:
    """The shipped defaults (the top-level data/ folder)."""
    return shipped("data")


def _read_csv(path: Path, required: Iterable[str]) -> list[tuple[int, dict[str, str]]]:
    if not path.exists():
        raise RegistryError(f"{path}: file not found (run `supervise init` to copy the defaults)")
    if path.stat().st_size > MAX_REFERENCE_BYTES:
        raise RegistryError(f"{path}: larger than {MAX_REFERENCE_BYTES} bytes")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RegistryError(f"{path}: not UTF-8 text ({exc}); save it as CSV UTF-8") from exc
    # newline="": a quoted cell may hold line breaks (a help text written over several lines).
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise RegistryError(
            f"{path}, line 1: missing column(s) {', '.join(missing)}; "
            f"the header must contain {', '.join(required)}"
        )
    rows = []
    for row in reader:
        clean = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if not any(clean.values()):
            continue
        # The line the record starts on: line_num is where it ends, after any quoted line breaks.
        breaks = sum(_line_breaks(v) for v in row.values() if isinstance(v, str))
        rows.append((reader.line_num - breaks, clean))
    return rows


def _line_breaks(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


def _yes(value: str, path: Path, line: int, column: str) -> bool:
    v = value.strip().lower()
    if v in ("yes", "y", "true", "1", "是"):
        return True
    if v in ("no", "n", "false", "0", "否", ""):
        return False
    raise RegistryError(f"{path}, line {line}: column {column} must be yes or no, not {value!r}")


def _num(value: str, path: Path, line: int, column: str) -> float | None:
    if value == "":
        return None
    try:
        return float(value)
    except ValueError:
        raise RegistryError(
            f"{path}, line {line}: column {column} must be a number, not {value!r}"
        ) from None


def load_counties(path: Path) -> dict[str, County]:
    out: dict[str, County] = {}
    for line, r in _read_csv(path, ["county_code", "county_name"]):
        code = r["county_code"]
        if not COUNTY_CODE.match(code):
            raise RegistryError(
                f"{path}, line {line}: county_code {code!r} is not a 6-digit GB/T 2260 code"
            )
        if code in out:
            raise RegistryError(f"{path}, line {line}: county_code {code} appears twice")
        if not r["county_name"]:
            raise RegistryError(f"{path}, line {line}: county_name is empty")
        emails = tuple(e.strip() for e in re.split(r"[;,\s]+", r.get("email", "")) if e.strip())
        for e in emails:
            if not EMAIL.match(e):
                raise RegistryError(
                    f"{path}, line {line}: email {e!r} is not an address; "
                    "separate several addresses with ';'"
                )
        out[code] = County(
            code=code,
            name=r["county_name"],
            kind=r.get("kind", "") or "县",
            assessed=_yes(r.get("assessed", "yes") or "yes", path, line, "assessed"),
            emails=emails,
        )
    if not out:
        raise RegistryError(f"{path}: no counties listed")
    return out


def load_clusters(path: Path, counties: dict[str, County]) -> dict[str, Cluster]:
    out: dict[str, Cluster] = {}
    for line, r in _read_csv(path, ["cluster_code", "county_code", "cluster_name"]):
        code = r["cluster_code"]
        if not CLUSTER_CODE.match(code):
            raise RegistryError(
                f"{path}, line {line}: cluster_code {code!r} must be letters/digits (e.g. CZ01)"
            )
        if code in out:
            raise RegistryError(f"{path}, line {line}: cluster_code {code} appears twice")
        county = counties.get(r["county_code"])
        if county is None:
            raise RegistryError(
                f"{path}, line {line}: county_code {r['county_code']!r} is not in counties.csv; "
                "add the county there first or correct the code"
            )
        if not r["cluster_name"]:
            raise RegistryError(f"{path}, line {line}: cluster_name is empty")
        out[code] = Cluster(code, county.code, county.name, r["cluster_name"])
    return out


def load_targets(path: Path, counties: dict[str, County]) -> dict[tuple[str, int], Targets]:
    if not path.exists():
        return {}
    out: dict[tuple[str, int], Targets] = {}
    for line, r in _read_csv(path, ["county_code", "year", *TARGET_NAMES]):
        if r["county_code"] not in counties:
            raise RegistryError(
                f"{path}, line {line}: county_code {r['county_code']!r} is not in counties.csv"
            )
        try:
            year = int(r["year"])
        except ValueError:
            raise RegistryError(f"{path}, line {line}: year must be like 2025, not {r['year']!r}") from None
        key = (r["county_code"], year)
        if key in out:
            raise RegistryError(f"{path}, line {line}: targets for {key[0]} {year} appear twice")
        out[key] = Targets(*(_num(r[n], path, line, n) for n in TARGET_NAMES))
    return out


def load_indicators(path: Path) -> dict[str, Indicator]:
    out: dict[str, Indicator] = {}
    cols = ["code", "label", "unit", "dataset", "kind", "type", "agg", "min", "max", "integer", "optional"]
    for line, r in _read_csv(path, cols):
        code = r["code"]
        if not re.match(r"^[a-z][a-z0-9_]*$", code):
            raise RegistryError(f"{path}, line {line}: code {code!r} must be lower-case ASCII")
        if code in out:
            raise RegistryError(
                f"{path}, line {line}: code {code} appears twice; give each indicator one row"
            )
        for col, allowed in (
            ("dataset", ("monthly", "quarterly")),
            ("kind", ("stock", "ytd", "text")),
            ("type", ("number", "text")),
            ("agg", ("sum", "mean", "none")),
        ):
            if r[col] not in allowed:
                raise RegistryError(
                    f"{path}, line {line}: {col} must be one of {', '.join(allowed)}, not {r[col]!r}"
                )
        out[code] = Indicator(
            code=code,
            label=r["label"],
            unit=r["unit"],
            dataset=r["dataset"],
            kind=r["kind"],
            type=r["type"],
            agg=r["agg"],
            min=_num(r["min"], path, line, "min"),
            max=_num(r["max"], path, line, "max"),
            integer=_yes(r["integer"], path, line, "integer"),
            optional=_yes(r["optional"], path, line, "optional"),
            help=r.get("help", ""),
        )
    return out


def load_goals(path: Path, indicators: dict[str, Indicator]) -> tuple[Goal, ...]:
    cols = ["label", "unit", "measure", "indicator", "tier", "target", "target_text", "basis", "year", "policy"]
    out = []
    for line, r in _read_csv(path, cols):
        if not r["label"]:
            raise RegistryError(f"{path}, line {line}: label is empty")
        if r["measure"] not in GOAL_MEASURES:
            raise RegistryError(
                f"{path}, line {line}: measure must be one of {', '.join(GOAL_MEASURES)}, not {r['measure']!r}"
            )
        # An indicator the dictionary does not have (a workspace that dropped it) leaves the goal
        # without a current value (—); a text indicator cannot be measured at all.
        ind = indicators.get(r["indicator"])
        if not re.match(r"^[a-z][a-z0-9_]*$", r["indicator"]) or (ind is not None and not ind.is_number):
            raise RegistryError(
                f"{path}, line {line}: indicator {r['indicator']!r} must be the code of a number indicator "
                "of indicators.csv"
            )
        if (r["measure"] == "tier") != (r["tier"] != ""):
            raise RegistryError(
                f"{path}, line {line}: tier ({', '.join(GOAL_TIERS)}) is given for measure tier, and only for it"
            )
        if r["tier"] and r["tier"] not in GOAL_TIERS:
            raise RegistryError(f"{path}, line {line}: tier must be one of {', '.join(GOAL_TIERS)}, not {r['tier']!r}")
        try:
            year = int(r["year"])
        except ValueError:
            raise RegistryError(f"{path}, line {line}: year must be like 2025, not {r['year']!r}") from None
        target = _num(r["target"], path, line, "target")
        out.append(Goal(
            label=r["label"], unit=r["unit"], measure=r["measure"], indicator=r["indicator"], tier=r["tier"],
            target=target, target_text=r["target_text"] or ("" if target is None else f"{target:g}"),
            basis=r["basis"], year=year, policy=r["policy"],
        ))
    return tuple(out)


def load_registry(reference_dir: Path | None = None) -> Registry:
    """Load the registry from a workspace's `reference/` (falling back to the shipped defaults)."""
    default = default_data_dir()
    ref = reference_dir or default

    def pick(name: str) -> Path:
        p = ref / name
        return p if p.exists() else default / name

    counties = load_counties(pick("counties.csv"))
    clusters = load_clusters(pick("clusters.csv"), counties)
    indicators = load_indicators(pick("indicators.csv"))
    targets = load_targets(pick("targets.csv"), counties)
    goals = load_goals(pick("goals.csv"), indicators)
    return Registry(counties, clusters, indicators, targets, goals)
