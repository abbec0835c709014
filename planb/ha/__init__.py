"""The hot-standby fallback (issue 14): the standby's replication state, its promotion."""
