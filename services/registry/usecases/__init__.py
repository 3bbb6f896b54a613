"""Registry use cases: each takes the session of an open unit of work, applies the domain rules, writes
rows and raises their events (`shared.db.collect`; the unit of work writes them to the outbox when it
commits). The caller (shared.writes.run_write) commits."""
