"""Which jobs get judged, and by whom: `--sample`, `--judges` and every-Nth sampling."""

from __future__ import annotations

from dataclasses import dataclass

from batchdash.core.db.ports import Tx
from batchdash.core.errors import InvalidInputError
from batchdash.core.models import QA_QUEUE_PREFIX, JobFilter

#: Judge used when none is named.
DEFAULT_JUDGE = "gpt-4o-mini"


@dataclass(frozen=True, slots=True)
class Sample:
    """How many matching jobs to judge: a count, a fraction, or (both None) all of them."""

    limit: int | None = None
    fraction: float | None = None


def parse_sample(text: str) -> Sample:
    """`200` → 200 jobs, `0.1` or `10%` → a tenth of them, `all` → every job."""
    value = text.strip()
    if value == "all":
        return Sample()
    if value.isdigit() and int(value) > 0:
        return Sample(limit=int(value))
    try:
        fraction = float(value[:-1]) / 100 if value.endswith("%") else float(value)
    except ValueError:
        raise InvalidInputError(
            f"--sample {text!r}: expected a count (200), a fraction (0.1, 10%) or all"
        ) from None
    if not 0 < fraction <= 1:
        raise InvalidInputError(f"--sample {text!r}: a fraction must be in (0, 1]")
    return Sample(fraction=fraction)


def sample_ids(tx: Tx, flt: JobFilter, sample: Sample) -> list[int]:
    """The ids `qa run` judges: a deterministic sample of the matching jobs."""
    return tx.qa.qa_sample_ids(
        flt,
        limit=sample.limit,
        fraction=sample.fraction,
        skip_queue_prefix=QA_QUEUE_PREFIX,
    )


def parse_judges(text: str | None) -> tuple[str, ...]:
    """`a,b` → ("a", "b") in order, without duplicates; empty → the default judge."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    return tuple(dict.fromkeys(names)) or (DEFAULT_JUDGE,)


def should_sample(count: int, every: int) -> bool:
    """True for exactly every `every`-th item of a running count (1-based)."""
    return every > 0 and count % every == 0
