"""Gateway: the single public entry — tokens, JWKS, role checks, routing, audit, one OpenAPI."""
