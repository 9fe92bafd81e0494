"""The bad-input corpus: every case of bad input gets its verdict, its place, and changes nothing stored.

Template layout (黄骅市, monthly): row 2 metadata (B2 county, F2 period, H2 version), row 5 codes,
rows 6-9 clusters CZ01-CZ04; columns C ent_total, D ent_above, G ent_in_park, I revenue_ytd,
N employees. Quarterly: H digital_rate.
"""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from supervise.intake.ingest import ingest_files
from supervise.intake.readers import OLE_MAGIC
from supervise.periods import Month, Quarter, parse_period
from supervise.workspace import Workspace, init_workspace

from .intake_corpus import (
    HUANGHUA,
    RENQIU,
    at,
    csv_rows,
    dump,
    edit,
    filled,
    long_csv,
    monthly_values,
    rewrite_part,
)

MARCH = Month(2025, 3)
Q1 = Quarter(2025, 1)
NOW = at("2025-04-03 10:00")


@pytest.fixture(scope="module")
def base_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once: a workspace where 黄骅市 has an accepted March submission in force."""
    root = tmp_path_factory.mktemp("base")
    ws = init_workspace(root / "home")
    good = filled(ws, HUANGHUA, MARCH, root / "good.xlsx")
    report = ingest_files(ws, [good], county=HUANGHUA, now=at("2025-04-02 09:00"))
    assert report.files[0].verdict == "accepted"
    shutil.copyfile(good, root / "home" / "outbox" / "good.xlsx")
    return root / "home"


@pytest.fixture
def base(base_home: Path, tmp_path: Path) -> Workspace:
    shutil.copytree(base_home, tmp_path / "home")
    return Workspace(tmp_path / "home")


def good(ws: Workspace, d: Path, **changes: Any) -> Path:
    if not changes:
        out = d / "f.xlsx"
        shutil.copyfile(ws.outbox_dir / "good.xlsx", out)
        return out
    return filled(ws, HUANGHUA, MARCH, d / "f.xlsx", **changes)


def _set(ref: str, value: Any) -> Callable[[Any], None]:
    def fn(sh: Any) -> None:
        sh[ref].value = value
    return fn


def bomb(ws: Workspace, d: Path) -> Path:
    out = d / "bomb.xlsx"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * 3_000_000)
    return out


def many_entries(ws: Workspace, d: Path) -> Path:
    out = d / "many.xlsx"
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
        for i in range(600):
            z.writestr(f"xl/media/x{i}.xml", "<a/>")
    return out


LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>')


def entities(ws: Workspace, d: Path) -> Path:
    def fn(xml: bytes) -> bytes:
        return LAUGHS + xml.split(b"?>", 1)[1] if xml.startswith(b"<?xml") else LAUGHS + xml
    return rewrite_part(good(ws, d), "xl/worksheets/sheet1.xml", fn, d / "laughs.xlsx")


def encrypted_ooxml(ws: Workspace, d: Path) -> Path:
    # The OLE2 container Excel writes for a password-protected .xlsx holds EncryptionInfo and
    # EncryptedPackage streams; their names are in the directory as UTF-16.
    body = OLE_MAGIC + b"\0" * 504 + "EncryptionInfo".encode("utf-16-le") + b"\0" * 50
    body += "EncryptedPackage".encode("utf-16-le") + b"\0" * 2000
    out = d / "locked.xlsx"
    out.write_bytes(body)
    return out


def formula(ws: Workspace, d: Path) -> Path:
    # openpyxl writes formulas without a cached value (<f>..</f><v/>), as a program would.
    return edit(good(ws, d), _set("I7", "=SUM(C7:D7)"))


def far_cell(ws: Workspace, d: Path) -> Path:
    return edit(good(ws, d), _set("C20001", 1))


def deleted_row(ws: Workspace, d: Path) -> Path:
    return edit(good(ws, d), lambda sh: sh.delete_rows(8))   # CZ03 gone


def duplicated_row(ws: Workspace, d: Path) -> Path:
    def fn(sh: Any) -> None:
        for c in range(1, 18):
            sh.cell(10, c).value = sh.cell(6, c).value
    return edit(good(ws, d), fn)


def other_countys_template(ws: Workspace, d: Path) -> Path:
    return filled(ws, RENQIU, MARCH, d / "renqiu.xlsx")


def quarterly_as_month(ws: Workspace, d: Path) -> Path:
    return edit(filled(ws, HUANGHUA, Q1, d / "q.xlsx"), _set("F2", "2025-03"))


def write(name: str, data: bytes) -> Callable[[Workspace, Path], Path]:
    def fn(ws: Workspace, d: Path) -> Path:
        p = d / name
        p.write_bytes(data)
        return p
    return fn


def csv_case(**change: Any) -> Callable[[Workspace, Path], Path]:
    def fn(ws: Workspace, d: Path) -> Path:
        rows = csv_rows(HUANGHUA, "2025-03", monthly_values(ws.registry, HUANGHUA))
        if "line" in change:   # replace the row at CSV line N (line 2 = first data row)
            rows[change["line"] - 2] = change["row"]
        if "append" in change:
            rows.append(change["append"])
        if "drop" in change:
            rows = [r for r in rows if (r[2], r[3]) != change["drop"]]
        return long_csv(rows, d / "long.csv")
    return fn


# (id, make file, expected code, place (sheet!cell, CSV line or file), cluster, indicator);
# the JSON `where` joins the parts that apply: "填报表!I6 / CZ01 / revenue_ytd".
CASES: list[tuple[str, Callable[[Workspace, Path], Path], str, str | None, str | None, str | None]] = [
    ("garbage", write("x.xlsx", b"this is not a workbook at all"), "file_unreadable", "文件", None, None),
    ("empty", write("empty.xlsx", b""), "file_unreadable", "文件", None, None),
    ("pdf", write("scan.xls", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"), "file_unreadable", "文件", None, None),
    ("truncated", lambda ws, d: write("cut.xlsx", good(ws, d).read_bytes()[:700])(ws, d),
     "file_unreadable", "文件", None, None),
    ("encrypted", encrypted_ooxml, "file_encrypted", "文件", None, None),
    ("zip_bomb", bomb, "zip_bomb", "文件", None, None),
    ("zip_entries", many_entries, "zip_bomb", "文件", None, None),
    ("xml_entities", entities, "xml_entities", "文件", None, None),
    ("too_many_rows", far_cell, "file_too_large", "填报表!C20001", None, None),
    ("wrong_county", other_countys_template, "county_mismatch", "填报表!B2", None, None),
    ("county_edited", lambda ws, d: edit(good(ws, d), _set("B2", "130999")),
     "county_mismatch", "填报表!B2", None, None),
    ("period_invalid", lambda ws, d: edit(good(ws, d), _set("F2", "2025-13")),
     "period_mismatch", "填报表!F2", None, None),
    ("period_quarter_in_month_template", lambda ws, d: edit(good(ws, d), _set("F2", "2025Q1")),
     "period_mismatch", "填报表!F2", None, None),
    ("quarterly_template_month_period", quarterly_as_month, "period_mismatch", "填报表!F2", None, None),
    ("unknown_cluster", lambda ws, d: edit(good(ws, d), _set("A7", "CZ99")),
     "unknown_cluster", "填报表!A7", "CZ99", None),
    ("foreign_cluster", lambda ws, d: edit(good(ws, d), _set("A7", "CZ10")),
     "unknown_cluster", "填报表!A7", "CZ10", None),
    ("missing_cluster", deleted_row, "missing_cluster", "填报表", "CZ03", None),
    ("duplicate_row", duplicated_row, "duplicate_row", "填报表!A10", "CZ01", None),
    ("unknown_indicator", lambda ws, d: edit(good(ws, d), _set("I5", "revenue_total")),
     "unknown_indicator", "填报表!I5", None, "revenue_total"),
    ("missing_indicator", lambda ws, d: edit(good(ws, d), _set("N5", None)),
     "missing_indicator", "填报表", None, "employees"),
    ("template_too_old", lambda ws, d: edit(good(ws, d), _set("H2", 0)),
     "template_too_old", "填报表!H2", None, None),
    ("template_version_missing", lambda ws, d: edit(good(ws, d), _set("H2", None)),
     "template_too_old", "填报表", None, None),
    ("text_in_number", lambda ws, d: good(ws, d, CZ01__revenue_ytd="约三千"),
     "not_a_number", "填报表!I6", "CZ01", "revenue_ytd"),
    ("negative_count", lambda ws, d: good(ws, d, CZ02__ent_total=-3),
     "negative_count", "填报表!C7", "CZ02", "ent_total"),
    ("not_integer", lambda ws, d: good(ws, d, CZ02__ent_total=101.5),
     "not_integer", "填报表!C7", "CZ02", "ent_total"),
    ("above_gt_total", lambda ws, d: good(ws, d, CZ03__ent_above=500),
     "ent_above_gt_total", "填报表!D8", "CZ03", "ent_above"),
    ("park_gt_total", lambda ws, d: good(ws, d, CZ04__ent_in_park=500),
     "ent_in_park_gt_total", "填报表!G9", "CZ04", "ent_in_park"),
    ("empty_number", lambda ws, d: good(ws, d, CZ04__employees=None),
     "empty_value", "填报表!N9", "CZ04", "employees"),
    ("blank_text_number", lambda ws, d: good(ws, d, CZ04__employees="  "),
     "empty_value", "填报表!N9", "CZ04", "employees"),
    ("formula_without_value", formula, "formula_without_value", "填报表!I7", "CZ02", "revenue_ytd"),
    ("csv_text", csv_case(line=2, row=(HUANGHUA, "2025-03", "CZ01", "ent_total", "一百")),
     "not_a_number", "CSV第2行", "CZ01", "ent_total"),
    ("csv_other_county_line", csv_case(line=5, row=(RENQIU, "2025-03", "CZ01", "ent_in_park", 61)),
     "county_mismatch", "CSV第5行", None, None),
    ("csv_duplicate", csv_case(append=(HUANGHUA, "2025-03", "CZ02", "tax_ytd", 1)),
     "duplicate_row", "CSV第62行", "CZ02", "tax_ytd"),
    ("csv_unknown_indicator", csv_case(append=(HUANGHUA, "2025-03", "CZ02", "revenu_ytd", 1)),
     "unknown_indicator", "CSV第62行", None, "revenu_ytd"),
    ("csv_missing_value", csv_case(drop=("CZ03", "rd_ytd")), "empty_value", "CSV", "CZ03", "rd_ytd"),
    ("csv_bad_period", csv_case(line=2, row=(HUANGHUA, "2025-3月", "CZ01", "ent_total", 101)),
     "period_mismatch", "CSV第2行", None, None),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_file_is_rejected_where_it_is_wrong_and_changes_nothing(
    base: Workspace, tmp_path: Path, case: tuple[Any, ...]
) -> None:
    _id, make, code, where, cluster, indicator = case
    d = tmp_path / "case"
    d.mkdir()
    path = make(base, d)
    before = dump(base)
    report = ingest_files(base, [path], county=HUANGHUA, now=NOW)
    f = report.files[0]
    assert f.verdict == "rejected"
    matching = [p for p in f.problems if p.code == code]
    assert matching, [(p.code, p.where, p.message) for p in f.problems]
    p = matching[0]
    assert p.place == where
    assert p.where == " / ".join(x for x in (where, cluster, indicator) if x)
    assert p.cluster_code == cluster
    assert p.indicator == indicator
    assert p.message and any("\u4e00" <= ch <= "\u9fff" for ch in p.message)
    assert dump(base) == before
    # The file is archived unchanged and its rejection is on record, without values.
    archived = list((base.home / "archive" / f.sha256[:2]).glob(f"{f.sha256}.*"))
    assert [x.read_bytes() for x in archived] == [path.read_bytes()]
    conn = base.connect()
    row = conn.execute("SELECT verdict, state, n_values FROM submissions WHERE id = ?",
                       (f.submission_id,)).fetchone()
    assert tuple(row) == ("rejected", "rejected", 0)
    assert conn.execute("SELECT COUNT(*) FROM problems WHERE submission_id = ? AND code = ?",
                        (f.submission_id, code)).fetchone()[0] >= 1
    conn.close()
    assert report.summary["rejected"] == 1 and report.summary["values"] == 0


def test_message_names_row_cluster_label_and_what_was_written(base: Workspace, tmp_path: Path) -> None:
    path = good(base, tmp_path, CZ02__revenue_ytd="约三千")
    f = ingest_files(base, [path], county=HUANGHUA, now=NOW).files[0]
    assert f.problems[0].message.startswith(
        "第7行（CZ02 模具）“营业收入（本年累计）”应为数字，实际填写了“约三千”")
    assert f.to_json()["problems"][0] | {} == {
        "code": "not_a_number", "where": "填报表!I7 / CZ02 / revenue_ytd", "message": f.problems[0].message,
        "severity": "error", "sheet": "填报表", "cell": "I7", "cluster_code": "CZ02",
        "indicator": "revenue_ytd",
    }


def test_every_problem_is_listed_not_only_the_first(base: Workspace, tmp_path: Path) -> None:
    path = good(base, tmp_path, CZ01__ent_total="多", CZ02__employees=None, CZ03__ent_above=900)
    f = ingest_files(base, [path], county=HUANGHUA, now=NOW).files[0]
    assert {(p.code, p.cell) for p in f.problems} == {
        ("not_a_number", "C6"), ("empty_value", "N7"), ("ent_above_gt_total", "D8")}


def test_percent_out_of_range_in_quarterly(ws: Workspace, tmp_path: Path) -> None:
    path = filled(ws, HUANGHUA, Q1, tmp_path / "q.xlsx", CZ02__digital_rate=120)
    f = ingest_files(ws, [path], county=HUANGHUA, now=at("2025-04-08 10:00")).files[0]
    assert f.verdict == "rejected"
    assert [(p.code, p.where, p.cluster_code, p.indicator) for p in f.problems] == [
        ("percent_out_of_range", "填报表!H7 / CZ02 / digital_rate", "CZ02", "digital_rate")]


def test_optional_text_may_be_empty_but_numbers_may_not(ws: Workspace, tmp_path: Path) -> None:
    path = filled(ws, HUANGHUA, Q1, tmp_path / "q.xlsx", CZ01__progress=None, CZ01__problems="")
    f = ingest_files(ws, [path], county=HUANGHUA, now=at("2025-04-08 10:00")).files[0]
    assert f.verdict == "accepted", [p.message for p in f.problems]
    conn = ws.connect()
    stored = {r[0] for r in conn.execute(
        "SELECT indicator FROM submission_values WHERE submission_id = ? AND cluster_code = 'CZ01'",
        (f.submission_id,))}
    conn.close()
    assert "progress" not in stored and "next_steps" in stored   # a blank is never turned into anything


def test_inbox_folder_names_the_sender(base: Workspace, tmp_path: Path) -> None:
    from supervise.intake.ingest import collect_inbox

    src = filled(base, RENQIU, MARCH, tmp_path / "renqiu.xlsx")
    target = base.inbox_dir / HUANGHUA / "march.xlsx"
    target.parent.mkdir(parents=True)
    target.write_bytes(src.read_bytes())
    before = dump(base)
    f = collect_inbox(base, now=NOW).files[0]
    assert f.verdict == "rejected" and f.problems[0].code == "county_mismatch"
    assert "130982（任丘市）" in f.problems[0].message and "130983（黄骅市）" in f.problems[0].message
    assert dump(base) == before
    assert not target.exists()          # archived and recorded, so taken out of the inbox


def test_expected_period(base: Workspace, tmp_path: Path) -> None:
    path = good(base, tmp_path, CZ01__rd_ytd=81)
    f = ingest_files(base, [path], county=HUANGHUA, now=NOW, period=parse_period("2025-02")).files[0]
    assert f.verdict == "rejected"
    assert [(p.code, p.where) for p in f.problems] == [("period_mismatch", "填报表!F2")]


def test_where_names_sheet_cell_cluster_and_indicator_and_messages_name_the_label(
        base: Workspace, tmp_path: Path) -> None:
    path = good(base, tmp_path, CZ01__ent_total="多", CZ02__employees=None, CZ03__ent_above=900)
    doc = ingest_files(base, [path], county=HUANGHUA, now=NOW).to_json()
    got = {(p["code"], p["where"]) for p in doc["files"][0]["problems"]}
    assert got == {("not_a_number", "填报表!C6 / CZ01 / ent_total"),
                   ("empty_value", "填报表!N7 / CZ02 / employees"),
                   ("ent_above_gt_total", "填报表!D8 / CZ03 / ent_above")}
    for p in doc["files"][0]["problems"]:
        # a county's message names the indicator by its label; the code is in `indicator` and `where`
        assert f"({p['indicator']})" not in p["message"], p["message"]
    assert "“集群企业总数”（103）" in next(p["message"] for p in doc["files"][0]["problems"]
                                              if p["code"] == "ent_above_gt_total")


def test_csv_where_names_the_line_also_when_the_same_file_comes_again(
        base: Workspace, tmp_path: Path) -> None:
    bad = csv_case(line=5, row=(HUANGHUA, "2025-03", "CZ01", "ent_above_upgraded_ytd", "一"))(base, tmp_path)
    f = ingest_files(base, [bad], county=HUANGHUA, now=NOW).files[0]
    assert [(p.code, p.where) for p in f.problems] == [("not_a_number", "CSV第5行 / CZ01 / ent_above_upgraded_ytd")]
    # April, with a year-to-date value below March's: accepted with a warning at its CSV line.
    values = monthly_values(base.registry, HUANGHUA)
    values["CZ01"]["revenue_ytd"] = 4000
    april = long_csv(csv_rows(HUANGHUA, "2025-04", values), tmp_path / "april.csv")
    line = 2 + [(r[2], r[3]) for r in csv_rows(HUANGHUA, "2025-04", values)].index(("CZ01", "revenue_ytd"))
    expected = [("ytd_decreased", f"CSV第{line}行 / CZ01 / revenue_ytd")]
    first = ingest_files(base, [april], county=HUANGHUA, now=at("2025-05-02 10:00")).files[0]
    again = ingest_files(base, [april], county=HUANGHUA, now=at("2025-05-03 10:00")).files[0]
    assert (first.verdict, again.unchanged) == ("warning", True)
    assert [(p.code, p.where) for p in first.problems] == expected
    assert [(p.code, p.where) for p in again.problems] == expected


@pytest.mark.parametrize("period, received", [
    (Month(2025, 5), "2025-04-03 10:00"),        # a month that has not begun
    (Month(2025, 4), "2025-04-30 23:59"),        # the last minute of the month itself
    (Month(2030, 1), "2025-04-03 10:00"),
    (Quarter(2025, 2), "2025-06-30 12:00"),
])
def test_a_period_that_has_not_ended_is_rejected(ws: Workspace, tmp_path: Path, period: Any,
                                                 received: str) -> None:
    path = filled(ws, HUANGHUA, period, tmp_path / "early.xlsx")
    before = dump(ws)
    f = ingest_files(ws, [path], county=HUANGHUA, now=at(received)).files[0]
    assert f.verdict == "rejected"
    assert [(p.code, p.where) for p in f.problems] == [("period_not_ended", "填报表!F2")]
    message = f.problems[0].message
    assert str(period) in message and period.label in message
    assert received[:16] in message
    assert dump(ws) == before


def test_a_period_is_accepted_from_its_first_instant_after(ws: Workspace, tmp_path: Path) -> None:
    path = filled(ws, HUANGHUA, Month(2025, 4), tmp_path / "april.xlsx")
    f = ingest_files(ws, [path], county=HUANGHUA, now=at("2025-05-01 00:00")).files[0]
    assert (f.verdict, f.problems) == ("accepted", [])
    # --received-at decides, not the time of the ingest.
    csv = long_csv(csv_rows(HUANGHUA, "2025-05", monthly_values(ws.registry, HUANGHUA)), tmp_path / "may.csv")
    f = ingest_files(ws, [csv], county=HUANGHUA, now=at("2025-06-02 09:00"),
                     received_at=at("2025-05-31 18:00")).files[0]
    assert [(p.code, p.where) for p in f.problems] == [("period_not_ended", "CSV第2行")]


def test_a_file_sent_under_the_wrong_county_gives_one_problem(ws: Workspace, tmp_path: Path) -> None:
    """黄骅's file sent as 任丘's: one county_mismatch, not one more line per cluster of each."""
    f = filled(ws, HUANGHUA, MARCH, tmp_path / "黄骅.xlsx")
    [res] = ingest_files(ws, [f], county="130982", now=NOW).files
    assert [(p.code, p.where) for p in res.problems] == [("county_mismatch", "填报表!B2")]
    assert (res.verdict, res.period, res.county_code) == ("rejected", "2025-03", "130982")
