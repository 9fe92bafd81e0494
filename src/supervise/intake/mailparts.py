"""A mail message as intake sees it: who sent it, and which of its attachments are submissions.

Pure: bytes in, a `MailMessage` out, no files, no network. Everything in a message is the
sender's: a header may be missing or malformed, a file name may be encoded any way a mail
client ever did (RFC 2231, RFC 2047, raw GB18030 bytes) or may try to climb out of a folder
(`../../x.xlsx`, `C:\\x.xlsx`) or hide its extension (control and bidi characters). Nothing
here raises for such a message: it comes back with `malformed` set, or with names made safe.

Which attachments are submissions: a spreadsheet by its extension (.xlsx .xlsm .xls .et .ods
.csv), by its content (a workbook's magic bytes, a long CSV's header) or by its declared type.
A .zip is opened (one level, with the same limits as any file: entry count, uncompressed size,
compression ratio, no encryption) and its spreadsheets are taken; a .zip that fails those checks
is passed on whole, so that the ingest rejects it with its located reason. Anything else (a
cover letter, a scan, an inline image) is listed as not read.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from email.utils import getaddresses
from typing import Any

from .sniff import ZIP_MAGIC, sniff

SHEET_EXTENSIONS = ("xlsx", "xlsm", "xls", "et", "ods", "csv")
SHEET_TYPES = (
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.oasis.opendocument.spreadsheet",
    "text/csv",
)
ZIP_TYPES = ("application/zip", "application/x-zip-compressed", "application/x-zip")
MAX_NAME_BYTES = 180
DEFAULT_NAME = "附件"
# A message id as RFC 5322 writes it: <left@right>, printable ASCII, no spaces (used in In-Reply-To).
MESSAGE_ID = re.compile(r"<[!-;=?-~]{1,250}@[!-;=?-~]{1,250}>")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


@dataclass(frozen=True)
class ZipLimits:
    """The limits of [limits] a zip of attachments is held to, as any file."""

    max_file_bytes: int = 20_000_000
    max_uncompressed_bytes: int = 100_000_000
    max_compression_ratio: float = 200
    max_zip_entries: int = 500

    @classmethod
    def of(cls, limits: dict[str, Any]) -> ZipLimits:
        return cls(int(limits["max_file_bytes"]), int(limits["max_uncompressed_bytes"]),
                   float(limits["max_compression_ratio"]), int(limits["max_zip_entries"]))


@dataclass(frozen=True)
class Attachment:
    """One file of a message: a submission to ingest, or one listed as not read (`note`)."""

    name: str                    # safe file name: no folder part, no controls, never empty
    data: bytes
    within: str | None = None    # the .zip it came out of
    note: str = ""               # why it is not read (only for files not read)

    @property
    def shown(self) -> str:
        """The name as the reply shows it: 报表.zip / 3月.xlsx for a file out of a zip."""
        return f"{self.within} / {self.name}" if self.within else self.name

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class MailMessage:
    message_id: str | None = None     # <x@y>, only when well formed (it threads the reply)
    sender: str | None = None         # the one From address, lower case
    subject: str = ""
    attachments: list[Attachment] = field(default_factory=list)   # submissions, in order
    ignored: list[Attachment] = field(default_factory=list)       # files not read, and why
    malformed: str | None = None      # why the message cannot be read at all (Chinese)
    named_parts: int = 0              # every file the message carries (the attachment limit counts these)


def parse_message(raw: bytes, limits: ZipLimits) -> MailMessage:
    """The sender, subject and files of a raw RFC 5322 message; never raises for what it contains."""
    out = MailMessage()
    try:
        msg = message_from_bytes(raw, policy=policy.default)
    except Exception as exc:  # noqa: BLE001 - a message is data: whatever breaks the parser, set it aside
        out.malformed = f"邮件无法解析（{type(exc).__name__}）"
        return out
    out.subject = _header_text(msg, "Subject")
    out.message_id = _message_id(msg)
    out.sender, why = _sender(msg)
    if out.sender is None:
        out.malformed = why
    try:
        _collect_files(msg, out, limits)
    except Exception as exc:  # noqa: BLE001
        out.malformed = out.malformed or f"邮件结构无法解析（{type(exc).__name__}）"
    return out


def header_sender(raw_headers: bytes) -> tuple[str | None, str, str | None]:
    """(sender, subject, message id) from a message's header alone (a message too large to fetch)."""
    try:
        msg = message_from_bytes(raw_headers, policy=policy.default)
    except Exception:  # noqa: BLE001
        return None, "", None
    sender, _why = _sender(msg)
    return sender, _header_text(msg, "Subject"), _message_id(msg)


def fingerprint(raw: bytes, parsed: MailMessage) -> str:
    """What makes two copies one message: with a Message-ID, that id, the sender and the bytes of
    each file (a mail delivered twice, or renumbered under a new UIDVALIDITY, differs only in
    its trace headers); without one, the bytes of the whole message."""
    h = hashlib.sha256()
    if parsed.message_id and parsed.malformed is None:
        h.update(b"mid\n" + parsed.message_id.encode() + b"\n" + (parsed.sender or "").encode() + b"\n")
        for a in [*parsed.attachments, *parsed.ignored]:
            h.update(a.sha256.encode() + b"\n")
    else:
        h.update(b"raw\n" + raw)
    return h.hexdigest()


# ------------------------------------------------------------------ headers


def _header_text(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
        text = str(value) if value is not None else ""
    except Exception:  # noqa: BLE001
        return ""
    return _fix_bytes(text)


def _message_id(msg: Message) -> str | None:
    try:
        value = str(msg.get("Message-ID") or "").strip()
    except Exception:  # noqa: BLE001
        return None
    return value if MESSAGE_ID.fullmatch(value) else None


def _sender(msg: Message) -> tuple[str | None, str]:
    """The one address of From, or None and why not."""
    try:
        values = msg.get_all("From") or []
        pairs = getaddresses([str(v) for v in values])
    except Exception:  # noqa: BLE001
        return None, "发件人（From）无法解析"
    addresses = [addr.strip().lower() for _name, addr in pairs if addr and "@" in addr]
    if not values or not addresses:
        return None, "邮件没有发件人（From）"
    if len(set(addresses)) > 1:
        return None, "发件人（From）不止一个地址"
    address = addresses[0]
    if any(ch.isspace() or unicodedata.category(ch)[0] == "C" for ch in address):
        return None, "发件人（From）地址无效"
    return address, ""


# ------------------------------------------------------------------ files


def _collect_files(msg: EmailMessage | Message, out: MailMessage, limits: ZipLimits) -> None:
    index = 0
    for part in msg.walk():
        if part.is_multipart():
            continue
        raw_name = _raw_filename(part)
        disposition = part.get_content_disposition()
        ctype = part.get_content_type()
        if raw_name is None and (disposition != "attachment" or ctype.startswith("text/")):
            continue   # the body
        if disposition == "inline" and ctype.startswith("image/"):
            continue   # a picture in the body (a signature's logo)
        index += 1
        out.named_parts += 1
        name = safe_filename(raw_name, default=f"{DEFAULT_NAME}{index}")
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            data = b""
        kind = classify(name, data, ctype)
        if kind == "sheet":
            out.attachments.append(Attachment(name, data))
        elif kind == "zip":
            _expand_zip(name, data, limits, out)
        else:
            out.ignored.append(Attachment(name, data, note="不是报送表格（.xlsx、.xls、.ods 或 .csv），未处理"))


def _raw_filename(part: Message) -> str | None:
    try:
        part = _with_decoded_headers(part)
        name = part.get_filename()
    except Exception:  # noqa: BLE001
        name = None
    if not name:
        try:
            name = part.get_param("name")  # type: ignore[assignment]
        except Exception:  # noqa: BLE001
            name = None
        if isinstance(name, tuple):  # an RFC 2231 value the old API left undecoded
            charset, _lang, text = name
            try:
                name = text.encode("latin-1", "surrogateescape").decode(charset or "utf-8", "replace")
            except (LookupError, UnicodeError):
                name = str(text)
    return str(name) if name else None


_NAME_HEADERS = ("content-disposition", "content-type")


def _with_decoded_headers(part: Message) -> Message:
    """The part's name-bearing headers with raw 8-bit bytes (a name in GB18030, unencoded) read as
    UTF-8 or GB18030; the parser would otherwise have replaced them with U+FFFD."""
    raw = [(k, v) for k, v in part.raw_items() if k.lower() in _NAME_HEADERS]
    if not any(_has_raw_bytes(v) for _k, v in raw):
        return part
    text = "".join(f"{k}: {_fix_bytes(v)}\n" for k, v in raw)
    return HeaderParser(policy=policy.default).parsestr(text + "\n")


def _has_raw_bytes(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def classify(name: str, data: bytes, ctype: str = "") -> str:
    """sheet | zip | other: what a file of a message is for intake."""
    ext = name.rpartition(".")[2].lower() if "." in name else ""
    if data.startswith(ZIP_MAGIC):
        if _is_workbook_zip(data):
            return "sheet"
        if ext == "zip" or ctype in ZIP_TYPES:
            return "zip"
        return "sheet" if ext in SHEET_EXTENSIONS else "other"   # .docx is a zip too; a broken .xlsx is not
    if ext == "zip":
        return "sheet" if sniff(data) in ("xls", "ole_encrypted", "csv") else "zip"
    if ext in SHEET_EXTENSIONS or ctype in SHEET_TYPES:
        return "sheet"
    return "sheet" if sniff(data) in ("xls", "ole_encrypted", "csv") else "other"


def _is_workbook_zip(data: bytes) -> bool:
    try:
        names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, EOFError):
        return False
    return "xl/workbook.xml" in names or "xl/workbook.bin" in names or "mimetype" in names


def _expand_zip(name: str, data: bytes, limits: ZipLimits, out: MailMessage) -> None:
    """The spreadsheets inside a .zip, each bounded by max_file_bytes; a zip that fails the
    checks any file's zip must pass goes on whole (the ingest rejects it, saying why)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in zf.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, EOFError):
        out.attachments.append(Attachment(name, data))
        return
    total = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos)
    if (len(infos) > limits.max_zip_entries or total > limits.max_uncompressed_bytes
            or (total > 256 * 1024 and total > limits.max_compression_ratio * max(packed, 1))
            or any(i.flag_bits & 0x1 for i in infos)):
        out.attachments.append(Attachment(name, data))
        return
    found = False
    for info in infos:
        full = _zip_name(info)
        if full.startswith("__MACOSX/") or full.replace("\\", "/").rsplit("/", 1)[-1].startswith("."):
            continue   # a Mac's resource forks, hidden files
        inner = safe_filename(full, default=f"{DEFAULT_NAME}{len(out.attachments) + 1}")
        try:
            with zf.open(info) as f:
                body = f.read(limits.max_file_bytes + 1)   # never more than a file may be
        except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, EOFError, NotImplementedError):
            out.attachments.append(Attachment(name, data))
            return
        kind = classify(inner, body)
        if kind == "sheet":
            out.attachments.append(Attachment(inner, body, within=name))
            found = True
        else:
            note = "压缩包中的压缩包，未处理" if kind == "zip" else "不是报送表格，未处理"
            out.ignored.append(Attachment(inner, b"", within=name, note=note))
    if not found and not infos:
        out.ignored.append(Attachment(name, data, note="压缩包是空的，未处理"))


def _zip_name(info: zipfile.ZipInfo) -> str:
    """An entry's name: UTF-8 when the zip says so, else the GB18030 of a Chinese Windows."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        raw = info.filename.encode("cp437")
    except UnicodeEncodeError:
        return info.filename
    for codec in ("utf-8", "gb18030"):
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            continue
    return info.filename


# ------------------------------------------------------------------ names


def _fix_bytes(text: str) -> str:
    """Raw 8-bit header bytes (the parser keeps them as surrogates) read as UTF-8, else GB18030."""
    if not _has_raw_bytes(text):
        return text
    raw = text.encode("utf-8", "surrogateescape")
    for codec in ("utf-8", "gb18030"):
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            continue
    return raw.decode("utf-8", "replace")


def _decode_words(text: str) -> str:
    """RFC 2047 encoded words left in a name (many clients put them inside quoted parameters)."""
    if not _ENCODED_WORD.search(text):
        return text
    try:
        parts = decode_header(text)
        fixed = [(chunk, "gb18030" if (cs or "").lower() in ("gb2312", "gbk", "x-gbk") else cs)
                 for chunk, cs in parts]
        return str(make_header(fixed))
    except (LookupError, UnicodeError, ValueError):
        return text


def safe_filename(raw: str | None, *, default: str = DEFAULT_NAME) -> str:
    """A sender's file name as a plain name: its last part only (after / or \\), decoded, without
    control, format (bidi), unassigned or private characters, without leading dots, at most
    180 bytes (extension kept); `default` when nothing is left."""
    name = _decode_words(_fix_bytes(raw or ""))
    name = unicodedata.normalize("NFC", name)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] not in ("C", "Z") or ch == " ")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = name.strip().lstrip(".").strip()
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        ext = ext if dot and len(ext) <= 8 else ""
        stem = stem if dot and ext else name
        while stem and len((stem + ("." + ext if ext else "")).encode("utf-8")) > MAX_NAME_BYTES:
            stem = stem[:-1]
        name = stem.rstrip() + ("." + ext if ext else "")
    return name if name and name not in (".", "..") else default
