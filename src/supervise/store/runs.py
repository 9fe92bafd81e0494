"""Job runs and deliveries: the run log, the outbox and each recipient's delivery."""

from __future__ import annotations

SCHEMA = """
CREATE TABLE job_runs (
    id          INTEGER PRIMARY KEY,
    job         TEXT NOT NULL,            -- collect | remind | run_month | run_quarter | run_year
    period      TEXT,
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    state       TEXT NOT NULL CHECK (state IN ('running', 'success', 'error', 'skipped')),
    error       TEXT,
    pid         INTEGER,
    detail      TEXT                      -- JSON
);
CREATE INDEX job_runs_job ON job_runs (job, period, id);

CREATE TABLE deliveries (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL,           -- bulletin | reminder | alert
    period       TEXT,
    recipient    TEXT NOT NULL,
    subject      TEXT NOT NULL,
    content_hash TEXT NOT NULL,           -- what was (to be) sent; same hash = same mail
    message_path TEXT,                    -- outbox/<...>.eml, relative to home
    state        TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    created_at   TEXT NOT NULL,
    sent_at      TEXT
);
CREATE INDEX deliveries_key ON deliveries (kind, period, recipient, content_hash);
"""
