"""How a batch's lines are read back for the batch detail screen."""

from __future__ import annotations

import json
from pathlib import Path

from batchdash.core import snapshot
from batchdash.core.batch_records import NewBatch
from batchdash.core.db import open_sync_store


def test_batch_detail_lists_items_in_line_order(db_path: Path) -> None:
    ids = [f"c{i}" for i in range(12)]
    with open_sync_store(db_path) as db:
        new = NewBatch("q", "/v1/chat/completions", "m")
        batch_id = db.write(lambda c: c.batches.add_batch(new, 1.0))
        lines = [(n, cid, cid, json.dumps({"custom_id": cid})) for n, cid in enumerate(ids, 1)]
        db.write(lambda c: c.items.add_batch_lines(batch_id, "q", "openai_batch", lines, 1.0))
        detail = db.read(lambda c: snapshot.batch_detail(c, batch_id, 2.0))
    assert detail is not None
    assert [i.custom_id for i in detail.items] == ids  # c0, c1, c2 … c10, c11: not c0, c1, c10
