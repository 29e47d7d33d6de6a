"""QA verdicts and their summary: what judge models said about jobs.

Plain dataclasses, apart from `core/models.py` so neither module grows past its size.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Judges whose overall scores for one job differ by at least this much "disagree".
DISAGREEMENT_THRESHOLD = 3.0


@dataclass(frozen=True, slots=True)
class QAResult:
    """One judge's verdict on one job: scores per dimension (`overall` among them), or an
    error with the judge's raw text.

    `id` is None until the verdict is stored; `batch_id` is the QA batch it came from,
    when it was judged as a remote batch.
    """

    job_id: int
    judge: str
    scores: dict[str, float]
    comment: str | None
    error: str | None
    raw: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost: float | None
    created_at: float
    batch_id: int | None = None
    id: int | None = None

    @property
    def overall(self) -> float | None:
        """The overall score, None for an error."""
        return self.scores.get("overall")


@dataclass(frozen=True, slots=True)
class QAStat:
    """Average and spread of one (judge, dimension) over the scored jobs."""

    judge: str
    dimension: str
    n: int
    mean: float
    minimum: float
    maximum: float


@dataclass(frozen=True, slots=True)
class QASummary:
    """What the QA pane and `--once` show: per-judge stats, distribution, worst, disagreement.

    `distribution` counts overall scores rounded to integers 1–10; `worst` lists
    (job_id, key, judge, overall); `disagreements` lists (job_id, key, low, high) where the
    judges' overall scores differ by at least the threshold.
    """

    results: int
    errors: int
    stats: list[QAStat]
    distribution: dict[int, int]
    worst: list[tuple[int, str, str, float]]
    disagreements: list[tuple[int, str, float, float]]

    @property
    def empty(self) -> bool:
        """True when no job has been scored (nor failed to be)."""
        return self.results == 0 and self.errors == 0
