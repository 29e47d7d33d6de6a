"""What housekeeping reads from a user: `tag:` in the filter language, tags, ages and times."""

from __future__ import annotations

import time

import pytest

from batchdash.core.filters import FilterError, format_filter, parse_filter
from batchdash.core.models import JobFilter
from batchdash.core.tags import TagError, check_tags
from batchdash.tui.argtypes import RangeError, duration, point_in_time


def test_tag_qualifier_parses_and_prints_back() -> None:
    flt = parse_filter("tag:nightly,run-7 status:failed tag:x")
    assert flt == JobFilter(statuses=("failed",), tags=("nightly", "run-7", "x"))
    assert parse_filter(format_filter(flt)) == flt


def test_a_bad_tag_in_a_filter_is_one_line() -> None:
    with pytest.raises(FilterError, match=r"^tag: bad tag '-x': 1-64 letters"):
        parse_filter("tag:-x")


def test_tags_are_checked_and_kept_once_in_order() -> None:
    assert check_tags(["b", "a", "b", "v1.2:eu/x@y+z=w"]) == ("b", "a", "v1.2:eu/x@y+z=w")
    for bad in ("", "a b", "a,b", "x" * 65, "-lead"):
        with pytest.raises(TagError):
            check_tags([bad])


def test_ages_and_times() -> None:
    assert duration("30d") == 30 * 86400 and duration("1.5h") == 5400 and duration("90S") == 90
    assert abs(time.time() - 7200 - point_in_time("2h")) < 5
    assert point_in_time("2026-11-29T08:00Z") == 1795939200
    assert point_in_time("2026-11-29T10:00+02:00") == 1795939200
    for bad in ("banana", "30", "d", "0d", "-1h", "nand"):
        with pytest.raises(RangeError):
            duration(bad)
    with pytest.raises(RangeError, match="not a time"):
        point_in_time("2026-13-01")
