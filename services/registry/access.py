"""Who may do what in the registry (defence in depth behind the gateway).

Reference data (regions, communities, institutions, practitioners, teams, catalogues) is readable by
anyone signed in and written only by the health commission. Residents and contracts are personal: staff
see and change those of their own community, a resident sees their own, the commission sees all.
An object outside the caller's reach is reported as not found, so its existence does not leak.
Plain Python: the use cases call these too; the routers' dependencies that apply them per request are in
`api/deps.py`.
"""

from __future__ import annotations

import uuid

from shared.errors import Forbidden, forbidden, not_found
from shared.principal import Principal, Role

PEOPLE_WRITERS = {Role.COMMISSION_ADMIN, Role.FAMILY_DOCTOR, Role.VILLAGE_DOCTOR, Role.HIS_SYSTEM}


def check_reference_data_writer(p: Principal) -> None:
    if p.role != Role.COMMISSION_ADMIN:
        raise forbidden("only the health commission changes reference data")


def check_rules_writer(p: Principal) -> None:
    """The county's registry rules (coverage targets, catalogue minimum, posting rules): the commission's."""
    if p.role != Role.COMMISSION_ADMIN:
        raise Forbidden(
            "commission-only",
            "仅卫健委管理员可修改本县的签约、目录和派驻规则",
            "only the health commission changes these rules",
        )


def check_people_writer(p: Principal) -> None:
    """Who may write residents and contracts at all (each object is checked later)."""
    if p.role not in PEOPLE_WRITERS:
        raise forbidden(f"a {p.role} cannot change residents or contracts")


def is_admin(p: Principal) -> bool:
    return p.role == Role.COMMISSION_ADMIN


def can_see(p: Principal, community_id: uuid.UUID, resident_id: uuid.UUID | None = None) -> bool:
    if is_admin(p):
        return True
    if p.role == Role.RESIDENT:
        return resident_id is not None and p.resident_id == resident_id
    return p.community_id is not None and p.community_id == community_id


def ensure_visible(
    p: Principal, community_id: uuid.UUID, resident_id: uuid.UUID | None, what: tuple[str, str], ident: object
) -> None:
    if not can_see(p, community_id, resident_id):
        raise not_found(what[0], what[1], ident)


def ensure_own_community(p: Principal, community_id: uuid.UUID) -> None:
    """A write naming a community: staff may only write into their own."""
    if not is_admin(p) and p.community_id != community_id:
        raise forbidden("you can only register residents and contracts of your own community")


def own_resident(p: Principal) -> uuid.UUID:
    if p.resident_id is None:
        raise forbidden("this resident token names no resident")
    return p.resident_id


def scope_community(p: Principal, requested: uuid.UUID | None) -> uuid.UUID | None:
    """The community a list is limited to: the caller's own unless they are the commission."""
    if is_admin(p):
        return requested
    if p.community_id is None:
        raise forbidden("this list is for staff of a community")
    if requested is not None and requested != p.community_id:
        raise forbidden("you can only list your own community")
    return p.community_id
