"""Read the platform's account list and login log and HR's roster (article 26 account audit).

Each file is ``.csv`` (UTF-8 with or without BOM, GB18030, or UTF-16 with BOM; comma or, when the
header has no comma, tab separated) or ``.xlsx`` (first sheet, or a named one), with Chinese or
English headers, or a unit's own headers named in a column-mapping file (:func:`load_mapping`).

The readers stream: a login log may hold millions of rows, so rows are never collected and the
CSV path does the least per row that keeps it exact (``csv.reader``, fixed column indices,
``datetime.fromisoformat`` before any regex). Opening is eager: ``read_*`` checks the file and its
header before returning the iterator, so a wrong file fails before any work is done.

A row that cannot be used becomes a :class:`RowProblem` (file, 1-based spreadsheet row, message)
in the caller's list and is skipped; with ``strict=True`` the first one raises
:class:`InputError` instead. Blank rows are skipped silently.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import datetime as dt
import io
import re
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml

from nanbu_secops.accounts.model import ACTIVE, DISABLED, LoginEvent, PlatformAccount, RowProblem, StaffRecord
from nanbu_secops.errors import InputError
from nanbu_secops.progress import Meter
from nanbu_secops.timeutil import COUNTY_TZ
from nanbu_secops.yamlfile import read_text, yaml_error

T = TypeVar("T")
Cell = Any                      # str from CSV; str, int, float, datetime, ... or None from xlsx

# Per kind: (field, required, built-in headers). The first headers are the documented ones;
# the rest are common spellings in county exports. Headers compare after _norm().
FIELDS: dict[str, tuple[tuple[str, bool, tuple[str, ...]], ...]] = {
    "accounts": (
        ("account", True, ("账号", "account", "帐号", "账号名", "用户名", "登录名", "username")),
        ("holder", True, ("姓名", "holder", "使用人", "持有人", "用户姓名", "name")),
        ("unit", True, ("单位", "unit", "所属单位", "单位名称")),
        ("role", False, ("角色", "role")),
        ("status", True, ("状态", "status", "账号状态", "帐号状态")),
        ("created", False, ("创建时间", "created", "创建日期", "createdat")),
        ("last_login", False, ("最后登录时间", "last_login", "最近登录时间", "上次登录时间", "lastlogintime")),
    ),
    "logins": (
        ("account", True, ("账号", "account", "帐号", "账号名", "用户名", "登录名", "username")),
        ("login_time", True, ("登录时间", "login_time", "login")),
        ("logout_time", False, ("退出时间", "logout_time", "登出时间", "logout")),
        ("source_ip", True, ("来源IP", "source_ip", "登录IP", "IP地址", "IP", "sourceaddress")),
        ("terminal", False, ("终端", "terminal", "终端名称", "设备")),
    ),
    "roster": (
        ("name", True, ("姓名", "name")),
        ("staff_id", False, ("工号", "staff_id", "人员编号", "职工编号", "employeeid")),
        ("unit", True, ("单位", "unit", "所属单位", "单位名称")),
        ("employment", True, ("在职状态", "employment", "人员状态")),
        ("establishment", True, ("编制", "establishment", "编制类型", "编制情况")),
    ),
}
KINDS = tuple(FIELDS)

# Values, compared casefolded. Deliberately closed lists: anything else is a row problem, never a guess.
STATUS = {"正常": ACTIVE, "启用": ACTIVE, "有效": ACTIVE, "active": ACTIVE, "enabled": ACTIVE, "normal": ACTIVE,
          "1": ACTIVE, "停用": DISABLED, "禁用": DISABLED, "无效": DISABLED, "注销": DISABLED,
          "disabled": DISABLED, "inactive": DISABLED, "0": DISABLED}
EMPLOYMENT = {"在职": "active", "active": "active", "离职": "left", "left": "left", "退休": "retired",
              "retired": "retired", "借调": "seconded", "seconded": "seconded"}
ESTABLISHMENT = {"在编": "established", "established": "established", "聘用": "contract",
                 "contract": "contract", "临时": "temporary", "temporary": "temporary"}

TEXT_SUFFIXES = (".csv", ".tsv", ".txt")
XLSX_SUFFIXES = (".xlsx", ".xlsm")
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"     # compound file: old .xls, or an encrypted workbook
HEADER_SCAN = 10          # rows searched for the header, so title rows above it ("南部县…账号清单") are fine
_CHUNK = 1 << 20
_WINDOWS_EPOCH = dt.datetime(1899, 12, 30)    # Excel's 1900 date system, as openpyxl counts it


def _norm(header: Cell) -> str:
    """Header key: no whitespace (incl. U+3000), BOM, '_' or '-'; casefolded ('Last Login' = 'last_login')."""
    text = "".join(_text(header).replace("\ufeff", "").split())
    return text.replace("_", "").replace("-", "").casefold()


# --- times -------------------------------------------------------------------------------------

_fromiso = dt.datetime.fromisoformat
_ZH_TIME = str.maketrans({"年": "-", "月": "-", "日": " ", "时": ":", "点": ":", "分": ":", "秒": "", "：": ":"})
_TIME = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})"
                   r"(?:(?:T|\s+)(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,6})\d*)?)?:?)?"
                   r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?")


def parse_time(text: str) -> dt.datetime:
    """A naive Asia/Shanghai datetime from the formats county exports use; ValueError otherwise.

    ``2026-08-01 09:30[:00]``, ``2026-08-01`` (midnight), ``2026/8/1 9:30[:00]``, ``2026年8月1日 9:30``
    (also ``9时30分``), ISO 8601 with ``T``/offset/``Z``. A value with an offset is converted to
    Asia/Shanghai; one without is taken as Asia/Shanghai already.
    """
    try:
        moment = _fromiso(text)             # C fast path: nearly every platform timestamp
    except ValueError:
        moment = _parse_other(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(COUNTY_TZ).replace(tzinfo=None)
    return moment


def _parse_other(text: str) -> dt.datetime:
    found = _TIME.fullmatch(text.translate(_ZH_TIME).strip())
    if found is None:
        raise ValueError(f"not a date and time: {text!r}")
    y, mo, d, h, mi, s, frac, offset = found.groups()
    tz: dt.tzinfo | None = None
    if offset:
        minutes = 0 if offset == "Z" else int(offset[1:3]) * 60 + int(offset[-2:] if len(offset) > 3 else 0)
        tz = dt.timezone(dt.timedelta(minutes=-minutes if offset[0] == "-" else minutes))
    try:
        return dt.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0),
                           int((frac or "0").ljust(6, "0")), tzinfo=tz)
    except ValueError as exc:
        raise ValueError(f"not a date and time: {text!r} ({exc})") from None


def _excel_serial(value: float, epoch: dt.datetime) -> dt.datetime:
    """A date cell openpyxl left as a number (no date format): days since the workbook's epoch.

    Excel's 1900 system (or 1904, from the workbook), with its fictitious 1900-02-29; fractions
    are the time of day, rounded to the millisecond as Excel does.
    """
    from openpyxl.utils.datetime import from_excel

    if not 1 <= value < 2958466:                                 # 1900-01-01 .. 9999-12-31
        raise ValueError(f"not a date: number {value!r} is no Excel date serial")
    return cast(dt.datetime, from_excel(value, epoch=epoch))


def _when(value: Cell, epoch: dt.datetime) -> dt.datetime | None:
    """A cell as a naive Asia/Shanghai datetime; None when empty."""
    if value.__class__ is str:
        value = value.strip()
        return parse_time(value) if value else None
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(COUNTY_TZ).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _excel_serial(value, epoch)
    if isinstance(value, dt.time):
        raise ValueError(f"a time of day without a date: {value}")
    raise ValueError(f"not a date and time: {value!r}")


def _text(value: Cell) -> str:
    """A cell as trimmed text; whole numbers without '.0' (an xlsx staff number 1001 is '1001')."""
    if value.__class__ is str:
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.isoformat(" ")
    return str(value).strip()


# --- column mapping ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ColumnMapping:
    """A unit's own headers: kind -> field -> the header(s) its file uses, plus an optional sheet."""

    headers: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    sheets: dict[str, str] = field(default_factory=dict)
    source: str = ""


def load_mapping(path: str | Path) -> ColumnMapping:
    """Read ``{accounts: {account: 登录名, ...}, logins: {...}, roster: {...}}``; errors carry file:line.

    A field maps to one header or a list of alternatives; ``sheet:`` names the xlsx sheet for that
    kind. Unknown kinds and fields are errors, not ignored: a typo would otherwise silently fall
    back to the built-in headers.
    """
    path = Path(path)
    text = read_text(path)
    try:
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise yaml_error(exc, path) from None
    if node is None:
        raise InputError("the mapping file is empty", path)

    def line(n: yaml.Node) -> int:
        return n.start_mark.line + 1

    def pairs(n: yaml.Node, what: str) -> list[tuple[yaml.Node, yaml.Node]]:
        if not isinstance(n, yaml.MappingNode):
            raise InputError(f"{what} must be a mapping", path, line(n))
        seen: set[str] = set()
        for key, _ in n.value:
            if not isinstance(key, yaml.ScalarNode):
                raise InputError("keys must be plain names", path, line(key))
            if key.value in seen:
                raise InputError(f"duplicate key {key.value!r}", path, line(key))
            seen.add(key.value)
        return cast(list[tuple[yaml.Node, yaml.Node]], n.value)

    headers: dict[str, dict[str, tuple[str, ...]]] = {}
    sheets: dict[str, str] = {}
    for kind_node, body in pairs(node, "the mapping file (accounts/logins/roster: {field: header})"):
        kind = str(kind_node.value)
        if kind not in FIELDS:
            raise InputError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})", path, line(kind_node))
        if isinstance(body, yaml.ScalarNode) and body.tag.endswith(":null"):
            continue
        known = [f for f, _, _ in FIELDS[kind]]
        claimed: dict[str, str] = {}
        fields: dict[str, tuple[str, ...]] = {}
        for key, value in pairs(body, kind):
            name = str(key.value)
            if name != "sheet" and name not in known:
                raise InputError(f"{kind}: unknown field {name!r} (known: {', '.join(known)}, sheet)",
                                 path, line(key))
            items = value.value if isinstance(value, yaml.SequenceNode) else [value]
            texts = []
            for item in items:
                if not (isinstance(item, yaml.ScalarNode) and item.tag.endswith(":str") and item.value.strip()):
                    raise InputError(f"{kind}.{name}: expected the header text (quote it if it looks like a "
                                     f"number or yes/no), got {_shown(item)}", path, line(item))
                texts.append(item.value.strip())
            if not texts:
                raise InputError(f"{kind}.{name}: empty list", path, line(value))
            if name == "sheet":
                if len(texts) != 1:
                    raise InputError(f"{kind}.sheet: give one sheet name", path, line(value))
                sheets[kind] = texts[0]
                continue
            for header in texts:
                other = claimed.setdefault(_norm(header), name)
                if other != name:
                    raise InputError(f"{kind}: header {header!r} is mapped to both {other} and {name}",
                                     path, line(value))
            fields[name] = tuple(texts)
        headers[kind] = fields
    return ColumnMapping(headers, sheets, str(path))


def _shown(node: yaml.Node) -> str:
    return repr(node.value) if isinstance(node, yaml.ScalarNode) else "a list" if isinstance(
        node, yaml.SequenceNode) else "a mapping"


# --- opening files -----------------------------------------------------------------------------

class _Table:
    """An open source: its rows from spreadsheet row 1, and how to release it."""

    def __init__(self, rows: Iterator[Sequence[Cell]], close: Callable[[], None], *, is_text: bool,
                 epoch: dt.datetime, encoding: str = "") -> None:
        self.rows, self.close, self.is_text, self.epoch, self.encoding = rows, close, is_text, epoch, encoding


class _Counted(io.RawIOBase):
    """The file as read, telling ``progress`` the bytes of each read (a block of 8 KiB or more:
    the rows' hot loops stay as they are)."""

    def __init__(self, path: Path, progress: Meter) -> None:
        self.raw, self.progress = open(path, "rb", buffering=0), progress  # noqa: SIM115 (closed by close)

    def readinto(self, buffer: Any) -> int | None:
        n = self.raw.readinto(buffer)
        if n:
            self.progress(n)
        return n

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()

    def close(self) -> None:
        self.raw.close()
        super().close()


def _binary(path: Path, progress: Meter | None) -> Any:
    """``path`` opened to read bytes, counted when there is a progress bar."""
    return path.open("rb") if progress is None else io.BufferedReader(_Counted(path, progress), _CHUNK)


def _open(path: Path, source: str, sheet: str | None, progress: Meter | None = None) -> _Table:
    suffix = path.suffix.lower()
    if not path.exists():
        raise InputError("no such file", source)
    if path.is_dir():
        raise InputError("is a folder, not a file", source)
    if not path.is_file():
        raise InputError("not a regular file", source)
    if suffix == ".xls":
        raise InputError("an old Excel 97-2003 workbook (.xls): save it as .xlsx or CSV (UTF-8)", source)
    if suffix not in TEXT_SUFFIXES + XLSX_SUFFIXES:
        raise InputError(f"unknown file type {suffix or '(no extension)'!r}: expected .csv or .xlsx", source)
    try:
        with path.open("rb") as f:
            head = f.read(_CHUNK)
            if not head:
                raise InputError("the file is empty", source)
            if head.startswith(OLE_MAGIC):
                raise InputError(_ole_message(f, head), source)
            if suffix in XLSX_SUFFIXES:
                if not head.startswith(b"PK"):
                    raise InputError("not an .xlsx workbook (it is not a zip file); if it is CSV text, name it .csv",
                                     source)
                return _open_xlsx(path, source, sheet, progress)
            if head.startswith(b"PK\x03\x04"):
                raise InputError("an Excel workbook, not CSV text: name it .xlsx or save it as CSV", source)
            encoding = _detect_encoding(f, head, source)
        text = io.TextIOWrapper(_binary(path, progress), encoding=encoding, newline="")
    except OSError as exc:
        raise InputError(exc.strerror or str(exc), source) from None
    try:
        first = text.readline()
        text.seek(0)
    except UnicodeDecodeError:
        text.close()
        raise InputError(f"not valid {encoding} text", source, 1) from None
    delimiter = "\t" if "," not in first and "\t" in first else ","
    return _Table(csv.reader(text, delimiter=delimiter), text.close, is_text=True, epoch=_WINDOWS_EPOCH,
                  encoding=encoding)


def _ole_message(f: Any, head: bytes) -> str:
    """Tell a password-protected workbook (EncryptedPackage stream) from an old .xls."""
    f.seek(0, 2)
    size = f.tell()
    f.seek(max(0, size - _CHUNK))
    tail = f.read()
    if "EncryptedPackage".encode("utf-16-le") in head + tail:
        return "encrypted (password-protected) workbook: save it without a password"
    return "an old Excel 97-2003 workbook or a password-protected one: save it as .xlsx without a password"


def _detect_encoding(f: Any, head: bytes, source: str) -> str:
    """BOM first; else strict UTF-8 on the first non-ASCII chunk; else GB18030; else an error."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    chunk, offset = head, 0
    while chunk.isascii():                  # all-ASCII so far decodes the same either way: look further
        offset += len(chunk)
        chunk = f.read(_CHUNK)
        if not chunk:
            return "utf-8"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(chunk, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        codecs.getincrementaldecoder("gb18030")().decode(chunk, final=False)
        return "gb18030"
    except UnicodeDecodeError as exc:
        raise InputError(f"neither UTF-8 nor GB18030 text (bad byte at offset {offset + exc.start}): "
                         "save it as CSV UTF-8", source) from None


def _bad_text_line(path: Path, encoding: str) -> int | None:
    """The first physical line that does not decode (a file that changes encoding part-way)."""
    if encoding == "utf-16":
        return None
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError:
                return number
    return None


def _open_xlsx(path: Path, source: str, sheet: str | None, progress: Meter | None) -> _Table:
    import openpyxl  # only when a workbook is read: it costs ~0.2 s to import

    handle = path if progress is None else _binary(path, progress)

    def close() -> None:
        """The workbook, and the file given to it (openpyxl closes only what it opened itself)."""
        if book is not None:
            book.close()
        if handle is not path:
            handle.close()

    book: Any = None
    try:
        try:
            with warnings.catch_warnings():     # "no default style" and the like: noise for an operator
                warnings.simplefilter("ignore")
                book = openpyxl.load_workbook(handle, read_only=True, data_only=True)
        except zipfile.BadZipFile as exc:
            raise InputError(f"corrupt workbook (bad zip: {exc})", source) from None
        except Exception as exc:                # openpyxl raises KeyError, ValueError, XML errors... for bad files
            raise InputError(f"corrupt or unreadable workbook ({type(exc).__name__}: {exc})", source) from None
        if sheet is not None and sheet not in book.sheetnames:
            raise InputError(f"no sheet named {sheet!r} (sheets: {', '.join(book.sheetnames)})", source)
        if not book.worksheets:
            raise InputError("the workbook has no worksheet", source)
        ws = book[sheet] if sheet is not None else book.worksheets[0]
        if not hasattr(ws, "iter_rows"):
            raise InputError(f"sheet {ws.title!r} is a chart, not a table", source)
        ws.reset_dimensions()               # trust no stored dimension: a wrong one silently cuts rows off
    except BaseException:
        close()
        raise
    return _Table(_guarded(ws.iter_rows(values_only=True), source), close, is_text=False, epoch=book.epoch)


def _guarded(rows: Iterator[Sequence[Cell]], source: str) -> Iterator[Sequence[Cell]]:
    """openpyxl's rows, its errors on damaged sheet XML turned into InputError."""
    n = 0
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except Exception as exc:
            raise InputError(f"corrupt workbook after row {n} ({type(exc).__name__}: {exc})", source, n + 1) from None
        n += 1
        yield row


# --- headers -----------------------------------------------------------------------------------

@dataclass
class _Columns:
    index: dict[str, int]       # field -> column, for the fields present
    label: dict[str, str]       # field -> the header as written in the file (for messages)
    width: int                  # fields in the header row
    line: int                   # the header's row number


def _resolve(kind: str, header: Sequence[Cell], mapping: ColumnMapping | None) -> tuple[_Columns, list[str]]:
    """Columns for ``kind`` in one header row; the second item lists what is missing."""
    keys = [_norm(h) for h in header]
    mapped = mapping.headers.get(kind, {}) if mapping else {}
    taken = {_norm(h) for headers in mapped.values() for h in headers}
    index: dict[str, int] = {}
    missing: list[str] = []
    for name, required, builtin in FIELDS[kind]:
        wanted = [_norm(h) for h in mapped[name]] if name in mapped else [
            k for k in map(_norm, builtin) if k not in taken]
        at = next((keys.index(k) for k in wanted if k in keys), None)
        if at is not None:
            index[name] = at
        elif name in mapped:
            origin = f" in {mapping.source}" if mapping and mapping.source else ""
            missing.append(f"{name} (mapped to {'/'.join(mapped[name])}{origin})")
        elif required:
            missing.append(f"{name} ({'/'.join(builtin[:2])})")
    label = {name: _text(header[i]) for name, i in index.items()}
    return _Columns(index, label, len(header), 0), missing


def _blank(row: Sequence[Cell]) -> bool:
    return all(v is None or (v.__class__ is str and not v.strip()) for v in row)


def _header(table: _Table, kind: str, mapping: ColumnMapping | None, source: str) -> _Columns:
    """Find the header: the first non-blank row, or a later one among the first few if it has them all."""
    first: tuple[int, Sequence[Cell], list[str]] | None = None
    n = seen = 0
    for row in _checked(table, source, table.rows, lambda: n):  # noqa: B023 (the line number read when a row fails)
        n += 1
        if _blank(row):
            continue
        cols, missing = _resolve(kind, row, mapping)
        if not missing:
            cols.line = n
            return cols
        first = first or (n, row, missing)
        seen += 1
        if seen >= HEADER_SCAN:
            break
    if first is None:
        raise InputError("no header row: the file holds no data" if table.is_text else "the sheet is empty", source)
    line, row, missing = first
    found = ", ".join(repr(_text(h)) for h in row if _text(h)) or "none"
    raise InputError(f"{kind} file without the column(s) {'; '.join(missing)}; headers found: {found}",
                     source, line)


def _checked(table: _Table, source: str, rows: Iterable[Sequence[Cell]],
             where: Callable[[], int]) -> Iterator[Sequence[Cell]]:
    """Rows of a text table with decode and CSV errors as InputError (used outside the hot loop)."""
    try:
        for row in rows:  # noqa: UP028 (not ``yield from``: closing this wrapper must not close ``rows``)
            yield row
    except UnicodeDecodeError:
        raise _decode_error(table, source, where()) from None
    except csv.Error as exc:
        raise InputError(f"malformed CSV (an unclosed quote?): {exc}", source, where() + 1) from None


def _decode_error(table: _Table, source: str, after: int) -> InputError:
    line = _bad_text_line(Path(source), table.encoding)
    return InputError(f"not valid {table.encoding} text (the file mixes encodings?)", source, line or after + 1)


# --- rows --------------------------------------------------------------------------------------

class _Bad(Exception):
    """A row problem's message."""


def _fields(row: Sequence[Cell], cols: _Columns, table: _Table) -> Sequence[Cell] | None:
    """The row ready to index by ``cols``, or None for a blank row; _Bad on a wrong field count."""
    if _blank(row):
        return None
    have, width = len(row), cols.width
    if table.is_text:
        if have < width or (have > width and not _blank(row[width:])):
            raise _Bad(f"{have} fields, the header has {width}")
    elif have < width:
        row = (*row, *(None,) * (width - have))
    return row


def _get(row: Sequence[Cell], cols: _Columns, name: str) -> Cell:
    at = cols.index.get(name)
    return None if at is None else row[at]


def _required(row: Sequence[Cell], cols: _Columns, name: str) -> str:
    value = _text(_get(row, cols, name))
    if not value:
        raise _Bad(f"empty {cols.label[name]}")
    return value


def _time(row: Sequence[Cell], cols: _Columns, name: str, epoch: dt.datetime) -> dt.datetime | None:
    try:
        return _when(_get(row, cols, name), epoch)
    except ValueError as exc:
        raise _Bad(f"{cols.label[name]}: {exc}") from None


def _choice(row: Sequence[Cell], cols: _Columns, name: str, table: dict[str, str]) -> str:
    raw = _required(row, cols, name)
    value = table.get(raw.casefold())
    if value is None:
        expected = "/".join(k for k in table if not k.isascii()) + " or " + "/".join(k for k in table if k.isascii())
        raise _Bad(f"{cols.label[name]}: unknown value {raw!r} (expected {expected})")
    return value


def _account(row: Sequence[Cell], n: int, cols: _Columns, table: _Table) -> PlatformAccount | None:
    got = _fields(row, cols, table)
    if got is None:
        return None
    account = _required(got, cols, "account")
    status = _choice(got, cols, "status", STATUS)
    return PlatformAccount(account, _text(_get(got, cols, "holder")), _text(_get(got, cols, "unit")),
                           _text(_get(got, cols, "role")), status, _time(got, cols, "created", table.epoch),
                           _time(got, cols, "last_login", table.epoch), n)


def _staff(row: Sequence[Cell], n: int, cols: _Columns, table: _Table) -> StaffRecord | None:
    got = _fields(row, cols, table)
    if got is None:
        return None
    name = _required(got, cols, "name")
    return StaffRecord(name, _text(_get(got, cols, "staff_id")), _text(_get(got, cols, "unit")),
                       _choice(got, cols, "employment", EMPLOYMENT),
                       _choice(got, cols, "establishment", ESTABLISHMENT), n)


def _login(row: Sequence[Cell], n: int, cols: _Columns, table: _Table) -> LoginEvent | None:
    got = _fields(row, cols, table)
    if got is None:
        return None
    account = _required(got, cols, "account")
    login = _time(got, cols, "login_time", table.epoch)
    if login is None:
        raise _Bad(f"empty {cols.label['login_time']}")
    logout = _time(got, cols, "logout_time", table.epoch)
    if logout is not None and logout < login:
        raise _Bad(f"{cols.label['logout_time']} {logout} is before {cols.label['login_time']} {login}")
    ip = _text(_get(got, cols, "source_ip"))
    return LoginEvent(account, login, logout, ip, _text(_get(got, cols, "terminal")) or ip, n)


Build = Callable[[Sequence[Cell], int, _Columns, _Table], Any]


def _rows(table: _Table, cols: _Columns, build: Build, source: str, problems: list[RowProblem] | None,
          strict: bool) -> Iterator[Any]:
    """Every usable row through ``build``; the others become problems (or, strict, the error).

    Like every stream here, it first yields None (see :func:`_stream`) and closes the table when done.
    """
    try:
        yield None
        n = cols.line
        for row in _checked(table, source, table.rows, lambda: n):  # noqa: B023 (the line number read when a row fails)
            n += 1
            try:
                item = build(row, n, cols, table)
            except _Bad as bad:
                _problem(source, n, str(bad), problems, strict)
                continue
            if item is not None:
                yield item
    finally:
        table.close()


def _problem(source: str, row: int, message: str, problems: list[RowProblem] | None, strict: bool) -> None:
    if strict:
        raise InputError(message, source, row)
    if problems is not None:
        problems.append(RowProblem(source, row, message))


def _csv_logins(table: _Table, cols: _Columns, source: str, problems: list[RowProblem] | None,
                strict: bool) -> Iterator[LoginEvent]:
    """The login log's hot loop (millions of rows): fromisoformat on the raw fields, no helper function per row.

    Anything unusual (an offset, another date format, a wrong field count, an empty account, a
    logout before the login) goes through the general ``_login`` for that row alone.
    """
    at = cols.index
    ia, il, ip = at["account"], at["login_time"], at["source_ip"]
    io, it = at.get("logout_time", -1), at.get("terminal", -1)
    width, n = cols.width, cols.line
    fromiso, event = _fromiso, _new_login_event
    try:
        yield None
        for row in table.rows:
            n += 1
            try:
                if len(row) != width:
                    raise ValueError
                login = fromiso(row[il])
                out = row[io] if io >= 0 else ""
                logout = fromiso(out) if out else None
                account = row[ia].strip()
                if not account or login.tzinfo is not None or (
                        logout is not None and (logout.tzinfo is not None or logout < login)):
                    raise ValueError
            except ValueError:
                try:
                    slow = _login(row, n, cols, table)
                except _Bad as bad:
                    _problem(source, n, str(bad), problems, strict)
                    continue
                if slow is not None:
                    yield slow
                continue
            address = row[ip].strip()
            yield event(account, login, logout, address, (row[it].strip() if it >= 0 else "") or address, n)
    except UnicodeDecodeError:
        raise _decode_error(table, source, n) from None
    except csv.Error as exc:                # raised while reading the record after row n
        raise InputError(f"malformed CSV (an unclosed quote?): {exc}", source, n + 1) from None
    finally:
        table.close()


def _fast_constructor(cls: type[T]) -> Callable[..., T]:
    """``cls(*values)`` for a frozen slots dataclass without its ``__init__``: a third cheaper.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``; this sets the
    slots directly, in field order. Used only for the millions of login events, and only when
    ``cls`` has no ``__post_init__`` (checked), so the object is identical to ``cls(*values)``.
    """
    fields = dataclasses.fields(cls)                    # type: ignore[arg-type]
    if hasattr(cls, "__post_init__") or not hasattr(cls, "__slots__") or not all(f.init for f in fields):
        return cls
    names = [f.name for f in fields]
    args = ", ".join(names)
    body = "; ".join(f"_s{i}(o, {name})" for i, name in enumerate(names))
    namespace: dict[str, Any] = {f"_s{i}": getattr(cls, name).__set__ for i, name in enumerate(names)}
    namespace.update(_new=object.__new__, _cls=cls)
    exec(f"def make({args}, _new=_new, _cls=_cls):\n    o = _new(_cls); {body}; return o", namespace)
    return cast(Callable[..., T], namespace["make"])


_new_login_event = _fast_constructor(LoginEvent)


# --- the readers -------------------------------------------------------------------------------

def _stream(kind: str, path: str | Path, mapping: ColumnMapping | None, problems: list[RowProblem] | None,
            strict: bool, sheet: str | None, progress: Meter | None) -> Iterator[Any]:
    """Open and check the header now; return the record stream, which then owns the open file.

    The stream is advanced past its first ``yield None`` here, so its ``finally`` (closing the
    file) is armed even if the caller never iterates; the caller's loop then talks to the hot
    generator directly, with no wrapper generator per row.
    """
    source = str(path)
    table = _open(Path(path), source, sheet if sheet is not None else (mapping.sheets.get(kind) if mapping else None),
                  progress)
    try:
        cols = _header(table, kind, mapping, source)
        if kind == "logins" and table.is_text:
            stream = _csv_logins(table, cols, source, problems, strict)
        else:
            stream = _rows(table, cols, _BUILD[kind], source, problems, strict)
        next(stream)
    except BaseException:
        table.close()
        raise
    return stream


_BUILD: dict[str, Build] = {"accounts": _account, "logins": _login, "roster": _staff}


def read_accounts(path: str | Path, mapping: ColumnMapping | None = None, problems: list[RowProblem] | None = None,
                  strict: bool = False, *, sheet: str | None = None,
                  progress: Meter | None = None) -> Iterator[PlatformAccount]:
    """The platform's account list. Header problems raise now; row problems go to ``problems``.

    Required columns: account, holder, unit, status; optional: role, created, last_login. An
    empty holder or unit is kept as "" (the account exists; the audit should see it).
    """
    return cast(Iterator[PlatformAccount], _stream("accounts", path, mapping, problems, strict, sheet, progress))


def read_logins(path: str | Path, mapping: ColumnMapping | None = None, problems: list[RowProblem] | None = None,
                strict: bool = False, *, sheet: str | None = None,
                progress: Meter | None = None) -> Iterator[LoginEvent]:
    """The platform's login log, streamed. Required: account, login_time, source_ip; optional:
    logout_time (empty = still logged in / not recorded), terminal (empty = the source IP)."""
    return cast(Iterator[LoginEvent], _stream("logins", path, mapping, problems, strict, sheet, progress))


def read_roster(path: str | Path, mapping: ColumnMapping | None = None, problems: list[RowProblem] | None = None,
                strict: bool = False, *, sheet: str | None = None,
                progress: Meter | None = None) -> Iterator[StaffRecord]:
    """HR's staff roster. Required: name, unit, employment, establishment; optional: staff_id."""
    return cast(Iterator[StaffRecord], _stream("roster", path, mapping, problems, strict, sheet, progress))


# The brief's names for the same eager openers.
open_accounts, open_logins, open_roster = read_accounts, read_logins, read_roster
