"""Sync between nodes: the change feed and snapshots a node serves, and the followers that mirror another
node's prefixes (docs/replication.md)."""
