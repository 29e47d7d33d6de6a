"""What a remote batch provider offers batchdash: the `BatchProvider` Protocol.

Every batch row stores the name of its provider (`batches.provider`); `core.providers`
maps that name to an object of this shape, and `core.remote` and `core.sync` talk only to
it. The durable-submission contract: `submit_file` records the intent (batches, items,
jobs) before anything is sent, so a crash at any point leaves `submitting` batches that
`ProviderSession.reconcile` finishes without creating a second remote batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from batchdash.core.actor import Actor
    from batchdash.core.batch_input import InputPlan
    from batchdash.core.db.ports import Store
    from batchdash.core.models import Batch


#: Told (bytes sent, bytes of the file) as an input file is uploaded; starts again at 0
#: for each upload (each shard, each retry). For a progress bar: core draws nothing.
UploadProgress = Callable[[int, int], None]


class Reconciled(NamedTuple):
    """What reconciling one batch did; `permanent` when the provider refused for good."""

    batch_id: int
    what: str
    permanent: bool = False


class ProviderSession(Protocol):
    """Open connections for one poll cycle."""

    async def poll(self, db: Store, batch: Batch) -> bool | None:
        """Retrieve a due batch, then stream its results into the store once it ended.

        None when another poller holds the batch; True when it was ingested now.
        """
        ...

    async def reconcile(self, db: Store) -> list[Reconciled]:
        """Finish this provider's `submitting` batches that no live process submits."""
        ...


class BatchProvider(Protocol):
    """A remote batch service: validate, submit durably, retrieve, cancel, list, results."""

    #: The name stored in `batches.provider`.
    name: str

    def check_ready(self) -> None:
        """Raise MissingKeyError (or ConfigError) when the provider is not configured."""
        ...

    def validate(self, path: Path, *, endpoint: str | None = None) -> InputPlan:
        """Check an input file against the provider's rules; InputError lists bad lines."""
        ...

    def price(self, model: str, tokens_in: int, tokens_out: int) -> float | None:
        """USD of that usage at the provider's batch rate; None when no price is known."""
        ...

    async def check_model(self, model: str) -> None:
        """ProviderError unless the provider offers the model."""
        ...

    async def submit_file(
        self,
        db: Store,
        path: Path,
        *,
        queue: str,
        endpoint: str | None = None,
        endpoint_name: str | None = None,
        metadata: dict[str, str] | None = None,
        on_upload: UploadProgress | None = None,
        tags: Sequence[str] = (),
    ) -> list[int]:
        """Validate, record the intent (with `tags` on the batches and their jobs, in the
        same transaction), then upload/create; the local ids (one per shard).

        `endpoint` is the request URL of the lines (OpenAI's `url`); `endpoint_name` the
        config file's named endpoint, stored on the batches and resolved on every later
        call (`core.endpoints.batch_endpoint`). `on_upload` follows each upload.
        """
        ...

    async def resubmit(
        self,
        db: Store,
        batch_id: int,
        *,
        include_permanent: bool = False,
        actor: Actor | None = None,
    ) -> int:
        """Send a finished batch's failed, expired, cancelled and missing lines again
        (`actor`: who asked, for the audit trail, as for `cancel`)."""
        ...

    async def cancel(self, db: Store, batch_id: int, actor: Actor | None = None) -> None:
        """Ask the provider to cancel a running batch."""
        ...

    async def delete(self, db: Store, batch_id: int, actor: Actor | None = None) -> None:
        """Delete what the provider keeps of an ingested batch (its batch, or its files)."""
        ...

    async def import_batches(self, db: Store, *, queue: str) -> list[int]:
        """Track the account's batches that were submitted elsewhere; their local ids."""
        ...

    def session(self) -> AbstractAsyncContextManager[ProviderSession]:
        """Connections for one poll cycle (`poll`, `reconcile`), closed on exit."""
        ...

    def owns(self, exc: BaseException) -> bool:
        """True for an error of the provider's own client (HTTP, network), not a bug."""
        ...

    def describe(self, exc: BaseException) -> str:
        """One line for a failed provider call (never the key)."""
        ...

    def is_permanent(self, exc: BaseException) -> bool:
        """True when retrying cannot change the failure (bad key, bad request)."""
        ...
