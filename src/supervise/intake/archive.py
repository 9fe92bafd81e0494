"""The archive: every file received, kept unchanged under its SHA-256 (archive/<ab>/<sha256>.<ext>)."""

from __future__ import annotations

import os
from pathlib import Path


def write_archive(archive_dir: Path, data: bytes, sha: str, ext: str, made_dirs: set[Path] | None = None) -> Path:
    """Keep the bytes read of a file, unchanged, as <archive>/<ab>/<sha256>.<ext> (atomically;
    the name comes from the hash only, so writing the same file twice is harmless). Returns where.

    The bytes are those hashed and judged (never the path read again: it may be a link by now).
    Written to a temporary name and renamed, not `workspace.atomic_write`: that fsyncs every
    copy and its folder (~2,800 fsyncs for a national month, seconds on a slow disk). The copy
    need not be durable on its own: the inbox original is the durable copy until the batch that
    records this one has committed and `os.sync()` ran (`_Remover`); a crash before leaves the
    original in the inbox, and the next ingest writes a missing or empty copy again.
    """
    dest = archive_dir / sha[:2] / f"{sha}.{ext}"
    try:
        if dest.stat().st_size > 0:
            return dest
    except FileNotFoundError:
        pass
    if made_dirs is None or dest.parent not in made_dirs:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if made_dirs is not None:
            made_dirs.add(dest.parent)
    tmp = dest.with_name(f".{sha}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def stored_name(name: str) -> str:
    """A file name as text SQLite can keep: one that is not UTF-8 on disk (a zip or share from a
    Chinese Windows, in GB18030) is decoded as such, else shown with replacement characters."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        raw = os.fsencode(name)
        try:
            return raw.decode("gb18030")
        except UnicodeDecodeError:
            return raw.decode("utf-8", "replace")
