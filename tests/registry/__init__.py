"""The registry through HTTP on the real database: the county's rules, postings, key populations."""
