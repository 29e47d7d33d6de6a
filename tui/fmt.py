"""Small text formatters shared by the CLI, `--once` and the dashboard (no textual here)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from batchdash.core.pricing import usd


def duration(seconds: float | None) -> str:
    """A short human duration: 850ms, 12.3s, 4m05s, 2h10m, 3d4h; '-' when unknown."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h"


def eta(seconds: float | None) -> str:
    """Time left for the waiting jobs: '-' when unknown (no recent rate), 'done' when none."""
    if seconds is None:
        return "-"
    return "done" if seconds == 0 else duration(seconds)


def age(seconds: float) -> str:
    """How long ago, coarse: 5s, 3m, 2h, 4d."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def one_line(text: str, width: int) -> str:
    """Collapse whitespace and cut to `width` characters with an ellipsis.

    Only the head of `text` is looked at, so a multi-megabyte error costs no more than a
    short one; an ellipsis still says when anything was left out.
    """
    head = text[: width * 8 + 64]
    flat = " ".join(head.split())
    if len(flat) <= width and len(head) == len(text):
        return flat
    return flat[: max(0, width - 1)] + "…"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> Iterator[str]:
    """Plain aligned columns. Rows are buffered in chunks so huge listings still stream."""
    chunk: list[Sequence[str]] = []
    widths = [len(h) for h in header]
    first = True
    for row in rows:
        chunk.append(row)
        if len(chunk) >= 1000:
            yield from _emit(header if first else None, chunk, widths)
            first, chunk = False, []
    yield from _emit(header if first else None, chunk, widths)


def _emit(
    header: Sequence[str] | None, rows: list[Sequence[str]], widths: list[int]
) -> Iterator[str]:
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    if header is not None:
        yield _line(header, widths)
    for row in rows:
        yield _line(row, widths)


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=False)).rstrip()


def money(value: float | None) -> str:
    """USD with precision that suits small LLM bills; '?' when the price is unknown."""
    return "?" if value is None else usd(value)


def size(n_bytes: int) -> str:
    """A byte count for people: 512 B, 12.3 KB, 9.9 MB, 1.2 GB (powers of 1000)."""
    value = float(n_bytes)
    for unit in ("B", "KB", "MB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def count(n: int) -> str:
    """Thousands separators."""
    return f"{n:,}"


def per_minute(rate: float) -> str:
    """A rate per minute: one decimal below 100, whole numbers with separators above."""
    return f"{rate:.1f}/min" if rate < 100 else f"{rate:,.0f}/min"


def stall_text(stalled: int, reason: str | None, noun: str = "") -> str:
    """`15 paused` / `15 jobs without worker`: local jobs no live worker can claim."""
    if not stalled:
        return ""
    word = "paused" if reason == "queue paused" else "without worker"
    return " ".join(part for part in (f"{stalled:,}", noun, word) if part)


def spend_text(work: float, qa: float) -> str:
    """`$0.0174 (work $0.0128 + QA $0.0046)`: the sum first, then its parts."""
    return f"{money(work + qa)} (work {money(work)} + QA {money(qa)})"
