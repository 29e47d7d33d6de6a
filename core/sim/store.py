"""State of the simulator: uploaded files and batches, behind one thread-safe object.

`SimStore` is what the HTTP layer calls. Creating a batch really validates its input file
(core/sim/validation.py); each retrieve/list then derives the batch's state from the elapsed
time (core/sim/lifecycle.py), and the first observation of a status that has result files
writes them (core/sim/results.py), which are then files like any upload.

Thread safety: the HTTP layer calls these methods from Starlette's thread pool. `_lock`
guards the dictionaries and the id counter and is held only briefly; each batch has its own
lock so writing one big output file never blocks the rest of the server.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from batchdash.core.sim.config import SimConfig
from batchdash.core.sim.errors import JsonDict, SimError
from batchdash.core.sim.lifecycle import CANCELLABLE, WITH_RESULTS, SimBatch
from batchdash.core.sim.quirks import BatchQuirk, batch_quirk
from batchdash.core.sim.results import write_results
from batchdash.core.sim.validation import parse_create, plan_input

COPY_CHUNK: Final = 1 << 16
UPLOAD_PURPOSES: Final = frozenset(
    {"assistants", "batch", "fine-tune", "vision", "user_data", "evals"}
)


# --- files ------------------------------------------------------------------------------


@dataclass
class StoredFile:
    """One file known to the simulator (uploaded, or written as a batch result)."""

    id: str
    filename: str
    purpose: str
    size: int
    created_at: int
    path: Path
    seq: int

    def to_json(self) -> JsonDict:
        """The OpenAI `file` object."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.size,
            "created_at": self.created_at,
            "expires_at": None,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }


def _page_ids(ids: list[str], limit: int, after: str | None) -> tuple[list[str], bool]:
    """One page of `ids` after the cursor, and whether more follow."""
    start = 0
    if after is not None:
        if after not in ids:
            raise SimError.invalid(f"No object found for cursor after='{after}'.", param="after")
        start = ids.index(after) + 1
    return ids[start : start + limit], start + limit < len(ids)


def list_json(data: list[JsonDict], has_more: bool) -> JsonDict:
    """An OpenAI cursor-page list object."""
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def _link_or_copy(source: Path, target: Path) -> None:
    """Give the batch its own name for the input, so deleting the upload cannot break it."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


class SimStore:
    """All files and batches of one simulator instance."""

    def __init__(self, config: SimConfig) -> None:
        """Create the storage directories (a private temp dir unless config.data_dir)."""
        self.config = config
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if config.data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="batchdash-sim-")
            root = Path(self._tmp.name)
        else:
            root = config.data_dir
        self.root = root
        """Where this instance keeps its files (a private temp dir unless data_dir)."""
        self._files_dir = root / "files"
        self._batches_dir = root / "batches"
        self._files_dir.mkdir(parents=True, exist_ok=True)
        self._batches_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._counter = 0
        self._files: dict[str, StoredFile] = {}
        self._batches: dict[str, SimBatch] = {}

    def close(self) -> None:
        """Remove the private temp dir, if any (a configured data_dir is kept)."""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def next_id(self, prefix: str) -> tuple[str, int]:
        """A new id and its creation sequence number (the list order)."""
        with self._lock:
            self._counter += 1
            seq = self._counter
        if not self.config.deterministic_ids:
            return prefix + secrets.token_hex(12), seq
        digest = hashlib.sha256(f"{self.config.seed}:{prefix}:{seq}".encode()).hexdigest()
        return prefix + digest[:24], seq

    # -- files ---------------------------------------------------------------------------

    def add_file(self, source: BinaryIO, filename: str, purpose: str) -> JsonDict:
        """Store an upload (copied in chunks, never whole in memory); the file object."""
        if purpose not in UPLOAD_PURPOSES:
            allowed = ", ".join(sorted(UPLOAD_PURPOSES))
            message = f"Invalid value: '{purpose}'. Supported values are: {allowed}."
            raise SimError.invalid(message, param="purpose", code="invalid_value")
        file_id, seq = self.next_id("file-")
        path = self._files_dir / file_id
        with path.open("wb") as out:
            shutil.copyfileobj(source, out, COPY_CHUNK)
        return self._register(file_id, seq, path, filename, purpose, int(time.time())).to_json()

    def _register(
        self, file_id: str, seq: int, path: Path, filename: str, purpose: str, created_at: int
    ) -> StoredFile:
        stored = StoredFile(file_id, filename, purpose, path.stat().st_size, created_at, path, seq)
        with self._lock:
            self._files[file_id] = stored
        return stored

    def get_file(self, file_id: str) -> StoredFile:
        """The file with this id, or a 404 SimError."""
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None:
            raise SimError.not_found(f"No such File object: {file_id}", param="id")
        return stored

    def list_files(
        self, purpose: str | None, limit: int, after: str | None, order: str
    ) -> JsonDict:
        """GET /v1/files: cursor page, newest first unless order='asc'."""
        with self._lock:
            files = sorted(self._files.values(), key=lambda f: f.seq, reverse=order != "asc")
        by_id = {f.id: f for f in files if purpose is None or f.purpose == purpose}
        page, has_more = _page_ids(list(by_id), limit, after)
        return list_json([by_id[i].to_json() for i in page], has_more)

    def delete_file(self, file_id: str) -> JsonDict:
        """DELETE /v1/files/{id}: forget the file and remove it from disk."""
        stored = self.get_file(file_id)
        with self._lock:
            self._files.pop(file_id, None)
        stored.path.unlink(missing_ok=True)
        return {"id": file_id, "object": "file", "deleted": True}

    def open_content(self, file_id: str) -> BinaryIO:
        """An open binary handle on the file's bytes (the caller streams and closes it)."""
        stored = self.get_file(file_id)
        try:
            return stored.path.open("rb")
        except FileNotFoundError:
            raise SimError.not_found(f"No such File object: {file_id}", param="id") from None

    # -- batches: public API ---------------------------------------------------------------

    def create_batch(self, params: JsonDict) -> JsonDict:
        """POST /v1/batches: check, validate the input for real, register; the batch object."""
        request = parse_create(params)
        try:
            source = self.get_file(request.input_file_id)
        except SimError:
            message = f"No such File object: {request.input_file_id}"
            raise SimError.invalid(message, param="input_file_id") from None
        if source.purpose != "batch":
            message = f"File {source.id} has purpose '{source.purpose}'; batch input needs 'batch'."
            raise SimError.invalid(message, param="input_file_id")
        batch_id, seq = self.next_id("batch_")
        input_path = self._batches_dir / f"{batch_id}_input.jsonl"
        _link_or_copy(source.path, input_path)
        quirk = batch_quirk(request.metadata)
        plan = plan_input(
            input_path,
            request.endpoint,
            max_requests=self.config.max_requests,
            token_limit=self.config.token_limit,
            force_token_limit=quirk is BatchQuirk.TOKEN_LIMIT,
        )
        batch = SimBatch(
            id=batch_id,
            seq=seq,
            endpoint=request.endpoint,
            input_file_id=source.id,
            input_path=input_path,
            metadata=request.metadata,
            quirk=quirk,
            plan=plan,
            config=self.config,
        )
        with self._lock:
            self._batches[batch_id] = batch
        return self._observe(batch)

    def retrieve_batch(self, batch_id: str) -> JsonDict:
        """GET /v1/batches/{id}: the batch as of now."""
        return self._observe(self._batch(batch_id))

    def cancel_batch(self, batch_id: str) -> JsonDict:
        """POST /v1/batches/{id}/cancel: freeze processing now, then `cancelling`."""
        batch = self._batch(batch_id)
        with batch.lock:
            if batch.cancel_at is None:
                now = batch.now()
                status = batch.snapshot(now).status
                if status not in CANCELLABLE:
                    message = f"Cannot cancel a batch with status '{status}'."
                    raise SimError.invalid(message, param="batch_id")
                batch.cancel_at = now
        # a second cancel while cancelling/cancelled just returns the batch, like OpenAI
        return self._observe(batch)

    def list_batches(self, limit: int, after: str | None) -> JsonDict:
        """GET /v1/batches: cursor page, newest first (only the page's batches are observed)."""
        with self._lock:
            batches = sorted(self._batches.values(), key=lambda b: b.seq, reverse=True)
        by_id = {b.id: b for b in batches}
        page, has_more = _page_ids(list(by_id), limit, after)
        return list_json([self._observe(by_id[i]) for i in page], has_more)

    # -- batches: internals ----------------------------------------------------------------

    def _batch(self, batch_id: str) -> SimBatch:
        with self._lock:
            batch = self._batches.get(batch_id)
        if batch is None:
            raise SimError.not_found(f"No batch found with id '{batch_id}'.", param="batch_id")
        return batch

    def _observe(self, batch: SimBatch) -> JsonDict:
        """Current batch object, writing the result files on first sight of them."""
        snap = batch.snapshot(batch.now())
        if snap.status in WITH_RESULTS and batch.results is None:
            with batch.lock:
                # recompute under the lock: a cancel may have landed since the first look
                snap = batch.snapshot(batch.now())
                if batch.results is None and snap.status in WITH_RESULTS:
                    batch.results = write_results(
                        batch, snap, self._batches_dir, self._register_result
                    )
        return batch.to_json(snap)

    def _register_result(self, path: Path, filename: str, created_at: int) -> str:
        """Make a written result file a `batch_output` file; its new id."""
        file_id, seq = self.next_id("file-")
        self._register(file_id, seq, path, filename, "batch_output", created_at)
        return file_id
