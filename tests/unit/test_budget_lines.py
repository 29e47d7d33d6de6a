"""The budget lines `queue show` prints for a queue: spend against budget, what is left,
and why a budget-paused queue stopped."""

from __future__ import annotations

from batchdash.core.models import QueueInfo
from batchdash.tui.cli.budget import budget_lines


def test_without_a_budget_only_the_spend() -> None:
    assert budget_lines(QueueInfo("papers", False, {}, spend_usd=3.5)) == [
        "budget:  none (spent $3.50)"
    ]


def test_a_running_queue_shows_what_is_left() -> None:
    info = QueueInfo("papers", False, {}, budget_usd=25.0, spend_usd=12.4)
    assert budget_lines(info) == ["budget:  $12.40 / $25.00 ($12.60 left)"]


def test_a_budget_pause_says_why_and_what_resumes_it() -> None:
    info = QueueInfo("papers", True, {}, budget_usd=25.0, pause_reason="budget", spend_usd=25.03)
    assert budget_lines(info) == [
        "budget:  $25.03 / $25.00 (nothing left)",
        "paused:  budget $25.00 reached ($25.03 spent); raise it with --usd or --clear",
    ]
