"""The product's one clock: pinned by use_clock, read in county time, reaching every "now"."""

from __future__ import annotations

import datetime as dt
import io
import tarfile
from pathlib import Path

import pytest

from nanbu_secops import timeutil
from nanbu_secops.bundle.archive import TarWriter
from nanbu_secops.fleet import spool
from nanbu_secops.fleet.quarter import Quarter

UTC = dt.UTC


def test_a_pinned_moment_is_now_and_today_in_county_time_and_is_given_back() -> None:
    with timeutil.use_clock(dt.datetime(2026, 12, 31, 16, 30, tzinfo=UTC)):
        assert timeutil.now() == dt.datetime(2027, 1, 1, 0, 30, tzinfo=timeutil.COUNTY_TZ)
        assert timeutil.now().utcoffset() == dt.timedelta(hours=8)
        assert timeutil.today() == dt.date(2027, 1, 1)   # already the new year in the county
    assert abs(timeutil.now() - timeutil.system_clock()) < dt.timedelta(seconds=5)


def test_the_clock_is_given_back_after_an_exception_and_naive_moments_are_refused() -> None:
    with pytest.raises(RuntimeError), timeutil.use_clock(dt.datetime(2030, 1, 1, tzinfo=UTC)):
        raise RuntimeError("inside")
    assert abs(timeutil.now() - timeutil.system_clock()) < dt.timedelta(seconds=5)
    with pytest.raises(ValueError, match="timezone-aware"), timeutil.use_clock(dt.datetime(2026, 1, 1)):
        pass


def test_a_moving_clock_is_called_each_time() -> None:
    ticks = iter([dt.datetime(2026, 3, 31, 15, 59, 59, tzinfo=UTC), dt.datetime(2026, 3, 31, 16, 0, tzinfo=UTC)])
    with timeutil.use_clock(lambda: next(ticks)):
        assert Quarter.of(timeutil.now()).label == "2026Q1"
        assert Quarter.of(timeutil.now()).label == "2026Q2"   # midnight of 1 April in the county


@pytest.mark.parametrize("moment, label", [
    (dt.datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC), "2026Q4"),
    (dt.datetime(2026, 12, 31, 16, 30, tzinfo=UTC), "2027Q1"),    # still 2026 in UTC
    (dt.datetime(2027, 3, 31, 16, 10, tzinfo=UTC), "2027Q2"),     # still Q1 in UTC
    (dt.datetime(2027, 7, 1, 0, 0, tzinfo=timeutil.COUNTY_TZ), "2027Q3"),
])
def test_quarter_of_a_moment_is_the_county_quarter(moment: dt.datetime, label: str) -> None:
    quarter = Quarter.of(moment)
    assert quarter.label == label
    assert quarter.start <= moment < quarter.end


def test_spool_names_and_tar_times_come_from_the_clock(tmp_path: Path) -> None:
    pinned = dt.datetime(2027, 3, 31, 16, 10, 5, tzinfo=UTC)
    with timeutil.use_clock(pinned):
        written = spool.write(tmp_path / "spool", {"host": "t1"}, "t1")
        buffer = io.BytesIO()
        TarWriter(buffer.write).add_bytes("evidence/a.txt", b"x")
    assert written.name == "20270331T161005.000000Z-t1.json"
    buffer.write(bytes(1024))
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as tar:
        assert tar.getmember("evidence/a.txt").mtime == int(pinned.timestamp())
