"""The Chinese words for the codes stored with submissions and runs: one word for one thing,
the same in the terminal and on the web."""

from __future__ import annotations

# How a version came in (submissions.source).
SOURCE_LABELS = {"cli": "命令行", "inbox": "收件箱", "web": "网上报送", "mail": "邮件"}
# Who started a run (job_runs.origin).
ORIGIN_LABELS = {"cli": "命令行", "scheduler": "调度", "catch_up": "补跑", "web": "网页"}
