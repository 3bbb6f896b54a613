"""Registry use cases: each takes an open unit of work, applies the domain rules, writes rows and
their events. The caller (shared.idempotency.run_write) commits."""
