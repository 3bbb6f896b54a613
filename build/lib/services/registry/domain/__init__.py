"""Registry rules as plain Python: no database, no web."""
