"""Parsing raw RFC 5322 messages: fast, forgiving, never raising (SPEC 4.3).

Design
------
The stdlib ``email`` feed parser splits every line of every part, so a message with a
multi-megabyte base64 attachment costs tens of milliseconds and megabytes of small
objects. This module reads the message in place instead:

1. **Headers** are split by two regular expressions running in C (CRLF, LF and bare-CR
   line endings; a leading UTF-8 BOM and an mbox ``From `` line are skipped; a line that
   is not a header ends them, as in the stdlib). Raw 8-bit header bytes are read as
   UTF-8, else in the message's own charset when it names a non-western one, else
   cp1252/latin-1. RFC 2047 encoded words are decoded in any charset; adjacent words of
   one charset are joined before decoding, so a character split over two words survives.
   Address lists go through ``email.utils.getaddresses`` (a regex fast path gives the
   same pairs for plain ``Name <a@b>`` lists); display names are decoded afterwards, so
   an encoded comma cannot split an address.
2. **The MIME tree** is walked by searching the boundary markers (``--boundary`` at a
   line start) with ``bytes.find`` inside the parent's byte range. Each part keeps only
   its header fields and the offsets of its body: nothing is copied or decoded yet.
   Nested multiparts, preambles, epilogues, a missing closing boundary, multipart/digest
   defaults and empty parts are handled; when the declared boundary never appears the
   first ``--xyz`` line is tried, and a multipart without any usable boundary is read as
   one text part. Parts are numbered as IMAP does ("1", "2.1").
3. **Only text/plain and text/html bodies are decoded**: the unnamed, non-attachment
   ones (the first of each kind inside multipart/alternative; inline text/plain parts
   elsewhere joined; the first html), plus the first part of a multipart/report. Every
   other leaf is an attachment, message/rfc822 included (not entered). Attachment sizes
   come from the encoded length (base64: 3/4 of the characters minus padding, line
   lengths sampled rather than counted); ``extract_part`` decodes one part on demand,
   reading only the headers of the parts on its path.
4. **Charsets** go through an alias table (``gb2312`` -> ``gb18030``, ``ks_c_5601-1987``
   -> ``cp949``, typos such as ``utf8`` or ``cp-850``); a label that does not fit the bytes
   falls back to UTF-8, cp1252 or a replacing decode, and the repair is noted in
   ``defects``.

Every public function catches everything: a broken part becomes a defect note, a broken
message a minimal ``ParsedEmail``. NUL characters (and lone surrogates) never leave this
module. Work is bounded on hostile input (``ParseLimits``, each bound a config key):
header fields per part, characters per header field (an address field over the bound
still gives its first address; References keep the thread root and the newest ids),
addresses per field, MIME depth and parts, file name length, html converted to text;
and 2,000,000 characters per body. Every cost is linear in the size of the message.
"""

from __future__ import annotations

import binascii
import codecs
import dataclasses
import functools
import hashlib
import itertools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import getaddresses, parsedate_to_datetime
from html import unescape
from urllib.parse import unquote_to_bytes

from espomail.mail import msgid
from espomail.mail.addresses import unicode_form
from espomail.mail.limits import DEFAULT as DEFAULT_LIMITS
from espomail.mail.limits import ParseLimits

NO_SUBJECT = "(No Subject)"
MAX_BODY_CHARS = 2_000_000
# The default cost bounds (see espomail.mail.limits; each is a config key).
MAX_ADDRESSES = DEFAULT_LIMITS.max_addresses
MAX_DEPTH = DEFAULT_LIMITS.max_mime_depth
MAX_PARTS = DEFAULT_LIMITS.max_mime_parts
MAX_FIELDS = DEFAULT_LIMITS.max_header_count
MAX_DEFECTS = 100
_MAX_NAME_CHARS = 1_000  # of a display name read from an address field cut at max_header_length
_MAX_TEXT_BYTES = 8_000_000
_BODY_TYPES = ("text/plain", "text/html")
_MESSAGE_TYPES = ("message/rfc822", "message/global")


@dataclass(frozen=True)
class Address:
    name: str
    address: str

    @property
    def lower(self) -> str:
        return self.address.lower()


@dataclass
class Attachment:
    filename: str | None
    content_type: str
    size: int
    is_inline: bool
    content_id: str | None
    part: str


@dataclass
class ParsedEmail:
    message_id: str | None = None
    subject: str = NO_SUBJECT
    from_: Address | None = None
    to: list[Address] = field(default_factory=list)
    cc: list[Address] = field(default_factory=list)
    bcc: list[Address] = field(default_factory=list)
    reply_to: list[Address] = field(default_factory=list)
    date: datetime | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    body_text: str | None = None
    body_html: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    headers: dict[str, list[str]] = field(default_factory=dict)
    is_auto_reply: bool = False
    is_auto_submitted: bool = False
    is_bounce: bool = False
    truncated: bool = False
    defects: list[str] = field(default_factory=list)
    # False for a summary (see ``summary()``): bodies and most headers left out.
    complete: bool = True


# The body of a message stored as headers only (over max_message_size_mb).
TRUNCATED_NOTE = "This message was larger than max_message_size_mb; only its headers were stored."

# Headers the import pipeline reads itself (loop and automation checks).
SUMMARY_HEADERS = (
    "auto-submitted",
    "x-autoreply",
    "x-autorespond",
    "precedence",
    "x-precedence",
    "x-auto-response-suppress",
    "list-id",
    "list-unsubscribe",
)


def summary(parsed: ParsedEmail) -> ParsedEmail:
    """A light copy to hand between processes: no bodies and only SUMMARY_HEADERS.
    Whoever needs more parses the raw source again (``complete`` is False)."""
    headers = {name: parsed.headers[name] for name in SUMMARY_HEADERS if name in parsed.headers}
    return dataclasses.replace(parsed, body_text=None, body_html=None, headers=headers, complete=False)


# --------------------------------------------------------------------------- public API


def parse_headers(raw: bytes, limits: ParseLimits = DEFAULT_LIMITS) -> ParsedEmail:
    """Headers only: no bodies, no attachments; cheap even for a huge message."""
    try:
        return _read_top(_prepare(raw), limits)[0]
    except Exception as exc:
        return _failed(exc)


def parse_message(
    raw: bytes, headers_only: bool = False, note: str | None = None, limits: ParseLimits = DEFAULT_LIMITS
) -> ParsedEmail:
    """The whole message; ``headers_only`` gives the headers, ``truncated=True`` and
    ``body_text=note`` (for messages too big to import whole). ``limits``: the cost bounds
    (ParseLimits.from_settings(settings)); the defaults are safe."""
    try:
        buf = _prepare(raw)
        email, fields, body_start = _read_top(buf, limits)
        if headers_only:
            email.truncated = True
            email.body_text = _clean(str(note)) if note is not None else None
        else:
            _read_body(email, buf, fields, body_start, limits)
        return email
    except Exception as exc:
        email = _failed(exc)
        email.truncated = headers_only
        email.body_text = _clean(str(note)) if headers_only and note is not None else None
        return email


def parse_stored(raw: bytes, truncated: bool, limits: ParseLimits = DEFAULT_LIMITS) -> ParsedEmail:
    """A stored message as it was imported: whole, or headers only with the truncation note
    when it was over the size limit."""
    return parse_message(raw, headers_only=truncated, note=TRUNCATED_NOTE if truncated else None, limits=limits)


def extract_part(raw: bytes, part: str, limits: ParseLimits = DEFAULT_LIMITS) -> bytes:
    """The transfer-decoded bytes of the MIME part at ``part`` ("1", "2.1", ...), as listed
    in ``Attachment.part``; b"" when there is no such part."""
    try:
        buf = _prepare(raw)
        fields, _end, body_start, _separated = _read_fields(buf.data, buf.start, len(buf.data), limits)
        top = _first_values(fields, None, limits)
        tree = _Tree(buf, [], top, body_start, limits)
        node = tree.find(tree.node(top, body_start, len(buf.data), "", "text/plain", 0, expand=False), str(part))
        if node is None:
            return b""
        encoding = node.fields.get("content-transfer-encoding")
        return _transfer_decode(buf.data[node.start : node.end], encoding)
    except Exception:
        return b""


def header_block(raw: bytes) -> bytes:
    """The raw header bytes up to (not including) the empty line that ends them; a leading
    BOM or mbox ``From `` line is not part of it."""
    try:
        buf = _prepare(raw)
        return _as_bytes(raw)[buf.start : _read_fields(buf.data, buf.start, len(buf.data))[1]]
    except Exception:
        return b""


_MAIL_FIELDS = (b"from", b"date", b"message-id")


def looks_like_mail(head: bytes) -> bool:
    """Whether bytes (the start of a file) begin with a header block holding a From, Date
    or Message-ID field (SPEC 11: what a directory import takes)."""
    try:
        buf = _prepare(head)
        fields = _read_fields(buf.data, buf.start, len(buf.data))[0]
        return any(name.lower() in _MAIL_FIELDS for name, _value in fields)
    except Exception:
        return False


def body_of(raw: bytes) -> bytes:
    """The bytes after the header block, where the parser starts the body."""
    buf = _prepare(raw)
    return _as_bytes(raw)[_read_fields(buf.data, buf.start, len(buf.data))[2] :]


def key_for(parsed: ParsedEmail, raw: bytes) -> tuple[str, bool]:
    """(dedup key, has_message_id): the Message-ID, else a fingerprint of date, from, to,
    subject and the body bytes. When date, from, to and subject are all missing, the
    header block goes into the fingerprint too (without the trace fields a delivery adds),
    so that two such messages differ unless their sources do."""
    if parsed.message_id:
        return parsed.message_id, True
    try:
        buf = _prepare(raw)
        data = _as_bytes(raw)
        _fields, headers_end, body_start, _separated = _read_fields(buf.data, buf.start, len(buf.data))
        first = {name: (parsed.headers.get(name) or [""])[0] for name in ("date", "from", "to", "subject")}
        extra = b"" if any(value.strip() for value in first.values()) else _header_digest(data[buf.start : headers_end])
        return msgid.fingerprint(
            first["date"], first["from"], first["to"], parsed.subject, data[body_start:], extra
        ), False
    except Exception:
        return msgid.fingerprint("", "", "", "", _as_bytes(raw)), False


# Fields that a delivery adds or changes: the same message fetched twice differs in them.
_TRACE_FIELDS = {
    b"received",
    b"return-path",
    b"delivered-to",
    b"x-original-to",
    b"envelope-to",
    b"x-envelope-to",
    b"x-envelope-from",
    b"x-received",
    b"status",
    b"x-status",
    b"x-uid",
    b"x-keywords",
    b"content-length",
    b"lines",
}


_WHITESPACE = re.compile(rb"\s+")


def _header_digest(block: bytes) -> bytes:
    """A digest of a header block, line ends and folding whitespace normalised, trace
    fields left out; every field counted (no max_header_count)."""
    digest = hashlib.sha256()
    for match in _FIELD.finditer(block):
        name = match.group(1).lower()
        if name not in _TRACE_FIELDS:
            digest.update(name + b":" + _WHITESPACE.sub(b" ", match.group(2)).strip() + b"\n")
    return digest.digest()


# ------------------------------------------------------------------------ raw handling


def _as_bytes(raw: object) -> bytes:
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    try:
        return bytes(raw)  # type: ignore[call-overload]
    except Exception:
        return b""


def _content_start(data: bytes) -> int:
    """Offset of the first header: after a UTF-8 BOM and an mbox ``From `` line."""
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    if data.startswith(b"From ", start) and not _FIELD_NAME.match(data, start):  # not "From : x"
        eol = data.find(b"\n", start)
        return len(data) if eol < 0 else eol + 1
    return start


@dataclass(slots=True)
class _Buffer:
    data: bytes
    start: int


def _prepare(raw: object) -> _Buffer:
    """The message, with LF line ends where it had bare CRs only (same length, so offsets
    hold for the original too), and where its headers start."""
    data = _as_bytes(raw)
    if b"\n" not in data and b"\r" in data:
        data = data.replace(b"\r", b"\n")
    return _Buffer(data, _content_start(data))


_NAME = rb"[\x21-\x39\x3b-\x7e]{1,256}[ \t]*:"
_FIELD_NAME = re.compile(_NAME)
_HEADER_LINES = re.compile(rb"(?:(?:" + _NAME + rb"|[ \t]|From )[^\n]*(?:\n|\Z)){0,50000}")  # bounded work
_FIELD = re.compile(rb"^([\x21-\x39\x3b-\x7e]{1,256})[ \t]*:(.*(?:\n[ \t].*)*)", re.M)
_BLANK_LINE = re.compile(rb"\r*(?:\n|\Z)")
Fields = list[tuple[bytes, bytes]]


def _read_fields(
    buf: bytes, start: int, end: int, limits: ParseLimits = DEFAULT_LIMITS
) -> tuple[Fields, int, int, bool]:
    """Header fields in buf[start:end] as (name, folded value); also where the headers end,
    where the body starts, and False when no empty line separated them (the body then
    starts at the first line that is neither a field, a continuation nor a ``From `` line)."""
    stop = _HEADER_LINES.match(buf, start, end).end()
    blank = _BLANK_LINE.match(buf, stop, end)
    body_start = blank.end() if blank else stop
    matches = itertools.islice(_FIELD.finditer(buf[start:stop]), limits.max_header_count)
    fields = [(match.group(1), match.group(2)) for match in matches]
    return fields, stop, body_start, blank is not None


def _text_of(data: bytes, hint: str | None = None) -> tuple[str, bool]:
    """Raw header bytes as text: UTF-8, else the hinted charset, else cp1252, else latin-1;
    True when it was not UTF-8."""
    if data.isascii():
        return data.decode("ascii"), False
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        pass
    if hint:
        try:
            return _decode_as(data, hint), True
        except Exception:
            pass
    try:
        return data.decode("cp1252"), True
    except UnicodeDecodeError:
        return data.decode("latin-1"), True


def _field_values(fields: Fields, hint: str | None = None) -> tuple[dict[str, list[str]], bool]:
    """Lower-case name -> unfolded values (8-bit decoded, encoded words left as they are)."""
    values: dict[str, list[str]] = {}
    fell_back = False
    for name, folded in fields:
        value = folded.replace(b"\r", b"").replace(b"\n", b"") if b"\n" in folded else folded
        text, fallback = _text_of(value.strip(), hint)
        fell_back = fell_back or fallback
        values.setdefault(name.decode("ascii").lower(), []).append(_clean(text))
    return values, fell_back


def _first_values(fields: Fields, hint: str | None = None, limits: ParseLimits = DEFAULT_LIMITS) -> dict[str, str]:
    """The first value of each field, cut at ``limits.max_header_length`` characters."""
    values = _field_values(fields, hint)[0]
    return {name: found[0][: limits.max_header_length] for name, found in values.items()}


def _clean(text: str) -> str:
    return text.replace("\x00", "") if "\x00" in text else text


def _note(defects: list[str], text: str) -> None:
    if text not in defects and len(defects) < MAX_DEFECTS:
        defects.append(_clean(text))


def _failed(exc: Exception) -> ParsedEmail:
    return ParsedEmail(defects=[f"unparseable message ({type(exc).__name__})"])


# -------------------------------------------------------------------------- charsets

_ALIASES = {
    "utf8": "utf-8",
    "utf-8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
    "x-unicode20utf8": "utf-8",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "euc-cn": "gb18030",
    "csgb2312": "gb18030",
    "gb_2312-80": "gb18030",
    "chinese": "gb18030",
    "hz-gb-2312": "hz",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "ksc5601": "cp949",
    "ksc_5601": "cp949",
    "euc-kr": "cp949",
    "korean": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "windows-31j": "cp932",
    "iso-2022-jp": "iso2022_jp_2",
    "big5": "cp950",
    "x-big5": "cp950",
    "tis-620": "cp874",
    "windows-874": "cp874",
    "iso-8859-8-i": "iso8859_8",
    "iso-8859-6-i": "iso8859_6",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "macintosh": "mac_roman",
    "x-mac-roman": "mac_roman",
    "ucs-2": "utf-16",
}
_UNKNOWN = {"unknown-8bit", "unknown", "x-unknown", "x-user-defined", "default", "8bit", "none", "binary"}
_NOT_CHARSETS = {"unicode-escape", "raw-unicode-escape", "punycode", "idna", "undefined", "charmap", "mbcs"}
_WESTERN = {"ascii", "iso8859-1", "cp1252", "iso8859-15"}
_NOT_ASCII = ("utf-16", "utf-32", "utf-7", "iso2022", "hz", "cp037", "cp1140", "cp500", "cp875")
_ISO = re.compile(r"iso[-_ ]?8859[-_ ]?(\d{1,2})")
_WINDOWS = re.compile(r"(?:windows|win|cp|ms|ibm)[-_ ]?(\d{3,4})")
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]")


@functools.lru_cache(maxsize=1024)
def _codec(label: str | None) -> str | None:
    """Python codec name for a MIME charset label; None when unknown or not a charset."""
    if not label:
        return None
    name = label.strip().strip("\"'").strip().lower()[:64]
    if name in _UNKNOWN:
        return None
    name = _ALIASES.get(name, name)
    candidates = [name, name.removeprefix("x-"), re.sub(r"[-_ ]", "", name)]
    for pattern, template in ((_ISO, "iso8859_{}"), (_WINDOWS, "cp{}")):
        match = pattern.fullmatch(name.removeprefix("x-"))
        if match:
            candidates.append(template.format(match.group(1)))
    for candidate in candidates:
        try:
            info = codecs.lookup(candidate)
        except Exception:
            continue
        if info.name.replace("_", "-") in _NOT_CHARSETS or not getattr(info, "_is_text_encoding", True):
            return None
        return info.name
    return None


def _decode(data: bytes, label: str | None, defects: list[str]) -> str:
    """Bytes in a declared charset as text, falling back when the label is wrong."""
    codec = _codec(label)
    if label and codec is None and label.strip().lower() not in _UNKNOWN:
        _note(defects, f"unknown charset {label.strip()[:40]!r}")
    if (codec is None or not codec.startswith(_NOT_ASCII)) and data.isascii():
        return data.decode("ascii")
    if codec is None or codec in _WESTERN:
        return _guess(data, label, defects)
    try:
        return _decode_as(data, codec)
    except Exception:
        if codec.startswith("iso2022_jp") and data.isascii():
            return _jis_via_cp932(data)
        return _mislabelled(data, codec, defects)


def _decode_as(data: bytes, codec: str, errors: str = "strict") -> str:
    text = data.decode(codec, errors)
    if codec == "utf-7":  # the only codec here that can yield lone surrogates
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _guess(data: bytes, label: str | None, defects: list[str]) -> str:
    """Undeclared, unknown or western single-byte data: UTF-8 when it is valid UTF-8."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if label and _codec(label) in _WESTERN:
            _note(defects, f"UTF-8 text labelled {label.strip()[:40]!r}")
        return text
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _mislabelled(data: bytes, codec: str, defects: list[str]) -> str:
    if codec != "utf-8":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            _note(defects, f"bytes invalid in charset {codec}; undecodable characters replaced")
            return _decode_as(data, codec, "replace")
        _note(defects, f"UTF-8 text labelled {codec}")
        return text
    if _UTF8_SEQUENCE.search(data):
        _note(defects, "invalid UTF-8; undecodable characters replaced")
        return data.decode("utf-8", "replace")
    _note(defects, "non-UTF-8 text labelled utf-8; read as cp1252")
    return _guess(data, None, defects)


_JIS_ESCAPE = re.compile(rb"\x1b(\$[@B]|\$\(D|\([BJI])")


def _jis_via_cp932(data: bytes) -> str:
    """ISO-2022-JP with the Microsoft extensions (CP50220: NEC and IBM rows) that Python's
    codecs refuse, by converting to Shift_JIS and decoding as CP932."""
    out, mode, pos = bytearray(), b"(B", 0
    for match in _JIS_ESCAPE.finditer(data):
        out += _jis_chunk(data[pos : match.start()], mode)
        mode, pos = match.group(1), match.end()
    out += _jis_chunk(data[pos:], mode)
    return out.decode("cp932", "replace")


def _jis_chunk(chunk: bytes, mode: bytes) -> bytes:
    if mode == b"(I":
        return bytes(byte | 0x80 if 0x21 <= byte <= 0x5F else byte for byte in chunk)
    if not mode.startswith(b"$"):
        return chunk
    out = bytearray()
    for index in range(0, len(chunk) - 1, 2):
        high, low = chunk[index], chunk[index + 1]
        if not (0x21 <= high <= 0x7E and 0x21 <= low <= 0x7E):
            out += chunk[index : index + 2]
            continue
        first = ((high - 0x21) >> 1) + 0x81
        out.append(first + 0x40 if first > 0x9F else first)
        out.append(low + 0x1F + (low >= 0x60) if high & 1 else low + 0x7E)
    return bytes(out)


# ------------------------------------------------------------- RFC 2047 / RFC 2231

_WORD = re.compile(r"=\?([^?\s]{1,80})\?([bBqQ])\?([^?]*)\?=")
_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")


def _b64decode(data: bytes) -> bytes:
    try:
        return binascii.a2b_base64(data)
    except (binascii.Error, ValueError):
        pass
    clean = _B64_JUNK.sub(b"", data)
    if len(clean) % 4 == 1:
        clean = clean[:-1]
    try:
        return binascii.a2b_base64(clean + b"=" * (-len(clean) % 4))
    except (binascii.Error, ValueError):
        return b""


def _word_bytes(encoding: str, text: str) -> bytes:
    data = text.encode("utf-8", "surrogateescape")
    if encoding in "bB":
        return _b64decode(data)
    return binascii.a2b_qp(data, header=True)


def _decode_words(value: str, defects: list[str] | None = None) -> str:
    """RFC 2047 encoded words decoded; whitespace between adjacent words dropped."""
    if "=?" not in value:
        return value
    notes = defects if defects is not None else []
    pieces: list[str] = []
    pending, charset, pos = bytearray(), None, 0
    for match in _WORD.finditer(value):
        label = match.group(1).split("*", 1)[0]
        gap = value[pos : match.start()]
        if charset is None or gap.strip() or label.lower() != charset:
            if charset is not None:
                pieces.append(_decode(bytes(pending), charset, notes))
            if charset is None or gap.strip():
                pieces.append(gap)
            pending, charset = bytearray(), label.lower()
        pending += _word_bytes(match.group(2), match.group(3))
        pos = match.end()
    if charset is not None:
        pieces.append(_decode(bytes(pending), charset, notes))
    pieces.append(value[pos:])
    return _clean("".join(pieces))


# A quoted value as an unrolled loop: memory does not grow with each character matched.
_PARAM = re.compile(r'([^\s;=]+)\s*=\s*("[^"\\]*(?:\\.[^"\\]*)*"?|[^;]*)')


def _unquote(value: str) -> str:
    value = value[1:-1] if len(value) > 1 and value.endswith('"') else value[1:]
    return value.replace('\\"', '"').replace("\\\\", "\\")


def _params(text: str, defects: list[str]) -> dict[str, str]:
    """Header parameters (lower-case names), RFC 2231 continuations and charsets joined,
    RFC 2047 words in (file) names decoded."""
    plain: dict[str, str] = {}
    extended: dict[str, list[tuple[int, bool, str]]] = {}
    for match in _PARAM.finditer(text):
        name, value = match.group(1).lower(), match.group(2).strip()
        if value.startswith('"'):
            value = _unquote(value)
        base, star, rest = name.partition("*")
        if not star:
            plain.setdefault(name, value)
        elif rest in ("", "*"):
            extended.setdefault(base, []).append((0, True, value))
        elif rest.rstrip("*").isdigit():
            extended.setdefault(base, []).append((int(rest.rstrip("*")), rest.endswith("*"), value))
    for base, segments in extended.items():
        plain[base] = _join_2231(segments, defects)
    for name in ("name", "filename"):
        if name in plain:
            plain[name] = _decode_words(plain[name], defects)
    return plain


def _join_2231(segments: list[tuple[int, bool, str]], defects: list[str]) -> str:
    segments.sort(key=lambda segment: segment[0])
    charset, data = None, bytearray()
    for position, (_index, is_extended, value) in enumerate(segments):
        if is_extended and position == 0 and value.count("'") >= 2:
            charset, _language, value = value.split("'", 2)
        if is_extended:
            data += unquote_to_bytes(value)
        else:
            data += value.encode("utf-8", "surrogateescape")
    return _decode(bytes(data), charset, defects)


_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")


def _content_type(value: str | None, default: str, defects: list[str]) -> tuple[str, dict[str, str]]:
    """(lower-case type/subtype, parameters); the default when missing or invalid."""
    if not value:
        return default, {}
    head, _, rest = value.partition(";")
    words = head.split()
    if len(words) > 1:
        rest = " ".join(words[1:]) + ";" + rest
    ctype = words[0].lower() if words else ""
    if not _TYPE.fullmatch(ctype):
        _note(defects, f"invalid Content-Type {value[:60]!r}; read as {default}")
        ctype = default
    return ctype, _params(rest, defects)


def _disposition(value: str | None, defects: list[str]) -> tuple[str, dict[str, str]]:
    if not value:
        return "", {}
    head, _, rest = value.partition(";")
    return head.strip().lower(), _params(rest, defects)


# ------------------------------------------------------------------------ top level


def _read_top(buf: _Buffer, limits: ParseLimits = DEFAULT_LIMITS) -> tuple[ParsedEmail, dict[str, str], int]:
    """The message headers into a ParsedEmail; also the first raw value of each field and
    where the body starts."""
    fields, _end, body_start, separated = _read_fields(buf.data, buf.start, len(buf.data), limits)
    raw, fell_back = _field_values(fields)
    email = ParsedEmail()
    if not separated:
        _note(email.defects, "no empty line after the headers")
    if len(fields) == limits.max_header_count:
        _note(email.defects, f"more than {limits.max_header_count:,} header fields; the rest ignored")
    if fell_back:
        hint = _header_charset(buf.data, body_start, (raw.get("content-type") or [""])[0])
        if hint:
            raw = _field_values(fields, hint)[0]
        _note(email.defects, f"8-bit header bytes that are not UTF-8 (read as {hint or 'cp1252'})")
    for name, values in raw.items():
        email.headers[name] = [
            _decode_words(_cut_value(name, value, limits, email.defects)).strip() for value in values
        ]
    senders = _pairs(raw.get("from") or [], email.defects, limits)
    _fill_envelope(email, raw, senders, limits)
    _fill_flags(email, raw, senders)
    first = {name: _cut_value(name, values[0], limits, email.defects) for name, values in raw.items()}
    return email, first, body_start


def _cut_value(name: str, value: str, limits: ParseLimits, defects: list[str]) -> str:
    """A header value cut at ``limits.max_header_length`` characters (noted)."""
    if len(value) <= limits.max_header_length:
        return value
    _note(defects, f"{name} header longer than {limits.max_header_length:,} characters; cut")
    return value[: limits.max_header_length]


_CHARSET_PARAM = re.compile(rb"""charset\s*=\s*["']?([A-Za-z0-9_.:-]{1,40})""", re.I)


def _header_charset(buf: bytes, body_start: int, content_type: str) -> str | None:
    """For raw 8-bit headers that are not UTF-8: the message's own (non-western) charset,
    from its Content-Type or the first charset parameter in its body."""
    match = _CHARSET_PARAM.search(content_type.encode("ascii", "ignore"))
    match = match or _CHARSET_PARAM.search(buf, body_start, body_start + 65_536)
    codec = _codec(match.group(1).decode("ascii")) if match else None
    return None if codec is None or codec in _WESTERN or codec in ("utf-8", "utf-7") else codec


def _fill_envelope(
    email: ParsedEmail, raw: dict[str, list[str]], senders: list[tuple[str, str]], limits: ParseLimits
) -> None:
    subject = (email.headers.get("subject") or [""])[0]
    subject = re.sub(r"[\t\r\n]", " ", subject).strip()
    email.subject = subject or NO_SUBJECT
    first = {name: (raw.get(name) or [""])[0][: limits.max_header_length] for name in ("message-id", "in-reply-to")}
    email.message_id = msgid.normalize(first["message-id"])
    email.in_reply_to = msgid.normalize(first["in-reply-to"])
    references = " ".join(raw.get("references") or [])  # read whole: the newest ids are at the end
    email.references = msgid.normalize_all(references, limits.max_references)
    if len(email.references) == limits.max_references and references.count("<") > limits.max_references:
        _note(email.defects, f"References cut to {limits.max_references} ids (the first and the newest)")
    email.date = _date((raw.get("date") or [""])[0][:1000])
    found = _addresses(senders, email.defects, limits)
    email.from_ = found[0] if found else None
    for name in ("to", "cc", "bcc", "reply-to"):
        found = _addresses(_pairs(raw.get(name) or [], email.defects, limits), email.defects, limits)
        setattr(email, name.replace("-", "_"), found)


def _date(value: str) -> datetime | None:
    if not value.strip():
        return None
    try:
        parsed = parsedate_to_datetime(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except Exception:
        return None


# getaddresses() reads about 150,000 characters a second: lists it must read (comments,
# escapes, groups) are cut here; plain lists go through the linear _simple_pairs.
_MAX_GETADDRESSES_CHARS = 20_000


def _pairs(values: list[str], defects: list[str], limits: ParseLimits = DEFAULT_LIMITS) -> list[tuple[str, str]]:
    """(display name, address) pairs of an address field, in linear time. A field cut for
    its length still gives its first address (a huge display name cannot hide the sender)."""
    text = ", ".join(values)
    pairs, cut = _parse_list(text, defects, limits.max_header_length)
    if cut:
        _note(defects, "address header too long; cut")
        if not any("@" in address for _name, address in pairs):
            first = _first_pair(text)
            pairs = [first] if first else []
    return pairs


def _parse_list(text: str, defects: list[str], budget: int) -> tuple[list[tuple[str, str]], bool]:
    """The pairs of an address list read within ``budget`` characters (cut at a comma),
    and whether it was cut."""
    cut = len(text) > budget
    if cut:
        text = text[: text.rfind(",", 0, budget) + 1]
    simple = _simple_pairs(text)
    if simple is not None:
        return simple, cut
    if len(text) > _MAX_GETADDRESSES_CHARS:
        text, cut = text[: text.rfind(",", 0, _MAX_GETADDRESSES_CHARS) + 1], True
    try:
        return getaddresses([text]), cut
    except Exception:  # RecursionError on thousands of nested comments
        _note(defects, "unreadable address header")
        return [], cut


_DELIMITERS = r'<>\s"(),;:@\\\[\]'
_ADDRESS = re.compile(rf"[^{_DELIMITERS}]+@[^{_DELIMITERS}]+")
_NAME_SPECIALS = re.compile(r'[<>"(),;:@\\\[\]]')
_LIST_ITEMS = re.compile(r'[^,"]*(?:"[^"\\\r\n]*"[^,"]*)*')
_ANGLE_ADDRESS = re.compile(r"<([^<>\s@]{1,256}@[^<>\s@]{1,256})>")
_TOKEN_CHARS = _DELIMITERS.replace("@", "")
# A whole token (preceded by a delimiter or the start) holding an "@": each start is tried
# once per token, so the search is linear even in a megabyte of text without any "@".
_ADDRESS_TOKEN = re.compile(rf"(?<![^{_TOKEN_CHARS}])[^{_TOKEN_CHARS}@]+@[^{_TOKEN_CHARS}]+")


def _simple_pairs(text: str) -> list[tuple[str, str]] | None:
    """What getaddresses() gives for plain ``a@b``, ``Name <a@b>`` and ``"Name, Q." <a@b>``
    lists, ten times faster and linear in the text (no regex that can backtrack); None for
    anything else (comments, escapes, groups, routes)."""
    if "(" in text or "\\" in text:
        return None
    pairs: list[tuple[str, str]] = []
    position = 0
    while position <= len(text):
        item = _LIST_ITEMS.match(text, position)
        end = item.end()
        if end < len(text) and text[end] != ",":  # an unbalanced quote
            return None
        pair = _simple_item(item.group())
        if pair is None:
            return None
        if pair[1]:
            pairs.append(pair)
        position = end + 1
    return pairs


def _simple_item(item: str) -> tuple[str, str] | None:
    """("", "") for an empty item; None when it is not plain."""
    item = item.strip()
    if not item.endswith(">"):
        return ("", item) if not item or _ADDRESS.fullmatch(item) else None
    bracket = item.rfind("<")
    address, name = item[bracket + 1 : -1], item[:bracket].strip()
    if bracket < 0 or not _ADDRESS.fullmatch(address):
        return None
    if name.startswith('"') and name.endswith('"') and len(name) > 1 and name.count('"') == 2:
        return name[1:-1], address  # as getaddresses() gives it: the quoted text as it is
    if _NAME_SPECIALS.search(name):
        return None
    return " ".join(name.split()), address


def _first_pair(text: str) -> tuple[str, str] | None:
    """The first address of an address field too long to read whole: the first ``<a@b>``
    (its display name cut at 1,000 characters), else the first bare ``a@b``."""
    match = _ANGLE_ADDRESS.search(text)
    if match:
        name = text[max(0, match.start() - _MAX_NAME_CHARS) : match.start()].strip().strip('"')
        return " ".join(name.split()), match.group(1)
    for found in _ADDRESS_TOKEN.finditer(text):
        token = found.group()
        local, at, domain = token.partition("@")
        if at and local and domain and "@" not in domain:
            return "", token
    return None


def _addresses(pairs: list[tuple[str, str]], defects: list[str], limits: ParseLimits = DEFAULT_LIMITS) -> list[Address]:
    """Addresses with an "@" (at most ``limits.max_addresses``), display names decoded."""
    found: list[Address] = []
    for name, address in pairs:
        address = _clean(address).strip()
        if "@" not in address:
            continue
        if len(found) >= limits.max_addresses:
            _note(defects, f"more than {limits.max_addresses:,} addresses in one field; the rest ignored")
            break
        name = _decode_words(_clean(name)[:_MAX_NAME_CHARS], defects).strip()
        found.append(Address(name, unicode_form(address)))  # EAI: one stored form (NFC, Unicode domain)
    return found


_BOUNCE_SENDERS = ("mailer-daemon", "postmaster")
_KEYWORD = re.compile(r"[^\s,;()]{1,100}")


def _fill_flags(email: ParsedEmail, raw: dict[str, list[str]], senders: list[tuple[str, str]]) -> None:
    """Auto-reply, auto-submitted and bounce flags (SPEC 6)."""
    headers = email.headers
    # Every copy counts: "no" in one and "auto-replied" in another is automated.
    modes = {
        found.group().lower() for value in headers.get("auto-submitted") or () if (found := _KEYWORD.search(value))
    }
    email.is_auto_reply = "x-autoreply" in headers or "x-autorespond" in headers or "auto-replied" in modes
    email.is_auto_submitted = email.is_auto_reply or bool(modes - {"no"})
    ctype = _content_type((raw.get("content-type") or [""])[0], "text/plain", [])[0]
    locals_ = [address.rpartition("@")[0] or address for _name, address in senders]
    return_paths = [re.sub(r"\s", "", value) for value in raw.get("return-path") or []]
    email.is_bounce = (
        ctype == "multipart/report"
        or any(local.strip().lower() in _BOUNCE_SENDERS for local in locals_)
        or "<>" in return_paths
    )


# ------------------------------------------------------------------------- MIME tree


@dataclass(slots=True)
class _Part:
    path: str
    fields: dict[str, str]
    ctype: str
    params: dict[str, str]
    start: int
    end: int
    children: list[_Part] = field(default_factory=list)


class _Tree:
    """Builds the part tree: header fields and body offsets, nothing decoded."""

    def __init__(
        self, buf: _Buffer, defects: list[str], top: dict[str, str], body_start: int, limits: ParseLimits
    ) -> None:
        self.data, self.defects, self.count, self.limits = buf.data, defects, 0, limits
        self.top_type, self.body_start = top.get("content-type", ""), body_start
        self.hint: str | None = None
        self.hinted = False

    def fields(self, fields: Fields) -> dict[str, str]:
        """A part's header fields; 8-bit ones that are not UTF-8 read in the message's charset."""
        if not self.hinted and not all(value.isascii() for _name, value in fields):
            self.hint, self.hinted = _header_charset(self.data, self.body_start, self.top_type), True
        if any(len(value) > self.limits.max_header_length for _name, value in fields):
            _note(self.defects, f"MIME part header longer than {self.limits.max_header_length:,} characters; cut")
        return _first_values(fields, self.hint, self.limits)

    def node(
        self, fields: dict[str, str], start: int, end: int, path: str, default: str, depth: int, expand: bool = True
    ) -> _Part:
        ctype, params = _content_type(fields.get("content-type"), default, self.defects)
        part = _Part(path, fields, ctype, params, start, max(start, end))
        if ctype.startswith("multipart/") and expand:
            for number, (child_start, child_end) in enumerate(self._child_ranges(part, depth), 1):
                part.children.append(self._child(part, number, child_start, child_end, depth))
        return part

    def find(self, root: _Part, path: str) -> _Part | None:
        """The part at an IMAP-style path ("2.1"; "1" for a single-part message), reading
        only the headers of the parts on the way there."""
        part, numbers = root, [int(number) for number in path.split(".")]
        for depth, number in enumerate(numbers):
            ranges = self._child_ranges(part, depth) if part.ctype.startswith("multipart/") else []
            if not ranges:
                return root if part is root and numbers == [1] else None
            if not 1 <= number <= len(ranges):
                return None
            part = self._child(part, number, *ranges[number - 1], depth, expand=False)
        return part

    def _child_ranges(self, part: _Part, depth: int) -> list[tuple[int, int]]:
        """The byte ranges of a multipart's parts; none (and the part made a leaf) when it
        is too deep or has no usable boundary."""
        if depth >= self.limits.max_mime_depth or self.count >= self.limits.max_mime_parts:
            _note(self.defects, "MIME structure too deep or too large; rest kept as one part")
            part.ctype = "application/octet-stream"
            return []
        found = self._ranges(part)
        if not found or not found[0]:
            _note(self.defects, f"{part.ctype} without a usable boundary; body read as text")
            part.ctype = "text/plain"
            return []
        ranges, closed = found
        if not closed:
            _note(self.defects, "missing closing MIME boundary")
        most = self.limits.max_mime_parts
        if self.count + len(ranges) > most:
            _note(self.defects, f"more than {most:,} MIME parts; the rest ignored")
            ranges = ranges[: most - self.count]
        self.count += len(ranges)
        return ranges

    def _child(self, parent: _Part, number: int, start: int, end: int, depth: int, expand: bool = True) -> _Part:
        fields, _end, body_start, _separated = _read_fields(self.data, start, end, self.limits)
        default = "message/rfc822" if parent.ctype == "multipart/digest" else "text/plain"
        path = f"{parent.path}.{number}" if parent.path else str(number)
        return self.node(self.fields(fields), body_start, end, path, default, depth + 1, expand)

    def _ranges(self, part: _Part) -> tuple[list[tuple[int, int]], bool] | None:
        """The parts' byte ranges by the declared boundary, else by a guessed one."""
        boundary = part.params.get("boundary", "").encode("utf-8", "surrogateescape")
        found = _split_parts(self.data, part.start, part.end, boundary)
        if found and found[0]:
            return found
        guessed = _guess_boundary(self.data, part.start, part.end)
        if guessed is None or guessed == boundary:
            return None
        declared, used = (text[:70].decode("utf-8", "replace") for text in (boundary, guessed))
        _note(self.defects, f"{part.ctype}: boundary {declared!r} not found, used {used!r}")
        return _split_parts(self.data, part.start, part.end, guessed)


def _guess_boundary(buf: bytes, start: int, end: int) -> bytes | None:
    """The boundary of a multipart whose declared one is missing or wrong: the first
    ``--xyz`` line (not just dashes) when it appears again further on."""
    match = _DELIMITER_LINE.search(buf, start, min(end, start + 65_536))
    if match is None or not match.group(1).strip(b"-"):
        return None
    candidate = match.group(1)
    return candidate if buf.find(b"\n--" + candidate, match.end(), end) >= 0 else None


_DELIMITER_LINE = re.compile(rb"^--(\S{1,200}?)(?:--)?[ \t]*\r?$", re.M)


def _split_parts(buf: bytes, start: int, end: int, boundary: bytes) -> tuple[list[tuple[int, int]], bool] | None:
    """Byte ranges of the parts between ``--boundary`` lines, and whether the closing
    ``--boundary--`` was found; None when the boundary never appears."""
    if not boundary.strip():
        return None
    marker = b"--" + boundary
    ranges: list[tuple[int, int]] = []
    part_start, pos = None, start
    while True:
        hit = _find_delimiter(buf, marker, start, pos, end)
        if hit is None:
            break
        line_start, after, closing = hit
        if part_start is not None:
            ranges.append((part_start, _line_end(buf, part_start, line_start)))
        if closing:
            return ranges, True
        part_start = pos = after
    if part_start is None:
        return None
    ranges.append((part_start, end))
    return ranges, False


def _find_delimiter(buf: bytes, marker: bytes, first: int, pos: int, end: int) -> tuple[int, int, bool] | None:
    """(line start, next line start, is closing) of the next delimiter line at or after pos."""
    while True:
        hit = buf.find(marker, pos, end)
        if hit < 0:
            return None
        if hit == first or buf[hit - 1] == 10:
            after = hit + len(marker)
            eol = buf.find(b"\n", after, end)
            line_end = end if eol < 0 else eol + 1
            if buf.startswith(b"--", after, end):
                return hit, line_end, True
            if line_end - after <= 200 and not buf[after:line_end].strip():
                return hit, line_end, False
        pos = hit + 1


def _line_end(buf: bytes, start: int, line_start: int) -> int:
    """End of a part: the line break before the next delimiter belongs to the delimiter."""
    end = line_start
    if end > start and buf[end - 1] == 10:
        end -= 1
        if end > start and buf[end - 1] == 13:
            end -= 1
    return end


# ---------------------------------------------------------------- transfer decoding


def _cte(value: str | None) -> str:
    return re.sub(r"[^a-z0-9]", "", (value or "").lower())


def _transfer_decode(data: bytes, encoding: str | None, defects: list[str] | None = None) -> bytes:
    cte = _cte(encoding)
    if cte == "base64":
        return _b64decode(data)
    if cte == "quotedprintable":
        return binascii.a2b_qp(data)
    if cte in ("xuuencode", "uuencode", "xuue"):
        return _uudecode(data)
    if cte not in ("", "7bit", "8bit", "binary") and defects is not None:
        _note(defects, f"unknown Content-Transfer-Encoding {encoding!r}; read as is")
    return data


def _uudecode(data: bytes) -> bytes:
    out, inside = bytearray(), False
    for line in data.splitlines():
        if not inside:
            inside = line.startswith(b"begin ")
            continue
        if line.strip() == b"end":
            break
        try:
            out += binascii.a2b_uu(line)
        except binascii.Error:
            length = (((line[0] - 32) & 63) * 4 + 5) // 3 if line else 0
            try:
                out += binascii.a2b_uu(line[:length])
            except binascii.Error:
                continue
    return bytes(out)


def _encoded_size(buf: bytes, start: int, end: int, encoding: str | None) -> int:
    cte = _cte(encoding)
    if cte == "base64":
        return _b64_size(buf, start, end)
    if cte in ("quotedprintable", "xuuencode", "uuencode", "xuue"):
        return len(_transfer_decode(buf[start:end], encoding))
    return end - start


def _b64_size(buf: bytes, start: int, end: int) -> int:
    """Decoded size of base64 text without decoding it: 3/4 of the characters, less the
    padding; whitespace is not counted."""
    while end > start and buf[end - 1] in b" \t\r\n":
        end -= 1
    if end <= start:
        return 0
    padding = 2 if buf.endswith(b"==", start, end) else 1 if buf[end - 1] == 61 else 0
    return max(0, _b64_chars(buf, start, end) * 3 // 4 - padding)


def _b64_chars(buf: bytes, start: int, end: int) -> int:
    """Non-whitespace characters in buf[start:end]: when every line has the same length
    (checked at sampled line ends), computed from the line length; else counted."""
    first_eol = buf.find(b"\n", start, end)
    if first_eol < 0:
        return end - start
    step = first_eol + 1 - start
    width = step - 1 - (1 if buf[first_eol - 1] == 13 else 0)
    last_start = buf.rfind(b"\n", start, end) + 1
    lines, rest = divmod(last_start - start, step)
    if rest == 0 and width > 0 and _uniform(buf, start, step, lines, buf[start + width : start + step]):
        return lines * width + (end - last_start)
    return len(buf[start:end].translate(None, b" \t\r\n"))


def _uniform(buf: bytes, start: int, step: int, lines: int, terminator: bytes) -> bool:
    """Whether sampled lines (about 20, always the first and the last) all end at a
    multiple of ``step`` with the same line terminator."""
    size = len(terminator)
    for line in {1, lines, *range(1, lines + 1, max(1, lines // 16))}:
        eol = start + line * step
        if buf[eol - size : eol] != terminator:
            return False
    return True


# ------------------------------------------------------------------- bodies, parts


class _Collector:
    """Walks the tree: text/plain and text/html bodies, everything else attachments."""

    def __init__(self, buf: _Buffer, defects: list[str], limits: ParseLimits) -> None:
        self.data, self.defects, self.limits = buf.data, defects, limits
        self.plain: list[str] = []
        self.html: str | None = None
        self.found: list[tuple[Attachment, str, str]] = []
        self.named_text: tuple[_Part, Attachment] | None = None

    def visit(self, part: _Part, preferred: bool = False) -> None:
        """``preferred``: a text part that is the body even when it has a file name (an
        alternative, the first part of a multipart/report)."""
        if part.ctype == "multipart/alternative":
            self._alternative(part)
            return
        for index, child in enumerate(part.children):
            self.visit(child, preferred=index == 0 and part.ctype == "multipart/report")
        if not part.ctype.startswith("multipart/"):
            try:
                self._leaf(part, preferred)
            except Exception as exc:
                _note(self.defects, f"part {part.path or '1'} unreadable ({type(exc).__name__})")

    def _alternative(self, part: _Part) -> None:
        """Of several text/plain alternatives only the first counts."""
        seen_plain = False
        for child in part.children:
            before = len(self.plain)
            self.visit(child, preferred=True)
            if seen_plain:
                del self.plain[before:]
            seen_plain = seen_plain or len(self.plain) > before

    def _leaf(self, part: _Part, preferred: bool) -> None:
        disposition, dparams = _disposition(part.fields.get("content-disposition"), self.defects)
        filename = dparams.get("filename") or part.params.get("name") or None
        text_ok = disposition != "attachment" or preferred
        if part.ctype in _BODY_TYPES and text_ok and (not filename or preferred or not part.path):
            if part.ctype == "text/plain":
                self.plain.append(self._text(part))
            elif self.html is None:
                self.html = self._text(part)
            return
        if filename is None and part.ctype in _MESSAGE_TYPES:
            filename = _eml_name(self.data, part)
        cid = (part.fields.get("content-id") or "").strip().strip("<>").strip()
        cte = part.fields.get("content-transfer-encoding")
        attachment = Attachment(
            filename=_filename(filename, self.limits.max_filename_length, self.defects),
            content_type=part.ctype,
            size=_encoded_size(self.data, part.start, part.end, cte),
            is_inline=False,
            content_id=cid or None,
            part=part.path or "1",
        )
        self.found.append((attachment, disposition, (part.fields.get("content-location") or "").strip()))
        if part.ctype == "text/plain" and text_ok and self.named_text is None:
            self.named_text = (part, attachment)

    def _text(self, part: _Part) -> str:
        cte = part.fields.get("content-transfer-encoding")
        encoded = self.data[part.start : min(part.end, part.start + 3 * _MAX_TEXT_BYTES)]
        data = _transfer_decode(encoded, cte, self.defects)
        if len(data) > _MAX_TEXT_BYTES:
            data = _cut_bytes(data, _MAX_TEXT_BYTES)
        charset = part.params.get("charset")
        if not charset and part.ctype == "text/html":
            charset = _meta_charset(data)
        text = _clean(_decode(data, charset, self.defects))
        return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text

    def finish(self, email: ParsedEmail) -> None:
        if not self.plain and self.html is None and self.named_text is not None:
            part, attachment = self.named_text  # no body but a named text part: that is it
            self.plain.append(self._text(part))
            self.found = [item for item in self.found if item[0] is not attachment]
        html = self._cap(self.html, "body_html")
        text = "\n".join(self.plain) if self.plain else None
        if html is not None and not (text or "").strip():
            most = self.limits.max_html_bytes
            if len(html) > most:
                _note(self.defects, f"html body longer than {most:,} characters: only its start converted to text")
            text = html_to_text(html, most)
        email.body_text = self._cap(text, "body_text")
        email.body_html = html
        _mark_inline(self.found, html)
        email.attachments = [attachment for attachment, _d, _l in self.found]

    def _cap(self, text: str | None, name: str) -> str | None:
        if text is not None and len(text) > MAX_BODY_CHARS:
            _note(self.defects, f"{name} cut at {MAX_BODY_CHARS:,} characters")
            return text[:MAX_BODY_CHARS]
        return text


def _filename(
    name: str | None, most: int = DEFAULT_LIMITS.max_filename_length, defects: list[str] | None = None
) -> str | None:
    """A decoded file name with control characters (folded line breaks) as spaces, at
    most ``most`` characters: a longer one is cut in the middle ("start…end.pdf")."""
    name = _CONTROLS.sub(" ", name or "").strip()
    if len(name) > most:
        if defects is not None:
            _note(defects, f"attachment file name longer than {most:,} characters; cut")
        name = shorten_name(name, most)
    return name or None


def shorten_name(name: str, most: int) -> str:
    """``name`` in at most ``most`` characters, its extension (up to 16 characters) kept:
    the start, an ellipsis, the end."""
    if len(name) <= most:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension) > 16 or " " in extension:
        stem, extension = name, ""
    tail = f"{dot}{extension}" if extension else ""
    keep = max(1, most - len(tail) - 1)
    return stem[:keep].rstrip() + "\u2026" + tail


_CONTROLS = re.compile(r"[\x00-\x1f\x7f]+")


def _cut_bytes(data: bytes, limit: int) -> bytes:
    """data[:limit], not ending inside a UTF-8 sequence."""
    cut = data[:limit]
    for back in range(1, 5):
        if len(cut) >= back and cut[-back] >= 0xC0:
            return cut[:-back]
        if len(cut) < back or cut[-back] < 0x80:
            break
    return cut


_META = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.I)


def _meta_charset(data: bytes) -> str | None:
    match = _META.search(data, 0, 8192)
    return match.group(1).decode("ascii") if match else None


def _eml_name(buf: bytes, part: _Part) -> str:
    """File name for an attached message: its subject + ".eml"."""
    data = buf[part.start : part.end]
    if _cte(part.fields.get("content-transfer-encoding")) in ("base64", "quotedprintable"):
        data = _transfer_decode(data, part.fields.get("content-transfer-encoding"))
    fields = _read_fields(data, _content_start(data), len(data))[0]
    subject = _decode_words(_first_values(fields).get("subject", ""))
    subject = re.sub(r'[\x00-\x1f\x7f/\\:*?"<>|]+', " ", subject)
    return (" ".join(subject.split())[:120] or "message") + ".eml"


def _mark_inline(found: list[tuple[Attachment, str, str]], html: str | None) -> None:
    """Inline: a Content-ID the html refers to as cid:, or an inline image whose name or
    Content-Location the html refers to."""
    if not html:
        return
    lowered: str | None = None
    for attachment, disposition, location in found:
        refs = [f"cid:{attachment.content_id}"] if attachment.content_id else []
        if disposition == "inline" and attachment.content_type.startswith("image/"):
            refs += [ref for ref in (attachment.filename, location) if ref]
        if refs:
            lowered = html.lower() if lowered is None else lowered
            attachment.is_inline = any(ref.lower() in lowered for ref in refs)


def _read_body(email: ParsedEmail, buf: _Buffer, fields: dict[str, str], body_start: int, limits: ParseLimits) -> None:
    try:
        tree = _Tree(buf, email.defects, fields, body_start, limits)
        root = tree.node(fields, body_start, len(buf.data), "", "text/plain", 0)
        collector = _Collector(buf, email.defects, limits)
        collector.visit(root)
        collector.finish(email)
    except Exception as exc:
        _note(email.defects, f"MIME structure unreadable ({type(exc).__name__}); body read as text")
        data = _cut_bytes(buf.data[body_start:], _MAX_TEXT_BYTES)
        email.body_text = _clean(_decode(data, None, email.defects))[:MAX_BODY_CHARS]
        email.body_html, email.attachments = None, []


# --------------------------------------------------------------------- html -> text

_OPEN = re.compile(r"<(script|style|head|title)\b|<!--", re.I)
_CLOSE = {tag: re.compile(rf"</{tag}\s*>", re.I) for tag in ("script", "style", "head", "title")}
_BREAK = re.compile(r"<\s*/?\s*(?:br|p|div|tr|li|h[1-6]|table|hr|blockquote|ul|ol)\b[^>]*>", re.I)
_TAG = re.compile(r"<[^>]*>")
_BLANKS = re.compile(r"\n{3,}")


def _drop_blocks(html: str) -> str:
    """Script, style, head and title elements and comments removed, in linear time."""
    pieces: list[str] = []
    pos, unclosed = 0, set()
    while match := _OPEN.search(html, pos):
        pieces.append(html[pos : match.start()])
        pos = _block_end(html, match, unclosed)
    pieces.append(html[pos:])
    return "".join(pieces)


def _block_end(html: str, match: re.Match[str], unclosed: set[str]) -> int:
    """Where the element (or comment) opened at ``match`` ends; one that is never closed
    loses only its opening tag (and later ones of its kind are not searched again)."""
    tag = (match.group(1) or "").lower()
    if tag not in unclosed:
        if tag:
            close = _CLOSE[tag].search(html, match.end())
            stop = close.end() if close else -1
        else:
            found = html.find("-->", match.end())
            stop = found + 3 if found >= 0 else -1
        if stop >= 0:
            return stop
        unclosed.add(tag)
    end = html.find(">", match.end())
    return end + 1 if end >= 0 else len(html)


# html.unescape's own pattern; each distinct reference is resolved once (a body of
# 300,000 "&#1" costs a dictionary lookup each, not html's checks each time).
_CHARREF = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)")


@functools.lru_cache(maxsize=4096)
def _reference(text: str) -> str:
    return unescape(text)


def _unescape(text: str) -> str:
    """html.unescape, with the replacement of each distinct reference cached."""
    return _CHARREF.sub(lambda found: _reference(found.group()), text) if "&" in text else text


def html_to_text(html: str, max_chars: int | None = None) -> str:
    """Readable text of an html body: tags dropped, entities decoded, blank lines
    collapsed. Linear in the html: a ``<`` without a ``>`` after it is text, and no regex
    is tried again from every ``<`` up to the end (``<a `` a million times takes a
    fraction of a second). With ``max_chars`` only that much of the html is converted."""
    if max_chars is not None and len(html) > max_chars:
        html = html[:max_chars]
    html = _drop_blocks(html)
    closed = html.rfind(">") + 1  # no tag can end after this: the rest is text
    text = _TAG.sub("", _BREAK.sub("\n", html[:closed])) + html[closed:]
    text = _unescape(text).replace("\xa0", " ")
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return _clean(_BLANKS.sub("\n\n", "\n".join(lines)).strip())
