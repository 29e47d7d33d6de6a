"""The SQLite back end of the store."""
