"""Status (or queue) + free-text reads on PostgreSQL that walk the status's jobs and look
each one's texts up by its id, instead of joining every text match.

The planner takes the status and the text of a filter to be independent. They seldom are
('timeout' errors are on failed jobs): it then read every text match from `job_search`
(173k at 10M jobs) and hash-joined them to the status's jobs to count 1,000 of them or
show 100 (128 ms at 10M). Walking the status's jobs (an index of `jobs`) and testing each
one's `job_search` row stops as soon as enough match (3,000 rows walked: 6 ms).

When few of the status's jobs match, that walk cannot stop early, so it is given a budget:
WALK_RATIO times the rows wanted (or all the status's jobs, when they are at most twice
that). Within it, a walk settles the answer when it found enough rows or walked every job
of the status (known exactly from job_counts). One that found some rows, too few, is tried
once more, as far as their rate says is needed (up to MAX_RATIO times the rows wanted);
otherwise the read is left to the planner's plan as before, which then costs the walks
more (4,004 rows at 1M jobs: 10-15 ms). Walks are planned for their values, never
prepared: a generic plan may walk a rare status by a table scan.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from batchdash.core.db.sqlshared import (
    SEARCH_KEY,
    SEARCH_TEXT,
    _counted,
    key_pattern,
    text_pattern,
)
from batchdash.core.models import JobFilter

#: How many rows of the status a first walk may read per row it is to find.
WALK_RATIO = 4
#: The most a second walk may read per row to find: it is taken when the first walk found
#: some rows, at a rate that says twice as far would find all of them (one in 16 at least).
MAX_RATIO = 16


@dataclass(frozen=True, slots=True)
class TextWalk:
    """A filter split into the jobs to walk (`rest`, statuses and queues alone) and the
    test of each one's texts (`probe`: true, or NULL for a job whose texts do not match)."""

    rest: JobFilter
    probe: str
    probe_params: list[Any]


def first_budget(wanted: int, size: int) -> int:
    """How many of the status's `size` jobs a first walk for `wanted` rows may read: all of
    them when that is at most twice a budget (a walk past it costs less than the join)."""
    budget = WALK_RATIO * wanted
    return size if size <= 2 * budget else budget


def next_budget(wanted: int, budget: int, found: int) -> int | None:
    """How many of the status's jobs the next walk for `wanted` rows may read, after one
    that read `budget` and found `found`; None to leave the read to the planner."""
    if not found:
        return None
    longer = min(2 * wanted * budget // found, MAX_RATIO * wanted)
    return longer if longer > budget else None


def text_walk(flt: JobFilter) -> TextWalk | None:
    """`flt` as a walk when it is statuses and/or queues with a text or key filter, else
    None (a text filter alone is served by its trigram indexes and needs no walk)."""
    rest = replace(flt, text=None, key_glob=None)
    if rest == flt or rest == JobFilter() or not _counted(rest):
        return None
    tests: list[str] = []
    params: list[Any] = []
    if flt.key_glob:
        tests.append(SEARCH_KEY.format(m="%s"))
        params.append(key_pattern(flt.key_glob))
    if flt.text:
        tests.append(SEARCH_TEXT.format(m="%s"))
        params += [text_pattern(flt.text)] * 2
    # A scalar subquery is a per-row test the planner cannot turn into a join (an IN or
    # EXISTS it would hash-join again).
    probe = f"(SELECT true FROM job_search s WHERE s.job_id = j.id AND {' AND '.join(tests)})"
    return TextWalk(rest, probe, params)
