"""HTTP routers of the registry: thin wrappers over the use cases and queries."""
