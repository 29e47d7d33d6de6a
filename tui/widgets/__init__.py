"""The dashboard's panes, one module each; they render snapshots and never touch the store."""
