"""Registry use cases called directly, in a unit of work on the real database (rolled back after each
test): the rows they write, the one event per change they leave in the outbox, and the domain error that
leaves nothing written."""

from __future__ import annotations

import base64
from datetime import date, timedelta

import pytest

from services.registry import models as m
from services.registry.schemas import ContractIn, PostingIn, ResidentIn, TeamIn
from services.registry.usecases import county_rules, people, workforce
from shared.contracts import decode
from shared.contracts import registry as reg
from shared.county_policy import PolicyChangeIn
from shared.errors import Conflict, Forbidden, Invalid
from shared.pii import PiiVault, resident_owner
from shared.principal import Principal, Role

from ..conftest import NOW, TEST_PII_KEY
from ..factories import COUNTY, TODAY, VAULT, RegistryRows, national_id
from .rollback import TxDatabase

ADMIN = Principal(subject="commission-admin", role=Role.COMMISSION_ADMIN)


async def test_creating_a_resident_writes_the_row_and_one_nameless_event(registry: TxDatabase) -> None:
    community = await RegistryRows(registry.session).community()
    nid = national_id(date(1950, 5, 1))
    body = ResidentIn(national_id=nid, name="赵居民", phone="13812345678", community_id=community.id)

    out = await registry.run(lambda s: people.create_resident(s, VAULT, body))

    row = await registry.get(m.Resident, out.id)
    assert row is not None and row.name == "赵居民" and row.birth_date == date(1950, 5, 1)
    assert row.national_id_hash == VAULT.lookup_hash(nid)
    assert VAULT.open(row.national_id_sealed, resident_owner(row.id, "national_id")) == nid
    assert out.national_id_masked == row.national_id_masked != nid
    [written] = await registry.outbox()
    assert (written.topic, written.key) == (reg.RESIDENTS.topic, str(out.id))
    assert written.event.type == "registry.resident.created"
    assert set(written.event.data) == set(reg.Resident.model_fields)
    assert "name" not in written.event.data and nid not in str(written.event.data)
    assert isinstance(decode(written.event), reg.Resident)  # what consumers will read


async def test_a_second_resident_with_the_same_national_id_is_a_conflict_and_writes_nothing(
    registry: TxDatabase,
) -> None:
    reg_rows = RegistryRows(registry.session)
    first = await reg_rows.resident()
    nid = VAULT.open(first.national_id_sealed, resident_owner(first.id, "national_id"))
    body = ResidentIn(national_id=nid, name="重名", community_id=first.community_id)

    with pytest.raises(Conflict) as caught:
        await registry.run(lambda s: people.create_resident(s, VAULT, body))

    assert caught.value.code == "resident-exists"
    assert await registry.count("residents") == 1
    assert await registry.outbox() == []


async def test_a_home_institution_of_another_community_is_invalid_and_writes_nothing(
    registry: TxDatabase,
) -> None:
    reg_rows = RegistryRows(registry.session)
    community = await reg_rows.community()
    elsewhere = await reg_rows.institution(await reg_rows.community(), "village", departments=())
    body = ResidentIn(
        national_id=national_id(), name="赵居民", community_id=community.id, home_institution_id=elsewhere.id
    )

    with pytest.raises(Invalid) as caught:
        await registry.run(lambda s: people.create_resident(s, VAULT, body))

    assert caught.value.code == "home-other-community"
    assert await registry.count("residents") == 0
    assert await registry.outbox() == []


async def test_signing_a_contract_then_a_second_one_is_refused(registry: TxDatabase) -> None:
    reg_rows = RegistryRows(registry.session)
    resident = await reg_rows.resident(birth=date(1950, 5, 1))
    community = await registry.get(m.Community, resident.community_id)
    team = await reg_rows.team(community)
    body = ContractIn(resident_id=resident.id, team_id=team.id)

    signed = await registry.run(lambda s: people.create_contract(s, body, TODAY, ADMIN))

    assert (signed.status, signed.start_date) == ("active", TODAY)
    assert "elderly" in signed.key_populations  # 75 on the day they sign
    [event] = await registry.outbox()
    assert event.event.type == "registry.contract.signed" and event.key == str(signed.id)

    with pytest.raises(Conflict) as caught:
        await registry.run(lambda s: people.create_contract(s, body, TODAY, ADMIN))
    assert caught.value.code == "contract-already-active"
    assert await registry.count("contracts") == 1
    assert len(await registry.outbox()) == 1


async def test_a_team_led_by_a_practitioner_who_is_no_gp_is_invalid(registry: TxDatabase) -> None:
    reg_rows = RegistryRows(registry.session)
    community = await reg_rows.community()
    township = await reg_rows.institution(community, "township")
    not_gp = await reg_rows.practitioner(township, general_practitioner=False)
    body = TeamIn(
        code="TEAM-X",
        name="一队",
        community_id=community.id,
        institution_id=township.id,
        lead_practitioner_id=not_gp.id,
    )

    with pytest.raises(Invalid) as caught:
        await registry.run(lambda s: workforce.create_team(s, body))

    assert caught.value.code == "lead-not-gp"
    assert await registry.count("teams") == 0 and await registry.count("team_members") == 0


async def test_resealing_runs_its_own_units_of_work_on_the_test_database(registry: TxDatabase) -> None:
    """A use case that takes the Database (not a session) gets the fixture's: its units of work commit
    savepoints on the test's connection, batch after batch."""
    reg_rows = RegistryRows(registry.session)
    residents = [await reg_rows.resident(phone="13812345678") for _ in range(3)]
    rotated = PiiVault(base64.b64encode(b"k" * 32).decode(), [TEST_PII_KEY])

    assert await people.reseal_residents(registry, rotated, batch=2) == 3
    assert await people.reseal_residents(registry, rotated, batch=2) == 0  # nothing left under the old key

    for r in residents:
        row = await registry.get(m.Resident, r.id)
        assert row is not None and row.national_id_sealed[: len(rotated.current_header)] == (
            rotated.current_header
        )
        assert rotated.open(row.phone_sealed or b"", resident_owner(r.id, "phone")) == "13812345678"


async def test_a_settings_change_is_a_new_version_and_a_refused_one_writes_nothing(
    registry: TxDatabase,
) -> None:
    """The county's rules are not an event (no other service applies them): a version row, nothing else."""
    await RegistryRows(registry.session).region()
    change = PolicyChangeIn(changes={"posting_min_months": 12}, reason="县卫健委 2026 第 5 号文")

    out = await registry.run(lambda s: county_rules.change_settings(s, ADMIN, COUNTY, change, NOW))

    assert (out.version, out.changed, out.changed_by) == (1, {"posting_min_months": 12}, ADMIN.subject)
    assert await registry.count("county_policies") == 1 and await registry.outbox() == []
    nonsense = PolicyChangeIn(
        changes={"posting_min_months": 12, "coverage_target_residents": "2"}, reason="x"
    )
    with pytest.raises(Invalid) as caught:
        await registry.run(lambda s: county_rules.change_settings(s, ADMIN, COUNTY, nonsense, NOW))
    assert caught.value.code == "bad-setting"
    doctor = Principal(subject="doctor-1", role=Role.FAMILY_DOCTOR)
    with pytest.raises(Forbidden):
        await registry.run(lambda s: county_rules.change_settings(s, doctor, COUNTY, change, NOW))
    assert await registry.count("county_policies") == 1


async def test_a_posting_is_checked_against_the_rules_in_force_when_it_is_recorded(
    registry: TxDatabase,
) -> None:
    reg_rows = RegistryRows(registry.session)
    community = await reg_rows.community()
    hospital, township = (
        await reg_rows.institution(community),
        await reg_rows.institution(community, "township"),
    )
    first, second = await reg_rows.practitioner(hospital), await reg_rows.practitioner(hospital)
    year = PolicyChangeIn(changes={"posting_min_months": 12}, reason="至少一年")
    await registry.run(lambda s: county_rules.change_settings(s, ADMIN, COUNTY, year, NOW))
    six_months = PostingIn(
        host_institution_id=township.id, start_date=date(2026, 3, 1), end_date=date(2026, 9, 1)
    )

    before = await registry.run(
        lambda s: workforce.add_posting(s, first.id, six_months, NOW - timedelta(days=1))
    )
    assert [(p.kind, p.role) for p in before.postings] == [("resident", "physician")]
    with pytest.raises(Invalid) as caught:
        await registry.run(lambda s: workforce.add_posting(s, second.id, six_months, NOW))
    assert caught.value.code == "posting-too-short" and "12" in caught.value.zh
    assert await registry.count("postings") == 1
