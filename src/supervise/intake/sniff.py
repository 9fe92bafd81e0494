"""What a file is, from its content (magic bytes), never its name."""

from __future__ import annotations

import re

ZIP_MAGIC = b"PK\x03\x04"


OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


ODS_MIME = b"application/vnd.oasis.opendocument.spreadsheet"


def sniff(data: bytes) -> str:
    """xlsx | ods | xls | ole_encrypted | ole | zip | csv | unknown, from the content."""
    if data.startswith(ZIP_MAGIC):
        return "zip"  # refined after the zip checks (xlsx / ods)
    if data.startswith(OLE_MAGIC):
        if "EncryptionInfo".encode("utf-16-le") in data or "EncryptedPackage".encode("utf-16-le") in data:
            return "ole_encrypted"
        if "Workbook".encode("utf-16-le") in data or "Book".encode("utf-16-le") in data:
            # BIFF8 puts FILEPASS right after the workbook's BOF when the file has a password.
            bof = data.find(b"\x09\x08\x10\x00\x00\x06\x05\x00")
            if bof >= 0 and data[bof + 20 : bof + 22] == b"\x2f\x00":
                return "ole_encrypted"
            return "xls"
        return "ole"
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "unknown"
    # The header line is ASCII in every encoding we read; the rest is judged by `decode_csv`.
    first = data[:4096].removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0].decode("ascii", "replace")
    cols = {c.strip().strip('"').lower() for c in first.split(",")}
    if {"county_code", "cluster_code", "indicator", "value"} <= cols:
        return "csv"
    # A filled template saved as CSV by Excel or WPS (另存为 CSV): its code row names cluster_code.
    if re.search(rb"(^|\n)\"?cluster_code\"?,", data[:16384]):
        return "csv"
    return "unknown"


def archive_extension(head: bytes) -> str:
    """The extension a file is archived under, from its first bytes (never from its name)."""
    kind = sniff(head)
    if kind == "zip":
        return "ods" if head[30:38] == b"mimetype" and ODS_MIME in head[:200] else "xlsx"
    if kind in ("xls", "ole_encrypted", "ole"):
        return "xls" if kind == "xls" else "ole"
    return "csv" if kind == "csv" else "bin"
