-- v13: `workers stop` asks a worker of another host to drain; its next heartbeat sees it.
ALTER TABLE workers ADD COLUMN stop_requested INTEGER NOT NULL DEFAULT 0;
