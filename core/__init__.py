"""batchdash core: the domain, storage, queue, workers and providers (never imports textual)."""
