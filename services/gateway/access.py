"""Who may do what at the gateway: the health commission administers it (clients, users, signing keys,
the audit log), and a routed call is allowed to the roles its policy rule names
(`domain/policy.py`). Plain Python: raises `Forbidden`; the routers in `api/` call these."""

from __future__ import annotations

from shared.errors import forbidden
from shared.principal import Principal, Role

from .domain.policy import Rule


def check_gateway_admin(p: Principal) -> None:
    if p.role != Role.COMMISSION_ADMIN:
        raise forbidden("only the health commission administers the gateway")


def check_route(p: Principal, rule: Rule) -> None:
    """A routed call: the caller's role must be one the matched rule allows."""
    if p.role not in rule.roles:
        raise forbidden(f"a {p.role} may not call this endpoint")
