"""The fixed layout of a template, shared by the writer (templates.py) and the readers.

Kept apart from templates.py so that reading a file never imports openpyxl.
"""

from __future__ import annotations

TEMPLATE_VERSION = 1

DATA_SHEET = "填报表"
HELP_SHEET = "填报说明"
CLUSTER_CODE_HEADER = "cluster_code"
CLUSTER_NAME_HEADER = "cluster_name"
WIDE_CSV_SHEET = "CSV"   # the "sheet" of a template saved as CSV, in places: CSV!I7
