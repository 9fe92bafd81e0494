"""Text from outside (county cells, file names, cluster names, messages quoting them) made safe
for the operator's terminal.

A county can put anything in a cell or a file name: ESC sequences that clear the screen, recolour
it or plant an OSC 8 hyperlink, other C0/C1 control characters, or bidi overrides (U+202E) that
make `txt.exe` read as `exe.txt`. Every human (non --json) line the CLI prints passes such text
through `safe_text` (or `safe_markup` when rich prints it), which shows each of these characters
as a visible escape (`\\x1b`, `\\u202e`) instead of sending it to the terminal. `safe_json` does
the same for the few characters that JSON leaves raw.
"""

from __future__ import annotations

import logging
import re

# C0 and C1 controls and DEL (Cc), lone surrogates from undecodable file names (Cs), the line and
# paragraph separators (Zl, Zp), and the bidi embeddings, overrides, isolates and marks.
_OTHERS = "\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE = re.compile(f"[\x00-\x1f{_OTHERS}]")
_UNSAFE_KEEP_NEWLINES = re.compile(f"[\x00-\x09\x0b-\x1f{_OTHERS}]")
_RAW_IN_JSON = re.compile(f"[{_OTHERS}]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(value: object, *, keep_newlines: bool = False) -> str:
    """`value` as text with every control, bidi or separator character shown as a visible escape,
    so nothing a county wrote can act on the terminal (line breaks too, unless `keep_newlines`)."""
    text = value if isinstance(value, str) else str(value)
    return (_UNSAFE_KEEP_NEWLINES if keep_newlines else _UNSAFE).sub(_visible, text)


def safe_markup(value: object) -> str:
    """`safe_text`, then rich markup escaped: for outside text printed through rich, where `[red]`
    in a cell would otherwise be a style."""
    from rich.markup import escape

    return escape(safe_text(value))


def safe_json(document: str) -> str:
    """A JSON document with the characters json.dumps(ensure_ascii=False) leaves raw (DEL, C1,
    bidi, separators, lone surrogates) written as \\uXXXX: the same value, nothing raw on a terminal.

    json.dumps already escapes C0 inside strings (the line breaks and spaces outside are layout);
    outside strings a JSON document is plain ASCII, so every match is inside a string, where
    \\uXXXX stands for exactly that character.
    """
    return _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", document)


class SafeFormatter(logging.Formatter):
    """Log lines on stderr are read on a terminal too: a file name in a message is shown escaped
    (line breaks kept, for tracebacks)."""

    def format(self, record: logging.LogRecord) -> str:
        return safe_text(super().format(record), keep_newlines=True)
