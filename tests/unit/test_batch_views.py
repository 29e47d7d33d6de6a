"""How a batch's lines are read back for the batch detail screen."""

from __future__ import annotations

import json
from pathlib import Path

from batchdash.core import snapshot, store
from batchdash.core.store import SyncStore


def test_batch_detail_lists_items_in_line_order(db_path: Path) -> None:
    ids = [f"c{i}" for i in range(12)]
    with SyncStore.open(db_path) as db:
        new = store.NewBatch("q", "/v1/chat/completions", "m")
        batch_id = db.write(lambda c: store.add_batch(c, new, 1.0))
        lines = [(n, cid, cid, json.dumps({"custom_id": cid})) for n, cid in enumerate(ids, 1)]
        db.write(lambda c: store.add_batch_lines(c, batch_id, "q", "openai_batch", lines, 1.0))
        detail = db.read(lambda c: snapshot.batch_detail(c, batch_id, 2.0))
    assert detail is not None
    assert [i.custom_id for i in detail.items] == ids  # c0, c1, c2 … c10, c11: not c0, c1, c10
