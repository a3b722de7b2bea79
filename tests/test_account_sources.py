"""Readers for the platform's account list and login log and HR's roster (article 26 audit).

Every fixture is written into ``tmp_path`` (CSV text in three encodings, real .xlsx workbooks
made with openpyxl, damaged files); expectations are written out by hand.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from nanbu_secops.accounts import sources
from nanbu_secops.accounts.model import LoginEvent, PlatformAccount, RowProblem, StaffRecord
from nanbu_secops.accounts.sources import ColumnMapping, load_mapping, parse_time, read_accounts, read_logins, read_roster
from nanbu_secops.errors import InputError

D = dt.datetime
PROJECT = Path(__file__).resolve().parents[1]

ACCOUNTS_ZH = (
    "账号,姓名,单位,角色,状态,创建时间,最后登录时间\n"
    "zhangwei,张伟,县财政局,信息发布员,正常,2025-03-01 09:00:00,2026-08-01 09:30\n"
    "lisi,李四,县民政局,审核员,停用,2024/5/6 8:05:00,\n"
    "wangwu,王五,县公安局,,启用,2026年1月2日 10:00,2026-11-27\n"
)
ACCOUNTS = [
    PlatformAccount("zhangwei", "张伟", "县财政局", "信息发布员", "active", D(2025, 3, 1, 9), D(2026, 8, 1, 9, 30), 2),
    PlatformAccount("lisi", "李四", "县民政局", "审核员", "disabled", D(2024, 5, 6, 8, 5), None, 3),
    PlatformAccount("wangwu", "王五", "县公安局", "", "active", D(2026, 1, 2, 10), D(2026, 11, 27), 4),
]
ROSTER_ZH = (
    "姓名,工号,单位,在职状态,编制\n"
    "张伟,NB001,县财政局,在职,在编\n"
    "李四,,县民政局,离职,聘用\n"
    "王五,NB003,县公安局,退休,临时\n"
    "赵六,NB004,县公安局,借调,在编\n"
)
ROSTER = [
    StaffRecord("张伟", "NB001", "县财政局", "active", "established", 2),
    StaffRecord("李四", "", "县民政局", "left", "contract", 3),
    StaffRecord("王五", "NB003", "县公安局", "retired", "temporary", 4),
    StaffRecord("赵六", "NB004", "县公安局", "seconded", "established", 5),
]
LOGINS_ZH = (
    "账号,登录时间,退出时间,来源IP,终端\n"
    "zhangwei,2026-08-01 09:30:00,2026-08-01 10:00:00,10.1.1.5,财政局-PC01\n"
    "zhangwei,2026-08-02 09:30,,10.1.1.5,\n"
    "lisi,2026/8/3 8:05:09,2026/8/3 9:00,10.1.2.7,民政局-PC02\n"
)
LOGINS = [
    LoginEvent("zhangwei", D(2026, 8, 1, 9, 30), D(2026, 8, 1, 10), "10.1.1.5", "财政局-PC01", 2),
    LoginEvent("zhangwei", D(2026, 8, 2, 9, 30), None, "10.1.1.5", "10.1.1.5", 3),
    LoginEvent("lisi", D(2026, 8, 3, 8, 5, 9), D(2026, 8, 3, 9), "10.1.2.7", "民政局-PC02", 4),
]


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def workbook(tmp_path: Path, name: str, rows: list[list[Any]], title: str = "Sheet1",
             before: dict[str, list[list[Any]]] | None = None, epoch: dt.datetime | None = None) -> Path:
    """A real .xlsx; ``before`` adds sheets ahead of the one holding ``rows``."""
    book = openpyxl.Workbook()
    if epoch is not None:
        book.epoch = epoch
    first = book.active
    sheets = [*(before or {}).items(), (title, rows)]
    for i, (sheet_title, sheet_rows) in enumerate(sheets):
        ws = first if i == 0 else book.create_sheet()
        ws.title = sheet_title
        for row in sheet_rows:
            ws.append(row)
    path = tmp_path / name
    book.save(path)
    return path


def error(call: Any, *args: Any, **kwargs: Any) -> InputError:
    with pytest.raises(InputError) as info:
        result = call(*args, **kwargs)
        if hasattr(result, "__next__"):
            list(result)
    return info.value


# --- headers ------------------------------------------------------------------------------------

def test_accounts_chinese_headers(tmp_path: Path) -> None:
    assert list(read_accounts(write(tmp_path, "a.csv", ACCOUNTS_ZH))) == ACCOUNTS


def test_accounts_english_headers_trimmed_and_case_insensitive(tmp_path: Path) -> None:
    text = (" Account ,HOLDER,\u3000Unit\u3000,Role,Status,Created,Last Login,remark\n"
            "zhangwei,张伟,县财政局,信息发布员,active,2025-03-01 09:00:00,2026-08-01 09:30,x\n"
            "lisi,李四,县民政局,审核员,Disabled,2024/5/6 8:05:00,,\n"
            "wangwu,王五,县公安局,,ENABLED,2026年1月2日 10:00,2026-11-27,\n")
    assert list(read_accounts(write(tmp_path, "a.csv", text))) == ACCOUNTS


def test_optional_account_columns_absent(tmp_path: Path) -> None:
    text = "单位,姓名,账号,状态\n县财政局,张伟,zhangwei,1\n县民政局,李四,lisi,0\n"
    assert list(read_accounts(write(tmp_path, "a.csv", text))) == [
        PlatformAccount("zhangwei", "张伟", "县财政局", "", "active", None, None, 2),
        PlatformAccount("lisi", "李四", "县民政局", "", "disabled", None, None, 3),
    ]


def test_roster_and_logins_chinese_and_english(tmp_path: Path) -> None:
    assert list(read_roster(write(tmp_path, "r.csv", ROSTER_ZH))) == ROSTER
    assert list(read_logins(write(tmp_path, "l.csv", LOGINS_ZH))) == LOGINS
    roster_en = ("Name,Staff ID,Unit,Employment,Establishment\n"
                 "张伟,NB001,县财政局,active,established\n李四,,县民政局,LEFT,contract\n"
                 "王五,NB003,县公安局,retired,temporary\n赵六,NB004,县公安局,seconded,established\n")
    assert list(read_roster(write(tmp_path, "r2.csv", roster_en))) == ROSTER
    logins_en = LOGINS_ZH.replace("账号,登录时间,退出时间,来源IP,终端", "account,login_time,logout_time,Source_IP,terminal")
    assert list(read_logins(write(tmp_path, "l2.csv", logins_en))) == LOGINS


def test_logins_without_optional_columns(tmp_path: Path) -> None:
    text = "来源ip,账号,登录时间\n10.1.1.5,zhangwei,2026-08-01 09:30:00\n"
    assert list(read_logins(write(tmp_path, "l.csv", text))) == [
        LoginEvent("zhangwei", D(2026, 8, 1, 9, 30), None, "10.1.1.5", "10.1.1.5", 2)]


def test_missing_column_is_reported_at_call_time_with_headers_found(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "账号,姓名,角色\nzhangwei,张伟,x\n")
    with pytest.raises(InputError) as info:
        read_accounts(path)                      # no next(): the header is checked eagerly
    err = info.value
    assert (err.source, err.line) == (str(path), 1)
    assert "accounts file without the column(s) unit (单位/unit); status (状态/status)" in err.message
    assert "headers found: '账号', '姓名', '角色'" in err.message
    assert str(err).startswith(f"{path}:1: accounts file without")


def test_a_logins_file_given_as_roster_is_refused(tmp_path: Path) -> None:
    err = error(read_roster, write(tmp_path, "l.csv", LOGINS_ZH))
    assert err.line == 1 and "name (姓名/name)" in err.message and "employment" in err.message


def test_title_rows_above_the_header_are_skipped(tmp_path: Path) -> None:
    text = "南部县政务网站平台账号清单,,,,,,\n\n" + ACCOUNTS_ZH.replace("\n", ",\n", 1).replace(",\n", "\n", 1)
    got = list(read_accounts(write(tmp_path, "a.csv", text)))
    assert [(a.account, a.row) for a in got] == [("zhangwei", 4), ("lisi", 5), ("wangwu", 6)]


def test_builtin_headers_are_unambiguous() -> None:
    for kind, fields in sources.FIELDS.items():
        seen: dict[str, str] = {}
        for name, _, headers in fields:
            for header in headers:
                assert seen.setdefault(sources._norm(header), name) == name, (kind, header)


# --- column mapping -----------------------------------------------------------------------------

def test_mapped_headers(tmp_path: Path) -> None:
    mapping_file = write(tmp_path, "map.yml", (
        "# 县融媒体中心的导出格式\n"
        "accounts:\n"
        "  account: 登录名\n"
        "  holder: 用户名        # a built-in header for account, here the person's name\n"
        "  unit: [所在部门, 部门]\n"
        "  status: 启用状态\n"
        "roster:\n"
        "  employment: 人员类别\n"
        "logins:\n"
    ))
    mapping = load_mapping(mapping_file)
    assert mapping.headers["accounts"]["unit"] == ("所在部门", "部门")
    assert "logins" not in mapping.headers                  # an empty section maps nothing
    text = "登录名,用户名,部门,启用状态,最后登录时间\nzhangwei,张伟,县财政局,正常,2026-08-01 09:30\n"
    assert list(read_accounts(write(tmp_path, "a.csv", text), mapping)) == [
        PlatformAccount("zhangwei", "张伟", "县财政局", "", "active", None, D(2026, 8, 1, 9, 30), 2)]
    roster = "姓名,单位,人员类别,编制\n张伟,县财政局,在职,在编\n"
    assert list(read_roster(write(tmp_path, "r.csv", roster), mapping)) == [
        StaffRecord("张伟", "", "县财政局", "active", "established", 2)]


def test_mapped_header_absent_from_the_file(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path, "map.yml", "accounts:\n  role: 岗位\n"))
    err = error(read_accounts, write(tmp_path, "a.csv", ACCOUNTS_ZH), mapping)
    assert err.line == 1 and f"role (mapped to 岗位 in {tmp_path / 'map.yml'})" in err.message


@pytest.mark.parametrize("text, line, fragment", [
    ("acounts:\n  account: 登录名\n", 1, "unknown kind 'acounts' (known: accounts, logins, roster)"),
    ("accounts:\n  account: 登录名\n  holdr: 姓名\n", 3, "accounts: unknown field 'holdr'"),
    ("logins:\n  login_time: 123\n", 2, "logins.login_time: expected the header text"),
    ("roster:\n  name: {a: b}\n", 2, "got a mapping"),
    ("roster:\n  name: 姓名\n  name: 名字\n", 3, "duplicate key 'name'"),
    ("roster:\n  name: 姓名\n  unit: 姓名\n", 3, "header '姓名' is mapped to both name and unit"),
    ("roster:\n  name: [姓名\n", 3, "malformed YAML"),
    ("- accounts\n", 1, "must be a mapping"),
    ("accounts: 登录名\n", 1, "accounts must be a mapping"),
    ("accounts:\n  account: []\n", 2, "accounts.account: empty list"),
    ("accounts:\n  sheet: [a, b]\n", 2, "give one sheet name"),
])
def test_mapping_file_errors(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = write(tmp_path, "map.yml", text)
    err = error(load_mapping, path)
    assert (err.source, err.line) == (str(path), line) and fragment in err.message


def test_mapping_file_unreadable(tmp_path: Path) -> None:
    assert error(load_mapping, tmp_path / "none.yml").message == "No such file or directory"
    assert "empty" in error(load_mapping, write(tmp_path, "e.yml", "# nothing\n")).message
    gb = write(tmp_path, "g.yml", "accounts:\n  account: 登录名\n", "gb18030")
    assert "not UTF-8" in error(load_mapping, gb).message


# --- encodings and CSV shape --------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "utf-16"])
def test_csv_encodings(tmp_path: Path, encoding: str) -> None:
    assert list(read_accounts(write(tmp_path, "a.csv", ACCOUNTS_ZH, encoding))) == ACCOUNTS
    assert list(read_roster(write(tmp_path, "r.csv", ROSTER_ZH, encoding))) == ROSTER
    assert list(read_logins(write(tmp_path, "l.csv", LOGINS_ZH, encoding))) == LOGINS


def test_gb18030_detected_after_a_megabyte_of_ascii(tmp_path: Path) -> None:
    filler = "".join(f"u{i:06d},2026-08-01 09:00:00,,10.0.0.1,pc\n" for i in range(30000))   # > 1 MiB
    text = "account,login_time,logout_time,source_ip,terminal\n" + filler + "zw,2026-08-02 09:00,,10.0.0.2,财政局-PC\n"
    events = list(read_logins(write(tmp_path, "l.csv", text, "gb18030")))
    assert len(events) == 30001 and events[-1] == LoginEvent("zw", D(2026, 8, 2, 9), None, "10.0.0.2", "财政局-PC", 30002)


def test_neither_utf8_nor_gb18030(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes("账号,姓名\n".encode() + b"\x80\xff\x80\n")
    err = error(read_accounts, path)
    assert err.source == str(path) and "neither UTF-8 nor GB18030" in err.message


def test_encoding_change_midway_names_the_line(tmp_path: Path) -> None:
    filler = "".join(f"u{i:06d},2026-08-01 09:00:00,,10.0.0.1,pc\n" for i in range(30000))
    path = tmp_path / "l.csv"
    path.write_bytes(("账号,登录时间,退出时间,来源IP,终端\n" + filler).encode()
                     + "zw,2026-08-02 09:00,,10.0.0.2,财政局\n".encode("gb18030"))
    problems: list[RowProblem] = []
    events = read_logins(path, problems=problems)
    err = error(list, events)
    assert (err.line, problems) == (30002, []) and "not valid utf-8 text" in err.message


def test_tab_separated_and_quoted_fields(tmp_path: Path) -> None:
    tabbed = ACCOUNTS_ZH.replace(",", "\t")
    assert list(read_accounts(write(tmp_path, "a.txt", tabbed))) == ACCOUNTS
    quoted = ('账号,姓名,单位,状态\n"zhang,wei","张\n伟",县财政局,正常\nlisi,李四,县民政局,停用\n')
    assert list(read_accounts(write(tmp_path, "q.csv", quoted))) == [
        PlatformAccount("zhang,wei", "张\n伟", "县财政局", "", "active", None, None, 2),
        PlatformAccount("lisi", "李四", "县民政局", "", "disabled", None, None, 3)]   # records, not lines


def test_blank_rows_are_skipped_and_rows_keep_their_numbers(tmp_path: Path) -> None:
    text = LOGINS_ZH.replace("\nlisi", "\n\n , , , , \nlisi") + "zhangwei,2026-08-04 09:00,,10.1.1.5,pc,\n"
    problems: list[RowProblem] = []
    events = list(read_logins(write(tmp_path, "l.csv", text), problems=problems))
    assert problems == []
    assert [e.row for e in events] == [2, 3, 6, 7]        # a trailing empty extra field is tolerated


def test_unclosed_quote_is_an_input_error(tmp_path: Path) -> None:
    path = write(tmp_path, "l.csv", LOGINS_ZH + 'zw,"2026-08-01 09:00,,1.1.1.1,pc\n' + "x,y\n" * 70000)
    err = error(list, read_logins(path))
    assert err.line == 5 and "malformed CSV (an unclosed quote?): field larger than field limit" in err.message


# --- dates --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("2026-08-01 09:30", D(2026, 8, 1, 9, 30)),
    ("2026-08-01 09:30:00", D(2026, 8, 1, 9, 30)),
    ("2026/8/1 9:30:00", D(2026, 8, 1, 9, 30)),
    ("2026/8/1 9:30", D(2026, 8, 1, 9, 30)),
    ("2026/08/01 09:30:05", D(2026, 8, 1, 9, 30, 5)),
    ("2026-8-1 9:30", D(2026, 8, 1, 9, 30)),
    ("2026.8.1 9:30", D(2026, 8, 1, 9, 30)),
    ("2026-08-01", D(2026, 8, 1)),
    ("2026/8/1", D(2026, 8, 1)),
    ("2026年8月1日 9:30", D(2026, 8, 1, 9, 30)),
    ("2026年8月1日9:30:15", D(2026, 8, 1, 9, 30, 15)),
    ("2026年8月1日 9时30分", D(2026, 8, 1, 9, 30)),
    ("2026年8月1日", D(2026, 8, 1)),
    ("2026-08-01T09:30:00", D(2026, 8, 1, 9, 30)),
    ("2026-08-01T09:30:00+00:00", D(2026, 8, 1, 17, 30)),
    ("2026-08-01T09:30:00Z", D(2026, 8, 1, 17, 30)),
    ("2026-08-01T09:30:00+08:00", D(2026, 8, 1, 9, 30)),
    ("2026-07-31T20:30:00-05:00", D(2026, 8, 1, 9, 30)),
    ("2026-08-01T01:30:00.250+00:00", D(2026, 8, 1, 9, 30, 0, 250000)),
    ("2026/8/1 1:30:00 +0000", D(2026, 8, 1, 9, 30)),
    ("2026/8/1 9:30:00.5", D(2026, 8, 1, 9, 30, 0, 500000)),
    ("  2026-08-01 09:30  ", D(2026, 8, 1, 9, 30)),
    ("2026-08-01\u300009:30", D(2026, 8, 1, 9, 30)),
])
def test_parse_time(text: str, expected: dt.datetime) -> None:
    got = parse_time(text)
    assert got == expected and got.tzinfo is None


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01", "2026/2/30 9:00", "2026-08-01 25:00",
                                  "46235.5", "8/1/2026 9:30", "2026-08-01 09:30 +8h"])
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)


def test_every_format_in_a_login_log_matches_parse_time(tmp_path: Path) -> None:
    stamps = ["2026-08-01 09:30", "2026/8/1 9:30:00", "2026年8月1日 9:30", "2026-08-01T01:30:00+00:00",
              "2026-08-01", "2026-08-01 09:30:00"]
    text = "账号,登录时间,退出时间,来源IP\n" + "".join(f"u{i},{s},{s},10.0.0.{i}\n" for i, s in enumerate(stamps))
    events = list(read_logins(write(tmp_path, "l.csv", text)))
    assert [(e.login, e.logout) for e in events] == [(parse_time(s), parse_time(s)) for s in stamps]
    assert events[3].login == D(2026, 8, 1, 9, 30)


# --- xlsx ---------------------------------------------------------------------------------------

def test_xlsx_accounts_with_date_cells_string_dates_and_serials(tmp_path: Path) -> None:
    rows = [["账号", "姓名", "单位", "角色", "状态", "创建时间", "最后登录时间"],
            ["zhangwei", "张伟", "县财政局", "信息发布员", "正常", D(2025, 3, 1, 9), "2026-08-01 09:30"],
            ["lisi", "李四", "县民政局", "审核员", "停用", "2024/5/6 8:05:00", None],
            [10086, "王五", "县公安局", None, 1, 46024.4166666667, dt.date(2026, 11, 27)]]
    path = workbook(tmp_path, "a.xlsx", rows)
    cell = openpyxl.load_workbook(path)["Sheet1"]["F2"]
    assert cell.is_date                          # a real Excel date cell, not text
    assert list(read_accounts(path)) == [
        ACCOUNTS[0], ACCOUNTS[1],
        PlatformAccount("10086", "王五", "县公安局", "", "active", D(2026, 1, 2, 10), D(2026, 11, 27), 4)]


def test_xlsx_1904_date_system_serial(tmp_path: Path) -> None:
    from openpyxl.utils.datetime import MAC_EPOCH

    rows = [["姓名", "单位", "状态", "账号", "创建时间"], ["张伟", "县财政局", "正常", "zw", 44561.5]]
    path = workbook(tmp_path, "a.xlsx", rows, epoch=MAC_EPOCH)
    assert [a.created for a in read_accounts(path)] == [D(2026, 1, 1, 12)]


def test_xlsx_named_sheet_title_row_and_short_rows(tmp_path: Path) -> None:
    rows = [["南部县在职人员花名册"], [], ["姓名", "工号", "单位", "在职状态", "编制", "备注"],
            ["张伟", 1001, "县财政局", "在职", "在编"], [None], ["李四", 1002.0, "县民政局", "离职", "聘用", "x"]]
    path = workbook(tmp_path, "r.xlsx", rows, title="花名册", before={"说明": [["本表由人事股导出"]]})
    expected = [StaffRecord("张伟", "1001", "县财政局", "active", "established", 4),
                StaffRecord("李四", "1002", "县民政局", "left", "contract", 6)]
    assert list(read_roster(path, sheet="花名册")) == expected
    mapping = load_mapping(write(tmp_path, "map.yml", "roster:\n  sheet: 花名册\n"))
    assert list(read_roster(path, mapping)) == expected
    assert "without the column(s)" in error(read_roster, path).message          # the first sheet is the notes
    err = error(read_roster, path, sheet="名册")
    assert err.message == "no sheet named '名册' (sheets: 说明, 花名册)"


def test_xlsx_logins_and_problems(tmp_path: Path) -> None:
    rows = [["账号", "登录时间", "退出时间", "来源IP", "终端"],
            ["zhangwei", D(2026, 8, 1, 9, 30), D(2026, 8, 1, 10), "10.1.1.5", "财政局-PC01"],
            ["zhangwei", "2026-08-02 09:30", None, "10.1.1.5", None],
            ["lisi", D(2026, 8, 3, 9), D(2026, 8, 3, 8), "10.1.2.7", None],
            ["lisi", dt.time(9, 0), None, "10.1.2.7", None]]
    problems: list[RowProblem] = []
    path = workbook(tmp_path, "l.xlsx", rows)
    assert list(read_logins(path, problems=problems)) == LOGINS[:2]
    assert [(p.source, p.row) for p in problems] == [(str(path), 4), (str(path), 5)]
    assert problems[0].message == "退出时间 2026-08-03 08:00:00 is before 登录时间 2026-08-03 09:00:00"
    assert "a time of day without a date" in problems[1].message


def test_empty_sheet(tmp_path: Path) -> None:
    assert error(read_roster, workbook(tmp_path, "r.xlsx", [])).message == "the sheet is empty"


# --- row problems and strict mode ---------------------------------------------------------------

BAD_LOGINS = (
    "账号,登录时间,退出时间,来源IP,终端\n"
    "zhangwei,2026-08-01 09:30:00,2026-08-01 10:00:00,10.1.1.5,PC01\n"        # 2 ok
    "zhangwei,2026-08-01 09:30:00,10.1.1.5,PC01\n"                            # 3 four fields
    "lisi,2026-08-32 09:00,,10.1.2.7,PC02\n"                                  # 4 bad date
    "lisi,2026-08-03 09:00,2026-08-03 08:59:59,10.1.2.7,PC02\n"               # 5 logout before login
    " ,2026-08-03 09:00,,10.1.2.7,PC02\n"                                     # 6 empty account
    "lisi,,,10.1.2.7,PC02\n"                                                  # 7 empty login time
    "lisi,2026-08-03 09:00,2026-08-03 09:00,10.1.2.7,PC02,extra\n"            # 8 six fields
    "wangwu,2026/8/3 9:00,,10.1.3.9,PC03\n"                                   # 9 ok (slow path)
)


def test_login_row_problems(tmp_path: Path) -> None:
    path = write(tmp_path, "l.csv", BAD_LOGINS)
    problems: list[RowProblem] = []
    events = list(read_logins(path, problems=problems))
    assert [(e.account, e.row) for e in events] == [("zhangwei", 2), ("wangwu", 9)]
    assert problems == [
        RowProblem(str(path), 3, "4 fields, the header has 5"),
        RowProblem(str(path), 4, "登录时间: not a date and time: '2026-08-32 09:00' (day is out of range for month)"),
        RowProblem(str(path), 5, "退出时间 2026-08-03 08:59:59 is before 登录时间 2026-08-03 09:00:00"),
        RowProblem(str(path), 6, "empty 账号"),
        RowProblem(str(path), 7, "empty 登录时间"),
        RowProblem(str(path), 8, "6 fields, the header has 5"),
    ]
    assert str(problems[0]) == f"{path}:3: 4 fields, the header has 5"


def test_account_and_roster_row_problems(tmp_path: Path) -> None:
    accounts = write(tmp_path, "a.csv", ACCOUNTS_ZH + "zl,赵六,县公安局,,锁定,,\nqq,钱七,县公安局,,正常,昨天,\n")
    problems: list[RowProblem] = []
    assert list(read_accounts(accounts, problems=problems)) == ACCOUNTS
    assert [(p.row, p.message.split(" (")[0]) for p in problems] == [
        (5, "状态: unknown value '锁定'"), (6, "创建时间: not a date and time: '昨天'")]
    roster = write(tmp_path, "r.csv", ROSTER_ZH + "孙八,,县公安局,调出,在编\n周九,,县公安局,在职,编外\n,,县公安局,在职,在编\n")
    problems = []
    assert list(read_roster(roster, problems=problems)) == ROSTER
    assert [(p.row, p.message.split(" (")[0]) for p in problems] == [
        (6, "在职状态: unknown value '调出'"), (7, "编制: unknown value '编外'"), (8, "empty 姓名")]
    assert "expected 在职/离职/退休/借调 or active/left/retired/seconded" in problems[0].message


def test_problems_none_skips_silently(tmp_path: Path) -> None:
    assert len(list(read_logins(write(tmp_path, "l.csv", BAD_LOGINS)))) == 2


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_strict_raises_at_the_first_problem(tmp_path: Path, suffix: str) -> None:
    if suffix == ".csv":
        path = write(tmp_path, "l.csv", BAD_LOGINS)
    else:
        rows = [line.split(",") for line in BAD_LOGINS.splitlines()]
        path = workbook(tmp_path, "l.xlsx", [rows[0], rows[1], rows[3], rows[2]])    # bad date first here
    events = read_logins(path, strict=True)
    assert next(events).row == 2
    with pytest.raises(InputError) as info:
        next(events)
    assert (info.value.source, info.value.line) == (str(path), 3)


# --- files that are not what they claim ---------------------------------------------------------

def test_missing_file_folder_extension_and_empty(tmp_path: Path) -> None:
    assert error(read_accounts, tmp_path / "none.csv").message == "no such file"
    (tmp_path / "dir.csv").mkdir()
    assert error(read_accounts, tmp_path / "dir.csv").message == "is a folder, not a file"
    assert "unknown file type '.ods'" in error(read_accounts, write(tmp_path, "a.ods", "x")).message
    assert "(no extension)" in error(read_accounts, write(tmp_path, "accounts", ACCOUNTS_ZH)).message
    assert error(read_accounts, write(tmp_path, "a.csv", "")).message == "the file is empty"
    assert error(read_accounts, write(tmp_path, "a.xlsx", "")).message == "the file is empty"
    assert "no header row" in error(read_accounts, write(tmp_path, "b.csv", "\n\n")).message


def test_encrypted_workbook_and_old_xls(tmp_path: Path) -> None:
    ole = sources.OLE_MAGIC + bytes(500) + "EncryptionInfo\0EncryptedPackage".encode("utf-16-le") + bytes(100)
    (tmp_path / "a.xlsx").write_bytes(ole)
    err = error(read_accounts, tmp_path / "a.xlsx")
    assert err.message == "encrypted (password-protected) workbook: save it without a password"
    (tmp_path / "b.xlsx").write_bytes(sources.OLE_MAGIC + bytes(1000))
    assert "an old Excel 97-2003 workbook" in error(read_accounts, tmp_path / "b.xlsx").message
    (tmp_path / "c.xls").write_bytes(sources.OLE_MAGIC + bytes(1000))
    assert "(.xls): save it as .xlsx" in error(read_accounts, tmp_path / "c.xls").message


def test_corrupt_and_mislabelled_workbooks(tmp_path: Path) -> None:
    good = workbook(tmp_path, "good.xlsx", [["账号", "姓名", "单位", "状态"], ["zw", "张伟", "县财政局", "正常"]])
    data = good.read_bytes()
    (tmp_path / "cut.xlsx").write_bytes(data[: len(data) // 2])
    assert "corrupt workbook (bad zip" in error(read_accounts, tmp_path / "cut.xlsx").message
    with zipfile.ZipFile(tmp_path / "nobook.xlsx", "w") as z:
        z.writestr("hello.txt", "hi")
    assert "corrupt or unreadable workbook" in error(read_accounts, tmp_path / "nobook.xlsx").message
    assert "not a zip file" in error(read_accounts, write(tmp_path, "text.xlsx", ACCOUNTS_ZH)).message
    (tmp_path / "book.csv").write_bytes(data)
    assert "an Excel workbook, not CSV text" in error(read_accounts, tmp_path / "book.csv").message


def test_damaged_sheet_xml_is_an_input_error(tmp_path: Path) -> None:
    good = workbook(tmp_path, "good.xlsx", [["账号", "姓名", "单位", "状态"], ["zw", "张伟", "县财政局", "正常"]])
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(tmp_path / "bad.xlsx", "w") as dst:
        for item in src.infolist():
            body = src.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                body = body[: len(body) * 2 // 3]                  # truncated XML
            dst.writestr(item, body)
    err = error(read_accounts, tmp_path / "bad.xlsx")
    assert err.source == str(tmp_path / "bad.xlsx") and "corrupt" in err.message


# --- internals worth pinning --------------------------------------------------------------------

def test_fast_login_constructor_builds_the_same_object() -> None:
    args = ("zw", D(2026, 8, 1), None, "10.0.0.1", "pc", 7)
    fast = sources._new_login_event(*args)
    assert type(fast) is LoginEvent and fast == LoginEvent(*args) and hash(fast) == hash(LoginEvent(*args))


def test_stream_owns_and_closes_its_file(tmp_path: Path) -> None:
    def handle(events: Any) -> Any:              # the open text file inside the primed generator
        return events.gi_frame.f_locals["table"].close.__self__

    events = read_logins(write(tmp_path, "l.csv", LOGINS_ZH))
    opened = handle(events)
    assert not opened.closed                     # the header was read; the rows wait
    assert list(events) == LOGINS and opened.closed
    unused = read_logins(write(tmp_path, "m.csv", LOGINS_ZH))
    opened = handle(unused)
    unused.close()                               # never iterated, still released
    assert opened.closed


def test_column_mapping_default_is_empty() -> None:
    assert ColumnMapping().headers == {} and ColumnMapping().sheets == {}


# --- the benchmark generator's output reads back cleanly ---------------------------------------

def test_generated_data_set_reads_back(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("gen_accounts", PROJECT / "bench" / "gen_accounts.py")
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    sys.modules["gen_accounts"] = gen
    try:
        spec.loader.exec_module(gen)
        gen.generate(300, 5000, tmp_path / "a", seed=3)
        gen.generate(300, 5000, tmp_path / "b", seed=3)
    finally:
        del sys.modules["gen_accounts"]
    for name in ("accounts.csv", "logins.csv", "roster.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    problems: list[RowProblem] = []
    accounts = list(read_accounts(tmp_path / "a" / "accounts.csv", problems=problems, strict=True))
    events = list(read_logins(tmp_path / "a" / "logins.csv", problems=problems, strict=True))
    staff = list(read_roster(tmp_path / "a" / "roster.csv", problems=problems, strict=True))
    assert problems == [] and len(accounts) == 300 and len(events) == 5000 and staff
    assert all(D(2026, 1, 1) <= e.login <= D(2026, 11, 27, 23, 59, 59) for e in events)
    assert [e.login for e in events] == sorted(e.login for e in events)
    last = {}
    for e in events:
        last[e.account] = e.login
    assert {a.account: a.last_login for a in accounts if a.last_login} == last
    assert 0.05 < sum(e.logout is None for e in events) / len(events) < 0.15
