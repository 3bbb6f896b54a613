"""Practitioners, their postings (下沉帮扶: physicians, nurses, CDC and other staff; resident or rotating)
and family-doctor teams."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import collect
from shared.errors import Conflict, Invalid

from .. import events
from .. import models as m
from .. import repository as repo
from ..domain.postings import DEFAULT_ROLE, PostingKind, Staff, Term, Weekday, check_posting, week_order
from ..domain.practitioners import Profession, Title, check_practitioner
from ..schemas import (
    PostingIn,
    PostingOut,
    PractitionerIn,
    PractitionerOut,
    PractitionerPatch,
    TeamIn,
    TeamMemberIn,
    TeamMemberOut,
    TeamOut,
    TeamPatch,
)
from . import county_rules
from .lifecycle import deactivate


def _practitioner_view(p: m.Practitioner, postings: list[m.Posting]) -> PractitionerOut:
    out = PractitionerOut.model_validate(p)
    out.postings = [PostingOut.model_validate(x) for x in postings]
    return out


async def practitioner_out(s: AsyncSession, p: m.Practitioner) -> PractitionerOut:
    return _practitioner_view(p, (await repo.postings_of(s, [p.id]))[p.id])


async def _practitioner_changed(s: AsyncSession, p: m.Practitioner, action: str) -> PractitionerOut:
    """Raise the practitioner's event (with the postings) and answer with their view."""
    postings = (await repo.postings_of(s, [p.id]))[p.id]
    collect(s, events.practitioner(action, p, postings))
    return _practitioner_view(p, postings)


def _check_practitioner(p: m.Practitioner | PractitionerIn) -> None:
    check_practitioner(Profession(p.profession), Title(p.title), p.general_practitioner)


async def create_practitioner(s: AsyncSession, body: PractitionerIn) -> PractitionerOut:
    _check_practitioner(body)
    await repo.get_referenced(s, m.Institution, body.institution_id, "institution_id")
    if await s.scalar(sa.select(m.Practitioner.id).where(m.Practitioner.licence_no == body.licence_no)):
        raise Conflict("duplicate-code", "执业证号已存在", "A practitioner with this licence number exists")
    p = m.Practitioner(**body.model_dump())
    s.add(p)
    await s.flush()
    return await _practitioner_changed(s, p, "created")


async def update_practitioner(s: AsyncSession, ident: uuid.UUID, body: PractitionerPatch) -> PractitionerOut:
    p = await repo.get(s, m.Practitioner, ident, for_update=True)
    repo.check_version(p, body.version)
    changes = body.model_dump(exclude_unset=True, exclude={"version"})
    if "institution_id" in changes:
        await repo.get_referenced(s, m.Institution, changes["institution_id"], "institution_id")
    for key, value in changes.items():
        setattr(p, key, value)
    _check_practitioner(p)  # the title on the (possibly new) profession's ladder
    await s.flush()
    return await _practitioner_changed(s, p, "updated")


async def deactivate_practitioner(s: AsyncSession, ident: uuid.UUID) -> PractitionerOut:
    return await deactivate(s, m.Practitioner, ident, _practitioner_changed)


def _term(kind: str, start: date, end: date, weekdays: Iterable[str]) -> Term:
    return Term(PostingKind(kind), start, end, frozenset(Weekday(d) for d in weekdays))


async def add_posting(s: AsyncSession, ident: uuid.UUID, body: PostingIn, now: datetime) -> PractitionerOut:
    """Checked against the practitioner's postings and the rules in force now in the host's county."""
    p = await repo.get(s, m.Practitioner, ident, for_update=True)
    host = await repo.get_referenced(s, m.Institution, body.host_institution_id, "host_institution_id")
    rules = (await county_rules.rules_for(s, host.region_code, now)).settings
    staff = Staff(Profession(p.profession), Title(p.title), p.institution_id)
    role = body.role or DEFAULT_ROLE[staff.profession]
    term = _term(body.kind, body.start_date, body.end_date, body.weekdays)
    existing = [
        _term(x.kind, x.start_date, x.end_date, x.weekdays) for x in (await repo.postings_of(s, [p.id]))[p.id]
    ]
    check_posting(staff, role, host.id, term, existing, rules.posting_rules())
    s.add(
        m.Posting(
            practitioner_id=p.id,
            host_institution_id=host.id,
            kind=term.kind,
            role=role,
            start_date=term.start,
            end_date=term.end,
            weekdays=week_order(term.weekdays),
        )
    )
    p.updated_at = sa.func.now()  # an UPDATE bumps the aggregate version
    await s.flush()
    await s.refresh(p)
    return await _practitioner_changed(s, p, "updated")


def _team_view(t: m.Team, members: list[m.TeamMember]) -> TeamOut:
    out = TeamOut.model_validate(t)
    out.members = [TeamMemberOut.model_validate(x) for x in members]
    return out


async def team_out(s: AsyncSession, t: m.Team) -> TeamOut:
    return _team_view(t, (await repo.members_of(s, [t.id]))[t.id])


async def _team_changed(s: AsyncSession, t: m.Team, action: str) -> TeamOut:
    """Raise the team's event (with its members) and answer with its view."""
    members = (await repo.members_of(s, [t.id]))[t.id]
    collect(s, events.team(action, t, members))
    return _team_view(t, members)


async def _check_team(
    s: AsyncSession, community_id: uuid.UUID, lead_id: uuid.UUID, members: list[TeamMemberIn]
) -> None:
    lead = await repo.get_referenced(s, m.Practitioner, lead_id, "lead_practitioner_id")
    if not lead.general_practitioner:
        raise Invalid(
            "lead-not-gp", "团队长须为全科医生", "A family-doctor team is led by a general practitioner"
        )
    ids = [x.practitioner_id for x in members]
    if len(ids) != len(set(ids)) or lead_id in ids:
        raise Invalid("duplicate-member", "团队成员重复", "A practitioner appears twice in the team")
    for pid in ids:
        await repo.get_referenced(s, m.Practitioner, pid, "members.practitioner_id")
    await repo.get_referenced(s, m.Community, community_id, "community_id")


async def _set_members(
    s: AsyncSession, team_id: uuid.UUID, lead_id: uuid.UUID, members: list[TeamMemberIn]
) -> None:
    await s.execute(sa.delete(m.TeamMember).where(m.TeamMember.team_id == team_id))
    s.add(m.TeamMember(team_id=team_id, practitioner_id=lead_id, role="lead"))
    s.add_all([m.TeamMember(team_id=team_id, **x.model_dump()) for x in members])


async def create_team(s: AsyncSession, body: TeamIn) -> TeamOut:
    await _check_team(s, body.community_id, body.lead_practitioner_id, body.members)
    inst = await repo.get_referenced(s, m.Institution, body.institution_id, "institution_id")
    if inst.community_id != body.community_id:
        raise Invalid(
            "team-institution-community",
            "团队所在机构须属于该医共体",
            "The team's institution must belong to the team's community",
        )
    if await s.scalar(sa.select(m.Team.id).where(m.Team.code == body.code)):
        raise Conflict("duplicate-code", "团队编码已存在", "A team with this code exists")
    t = m.Team(**body.model_dump(exclude={"members"}))
    s.add(t)
    await s.flush()
    await _set_members(s, t.id, t.lead_practitioner_id, body.members)
    await s.flush()
    return await _team_changed(s, t, "created")


async def update_team(s: AsyncSession, ident: uuid.UUID, body: TeamPatch) -> TeamOut:
    t = await repo.get(s, m.Team, ident, for_update=True)
    repo.check_version(t, body.version)
    lead_id = body.lead_practitioner_id or t.lead_practitioner_id
    if body.members is not None or body.lead_practitioner_id is not None:
        current = [
            TeamMemberIn(practitioner_id=x.practitioner_id, role=x.role)
            for x in (await repo.members_of(s, [t.id]))[t.id]
            if x.role != "lead"
        ]
        members = (
            body.members if body.members is not None else [x for x in current if x.practitioner_id != lead_id]
        )
        await _check_team(s, t.community_id, lead_id, members)
        t.lead_practitioner_id = lead_id
        await _set_members(s, t.id, lead_id, members)
    if body.name is not None:
        t.name = body.name
    t.updated_at = sa.func.now()
    await s.flush()
    await s.refresh(t)
    return await _team_changed(s, t, "updated")


async def deactivate_team(s: AsyncSession, ident: uuid.UUID) -> TeamOut:
    return await deactivate(s, m.Team, ident, _team_changed)
