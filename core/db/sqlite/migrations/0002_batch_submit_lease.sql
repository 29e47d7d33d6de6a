-- v2: who is submitting a batch right now, so `reconcile` never races a live submit.
CREATE TABLE batch_submit_leases (
    batch_id   INTEGER PRIMARY KEY REFERENCES batches(id),
    owner      TEXT NOT NULL,
    expires_at REAL NOT NULL
);
