"""Residents (personal data sealed at rest, masked in responses, every clear read audited) and
their family-doctor contracts.

Sealed fields are bound to their resident and column (`resident_owner`); lookup hashes depend on the
key, so while an older key is still configured (`PII_OLD_KEYS`) lookups and the one-resident-per-ID
check try the hash under every key, and `reseal_residents` moves every row to the current key."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database, collect
from shared.errors import Conflict, Invalid
from shared.pii import HEADER_BYTES, PiiVault, mask_national_id, mask_phone, resident_owner
from shared.principal import Principal

from .. import events
from .. import models as m
from .. import repository as repo
from ..access import can_see, ensure_own_community, ensure_visible
from ..domain.contracts import (
    ContractStatus,
    check_new_contract,
    check_termination,
    contract_term,
    key_populations,
    renewal_term,
)
from ..domain.national_id import parse_national_id
from ..schemas import (
    ContractIn,
    ContractOut,
    RenewalIn,
    ResidentIdentityOut,
    ResidentIn,
    ResidentOut,
    ResidentPatch,
    TerminationIn,
)
from .lifecycle import deactivate

RESIDENT, CONTRACT = ("居民", "resident"), ("签约", "contract")


async def audit_pii(
    s: AsyncSession,
    actor: str,
    request_id: str | None,
    action: str,
    resident_id: uuid.UUID | None,
    outcome: str,
) -> None:
    s.add(
        m.PiiAccess(
            actor=actor, request_id=request_id, action=action, resident_id=resident_id, outcome=outcome
        )
    )
    await s.flush()


def _seal_phone(vault: PiiVault, r: m.Resident, phone: str | None) -> None:
    r.phone_hash = vault.lookup_hash(phone) if phone else None
    r.phone_sealed = vault.seal(phone, resident_owner(r.id, "phone")) if phone else None
    r.phone_masked = mask_phone(phone) if phone else None


async def create_resident(s: AsyncSession, vault: PiiVault, body: ResidentIn) -> ResidentOut:
    nid = parse_national_id(body.national_id)
    await repo.get_referenced(s, m.Community, body.community_id, "community_id")
    if body.home_institution_id:
        home = await repo.get_referenced(s, m.Institution, body.home_institution_id, "home_institution_id")
        if home.community_id != body.community_id:
            raise Invalid(
                "home-other-community",
                "签约机构须属于居民所在医共体",
                "The home institution must belong to the resident's community",
            )
    hashes = vault.lookup_hashes(nid.number)
    if await s.scalar(sa.select(m.Resident.id).where(m.Resident.national_id_hash.in_(hashes))):
        raise Conflict("resident-exists", "该身份证号的居民已建档", "A resident with this national ID exists")
    rid = m.new_id()  # known before sealing: the ciphertext is bound to it
    r = m.Resident(
        id=rid,
        national_id_hash=vault.lookup_hash(nid.number),
        national_id_sealed=vault.seal(nid.number, resident_owner(rid, "national_id")),
        national_id_masked=mask_national_id(nid.number),
        name=body.name,
        gender=nid.gender,
        birth_date=nid.birth_date,
        region_code=nid.region_code,
        community_id=body.community_id,
        home_institution_id=body.home_institution_id,
        key_populations=body.key_populations,
    )
    _seal_phone(vault, r, body.phone)
    s.add(r)
    await s.flush()
    return await _resident_changed(s, r, "created")


async def update_resident(
    s: AsyncSession, vault: PiiVault, ident: uuid.UUID, body: ResidentPatch, caller: Principal
) -> ResidentOut:
    r = await repo.get(s, m.Resident, ident, for_update=True)
    ensure_visible(caller, r.community_id, None, RESIDENT, ident)
    repo.check_version(r, body.version)
    changes = body.model_dump(exclude_unset=True, exclude={"version", "phone"})
    if changes.get("home_institution_id"):
        home = await repo.get_referenced(
            s, m.Institution, changes["home_institution_id"], "home_institution_id"
        )
        if home.community_id != r.community_id:
            raise Invalid(
                "home-other-community",
                "签约机构须属于居民所在医共体",
                "The home institution must belong to the resident's community",
            )
    for key, value in changes.items():
        setattr(r, key, value)
    if "phone" in body.model_fields_set:
        _seal_phone(vault, r, body.phone)
    await s.flush()
    return await _resident_changed(s, r, "updated")


async def deactivate_resident(s: AsyncSession, ident: uuid.UUID, caller: Principal) -> ResidentOut:
    def visible(r: m.Resident) -> None:
        ensure_visible(caller, r.community_id, None, RESIDENT, ident)

    return await deactivate(s, m.Resident, ident, _resident_changed, visible)


async def _resident_changed(s: AsyncSession, r: m.Resident, action: str) -> ResidentOut:
    """Raise the resident's event (what consumers need of them, no name) and answer with their view."""
    collect(s, events.resident(action, r))
    return ResidentOut.model_validate(r)


async def reveal_identity(
    s: AsyncSession, vault: PiiVault, ident: uuid.UUID, caller: Principal, request_id: str | None
) -> ResidentIdentityOut | None:
    """The clear national ID and phone, or None (unknown, or not the caller's to see); audited either way."""
    r = await s.get(m.Resident, ident)
    visible = r is not None and can_see(caller, r.community_id, r.id)
    outcome = "ok" if visible else ("not_found" if r is None else "denied")
    await audit_pii(s, caller.subject, request_id, "reveal_identity", ident, outcome)
    if r is None or not visible:
        return None
    phone = vault.open(r.phone_sealed, resident_owner(r.id, "phone")) if r.phone_sealed else None
    national_id = vault.open(r.national_id_sealed, resident_owner(r.id, "national_id"))
    return ResidentIdentityOut(id=r.id, national_id=national_id, phone=phone)


class ResealError(RuntimeError):
    """A resident's value opens under no configured key: the key that sealed it is missing."""


async def reseal_residents(db: Database, vault: PiiVault, batch: int = 500) -> int:
    """Re-seal every resident's national ID and phone under the current key and recompute their lookup
    hashes, `batch` residents per transaction in id order. Only rows not yet under the current key are
    read, so it is idempotent and a restart resumes where it stopped. Version and updated_at stay:
    nothing a client sees changes. Returns how many residents moved."""
    t = cast(sa.Table, m.Resident.__table__)
    header = vault.current_header

    def stale(col: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        return sa.and_(col.is_not(None), sa.func.substr(col, 1, HEADER_BYTES) != header)

    moved, after = 0, uuid.UUID(int=0)
    while True:
        async with db.uow() as uow:
            rows = (
                await uow.session.execute(
                    sa.select(t.c.id, t.c.national_id_sealed, t.c.phone_sealed)
                    .where(t.c.id > after, sa.or_(stale(t.c.national_id_sealed), stale(t.c.phone_sealed)))
                    .order_by(t.c.id)
                    .limit(batch)
                    .with_for_update()
                )
            ).all()
            if not rows:
                return moved
            changes = [_resealed(vault, rid, nid, phone) for rid, nid, phone in rows]
            await uow.session.execute(
                sa.update(t)
                .where(t.c.id == sa.bindparam("rid"))
                .values(
                    national_id_sealed=sa.bindparam("nid_sealed"),
                    national_id_hash=sa.bindparam("nid_hash"),
                    phone_sealed=sa.bindparam("phone_sealed"),
                    phone_hash=sa.bindparam("phone_hash"),
                    updated_at=t.c.updated_at,
                ),
                changes,
            )
            await uow.commit()
        moved += len(rows)
        after = rows[-1].id


def _resealed(
    vault: PiiVault, rid: uuid.UUID, nid_sealed: bytes, phone_sealed: bytes | None
) -> dict[str, Any]:
    try:
        nid = vault.open(nid_sealed, resident_owner(rid, "national_id"))
        phone = vault.open(phone_sealed, resident_owner(rid, "phone")) if phone_sealed else None
    except ValueError:
        raise ResealError(
            f"resident {rid}: no configured key opens its data; add the key that sealed it to PII_OLD_KEYS"
        ) from None
    return {
        "rid": rid,
        "nid_sealed": vault.seal(nid, resident_owner(rid, "national_id")),
        "nid_hash": vault.lookup_hash(nid),
        "phone_sealed": vault.seal(phone, resident_owner(rid, "phone")) if phone else None,
        "phone_hash": vault.lookup_hash(phone) if phone else None,
    }


async def create_contract(s: AsyncSession, body: ContractIn, today: date, caller: Principal) -> ContractOut:
    resident = await repo.get_referenced(s, m.Resident, body.resident_id, "resident_id")
    ensure_own_community(caller, resident.community_id)
    await s.execute(sa.select(m.Resident.id).where(m.Resident.id == resident.id).with_for_update())
    team = await repo.get_referenced(s, m.Team, body.team_id, "team_id")
    check_new_contract(
        await repo.has_active_contract(s, resident.id),
        resident.active,
        team.active,
        team.community_id == resident.community_id,
    )
    start = body.start_date or today
    term = contract_term(start)
    c = m.Contract(
        resident_id=resident.id,
        team_id=team.id,
        community_id=team.community_id,
        start_date=term.start,
        end_date=term.end,
        status=ContractStatus.ACTIVE,
        key_populations=sorted(key_populations(resident.birth_date, set(resident.key_populations), start)),
    )
    s.add(c)
    await s.flush()
    collect(s, events.contract("signed", c))
    return ContractOut.model_validate(c)


async def renew_contract(
    s: AsyncSession, ident: uuid.UUID, body: RenewalIn, today: date, caller: Principal
) -> ContractOut:
    old = await repo.get(s, m.Contract, ident, for_update=True)
    ensure_visible(caller, old.community_id, None, CONTRACT, ident)
    repo.check_version(old, body.version)
    term = renewal_term(ContractStatus(old.status), old.end_date, today)
    resident = await repo.get_referenced(s, m.Resident, old.resident_id, "resident_id")
    old.status = ContractStatus.RENEWED
    await s.flush()
    new = m.Contract(
        resident_id=old.resident_id,
        team_id=old.team_id,
        community_id=old.community_id,
        start_date=term.start,
        end_date=term.end,
        status=ContractStatus.ACTIVE,
        previous_contract_id=old.id,
        key_populations=sorted(
            key_populations(resident.birth_date, set(resident.key_populations), term.start)
        ),
    )
    s.add(new)
    await s.flush()
    collect(s, events.contract("renewed", old), events.contract("signed", new))
    return ContractOut.model_validate(new)


async def terminate_contract(
    s: AsyncSession, ident: uuid.UUID, body: TerminationIn, caller: Principal
) -> ContractOut:
    c = await repo.get(s, m.Contract, ident, for_update=True)
    ensure_visible(caller, c.community_id, None, CONTRACT, ident)
    repo.check_version(c, body.version)
    check_termination(ContractStatus(c.status), body.reason)
    c.status = ContractStatus.TERMINATED
    c.terminated_at = datetime.now(UTC)
    c.termination_reason = body.reason
    await s.flush()
    collect(s, events.contract("terminated", c))
    return ContractOut.model_validate(c)
