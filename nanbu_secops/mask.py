"""Mask personal data (article 15) without changing a byte count.

Incident bundles carry logs and reports that name people: resident ID numbers (居民身份证号码)
and mainland mobile numbers. Before they leave the terminal those are masked, keeping the
region and the tail an investigator needs to tell records apart: ``510321********123X``,
``138****5678``. A mask has the length of what it replaces, so a file can be streamed into a
tar whose member sizes were written in advance, and offsets quoted in a report still hold.

Matching works on bytes: in UTF-8 and GBK every ASCII digit, ``X`` and ``+`` is a byte of its own
and no multibyte character contains an ASCII digit (GB18030's rare four-byte characters do: a
number right after one is taken as embedded in a longer run and left alone). Only ASCII digits
count; full-width ones (``１３８``) are not matched.

A number is matched only when it stands alone: no digit right before it or after it (for a
resident ID, after its check character, which may be ``X``: an 18-digit run followed by ``X`` is
19 characters long, no ID). A resident ID must also carry a valid GB 11643 check character and
a real birth date, so an order number of 18 digits is left as it is.

People also write numbers in groups: ``138 1234 5678``, ``138-1234-5678``, ``+86 138-1234-5678``,
``510321 19900101 123X``. Groups are matched when one separator (a space or a hyphen) is used
throughout, in the usual 3-4-4 and 6-8-4 places; the separators are kept and the digits between
them masked: ``138 **** 5678``.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
from typing import AnyStr

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"  # indexed by the weighted sum mod 11
ID_SHAPE = re.compile(r"[0-9]{17}[0-9Xx]")

# "+" is not a digit, so "+86" needs no alternative of its own: "86" already stands alone there.
_PATTERN = (r"(?<![0-9])(?:(?P<id>[0-9]{17}[0-9Xx]|[0-9]{6}(?P<s1>[ -])[0-9]{8}(?P=s1)[0-9]{3}[0-9Xx])(?![0-9Xx])"
            r"|(?:(?:0086|86)[ -]?)?(?P<mobile>1[3-9][0-9]{9}|1[3-9][0-9](?P<s2>[ -])[0-9]{4}(?P=s2)[0-9]{4})"
            r"(?![0-9]))")
SEPARATORS = " -"
_TEXT = re.compile(_PATTERN)
_BYTES = re.compile(_PATTERN.encode("ascii"))

# A decision at offset q needs the bytes up to q + 21 (a grouped ID and the byte after it), so
# the last HOLD bytes of a run of digits and separators stay held until more input (or the end).
HOLD = 40
_RUN = b"0123456789Xx" + SEPARATORS.encode("ascii")  # every byte a match can hold
TEXTUAL_HEAD = 8192


def valid_resident_id(text: str) -> bool:
    """An 18-character PRC resident ID with a valid check character and a plausible birth date."""
    if not ID_SHAPE.fullmatch(text):
        return False
    total = sum(int(digit) * weight for digit, weight in zip(text, ID_WEIGHTS, strict=False))
    if ID_CHECK[total % 11] != text[17].upper():
        return False
    year, month, day = int(text[6:10]), int(text[10:12]), int(text[12:14])
    if not 1900 <= year <= 2100:
        return False
    try:
        dt.date(year, month, day)
    except ValueError:
        return False
    return True


def _star(number: str, keep_head: int, keep_tail: int) -> str:
    """``number`` with its digits masked but the first and last few; separators stay."""
    positions = [i for i, c in enumerate(number) if c not in SEPARATORS]
    hidden = set(positions[keep_head:len(positions) - keep_tail])
    return "".join("*" if i in hidden else c for i, c in enumerate(number))


def _replacement(match: re.Match[AnyStr]) -> AnyStr | None:
    """The masked form of a match, the same length; None when it is not personal data after all."""
    whole = match[0]
    text = whole if isinstance(whole, str) else whole.decode("ascii")
    if match["id"] is not None:
        if not valid_resident_id("".join(c for c in text if c not in SEPARATORS)):
            return None
        masked = _star(text, 6, 4)
    else:
        prefix = len(whole) - len(match["mobile"])
        masked = text[:prefix] + _star(text[prefix:], 3, 4)
    return masked if isinstance(whole, str) else masked.encode("ascii")


def mask_text(text: str) -> tuple[str, int]:
    """``text`` with resident IDs and mobile numbers masked, and how many were."""
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        masked = _replacement(match)
        count += masked is not None
        return match[0] if masked is None else masked

    return _TEXT.sub(replace, text), count


class Masker:
    """Mask a byte stream chunk by chunk; the output is the same however the input is split.

    Only a trailing run of digits, ``X``/``x`` and separators (at most :data:`HOLD` bytes of it) is held back
    between chunks, with the last byte released kept as context: whether a digit precedes a
    number decides whether it is one.
    """

    def __init__(self) -> None:
        self.count = 0
        self._context = b""  # the last byte released, for the look-behind
        self._pending = b""

    def feed(self, chunk: bytes) -> bytes:
        """Masked bytes that are now certain; the rest waits for the next chunk or :meth:`finish`."""
        buf = self._context + self._pending + chunk
        start = len(self._context)
        run = len(buf.rstrip(_RUN))  # where the trailing run starts
        return self._release(buf, start, max(start, run, len(buf) - HOLD))

    def finish(self) -> bytes:
        """Everything still held back: the end of the stream ends any number."""
        buf = self._context + self._pending
        out = self._release(buf, len(self._context), len(buf))
        self._context = b""
        return out

    def _release(self, buf: bytes, start: int, limit: int) -> bytes:
        """Mask ``buf[start:]`` up to ``limit`` (further when a match begun before it ends later)."""
        pieces: list[bytes] = []
        done = start
        for match in _BYTES.finditer(buf, start):
            if match.start() >= limit:
                break
            masked = _replacement(match)
            self.count += masked is not None
            pieces += [buf[done:match.start()], match[0] if masked is None else masked]
            done = match.end()
        end = max(limit, done)
        pieces.append(buf[done:end])
        if end > start:
            self._context = buf[end - 1:end]
        self._pending = buf[end:]
        return b"".join(pieces)


def mask_bytes(data: bytes) -> tuple[bytes, int]:
    """``data`` with resident IDs and mobile numbers masked, and how many were."""
    masker = Masker()
    out = masker.feed(data) + masker.finish()
    return out, masker.count


def looks_textual(head: bytes) -> bool:
    """Whether a file whose first bytes are ``head`` is text worth masking (UTF-8 or GB18030).

    The head may end inside a multibyte character; that is not held against it.
    """
    head = head[:TEXTUAL_HEAD]
    if b"\0" in head:
        return False
    for encoding in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(encoding)().decode(head, final=False)
        except UnicodeDecodeError:
            continue
        return True
    return False
