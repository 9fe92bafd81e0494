"""Assessment results: one row per (rulebook, period, inputs) run, with every unit's points."""

from __future__ import annotations

SCHEMA = """
CREATE TABLE assessments (
    id            INTEGER PRIMARY KEY,
    rulebook      TEXT NOT NULL,
    version       TEXT NOT NULL,
    period        TEXT NOT NULL,
    inputs_hash   TEXT NOT NULL,          -- SHA-256 of the rulebook text and every input value
    created_at    TEXT NOT NULL,
    result        TEXT NOT NULL,          -- the whole result as JSON (explain, bulletins)
    UNIQUE (rulebook, period, inputs_hash)
);
CREATE INDEX assessments_period ON assessments (rulebook, period, id);

CREATE TABLE assessment_units (
    assessment_id INTEGER NOT NULL REFERENCES assessments(id),
    county_code   TEXT NOT NULL,
    total         REAL NOT NULL,
    rank          INTEGER NOT NULL,
    deductions    REAL NOT NULL,
    net           REAL,                   -- settlement net (万元), NULL without settlement
    PRIMARY KEY (assessment_id, county_code)
) WITHOUT ROWID;

CREATE TABLE assessment_points (
    assessment_id INTEGER NOT NULL REFERENCES assessments(id),
    county_code   TEXT NOT NULL,
    indicator     TEXT NOT NULL,
    value         REAL,                   -- the aggregated value (NULL: cannot be computed)
    points        REAL NOT NULL,
    method        TEXT NOT NULL,
    detail        TEXT NOT NULL,          -- JSON: inputs, min/max/target, formula
    PRIMARY KEY (assessment_id, county_code, indicator)
) WITHOUT ROWID;
"""
