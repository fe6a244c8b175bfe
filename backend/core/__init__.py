"""The kernel: settings, database, errors, idempotency, pagination, dependencies, clock, jobs."""
