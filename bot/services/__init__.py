"""Use cases: one class per business capability, working inside one unit of work."""
