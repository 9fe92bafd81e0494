"""Submissions: archived files, versions, values, problems and the audit trail."""

from __future__ import annotations

SCHEMA = """
CREATE TABLE files (
    sha256        TEXT PRIMARY KEY,
    size          INTEGER NOT NULL,
    archive_path  TEXT NOT NULL,          -- relative to the workspace home
    first_name    TEXT NOT NULL,          -- file name when first seen
    first_seen_at TEXT NOT NULL
);

CREATE TABLE submissions (
    id               INTEGER PRIMARY KEY,
    county_code      TEXT,                -- the county the data belong to (NULL if unknown)
    sender_code      TEXT,                -- the county that sent it (--county or inbox/<code>/)
    period           TEXT,                -- 2025-03 | 2025Q1 (NULL if unreadable)
    dataset          TEXT,                -- monthly | quarterly
    file_sha256      TEXT NOT NULL REFERENCES files(sha256),
    file_name        TEXT NOT NULL,
    format           TEXT,                -- xlsx | xls | ods | csv | unknown
    template_version INTEGER,
    received_at      TEXT NOT NULL,       -- ISO 8601, +08:00
    ingested_at      TEXT NOT NULL,
    verdict          TEXT NOT NULL CHECK (verdict IN ('accepted', 'warning', 'rejected')),
    state            TEXT NOT NULL CHECK (state IN ('current', 'superseded', 'rejected', 'returned')),
    supersedes       INTEGER REFERENCES submissions(id),
    n_values         INTEGER NOT NULL DEFAULT 0,
    source           TEXT NOT NULL DEFAULT 'cli'
);
CREATE INDEX submissions_county_period ON submissions (county_code, period);
CREATE INDEX submissions_period_state ON submissions (period, state);
CREATE INDEX submissions_sha ON submissions (file_sha256);

CREATE TABLE submission_values (
    submission_id INTEGER NOT NULL REFERENCES submissions(id),
    cluster_code  TEXT NOT NULL,
    indicator     TEXT NOT NULL,
    value         REAL,                   -- numbers
    text          TEXT,                   -- text indicators
    cell          TEXT,                   -- where it was read, e.g. 填报表!H7
    PRIMARY KEY (submission_id, cluster_code, indicator)
) WITHOUT ROWID;

CREATE TABLE problems (
    id            INTEGER PRIMARY KEY,
    submission_id INTEGER NOT NULL REFERENCES submissions(id),
    severity      TEXT NOT NULL CHECK (severity IN ('error', 'warning')),
    code          TEXT NOT NULL,
    sheet         TEXT,
    cell          TEXT,
    cluster_code  TEXT,
    indicator     TEXT,
    message       TEXT NOT NULL
);
CREATE INDEX problems_submission ON problems (submission_id);

CREATE TABLE audit (
    id            INTEGER PRIMARY KEY,
    at            TEXT NOT NULL,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,          -- ingest | reject | ...
    county_code   TEXT,
    period        TEXT,
    submission_id INTEGER,
    detail        TEXT                    -- JSON
);
CREATE INDEX audit_county_period ON audit (county_code, period);
"""
