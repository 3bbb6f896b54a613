"""The fixtures themselves: a use case's commit inside the test's transaction behaves as a real commit does
(events written, unwritten events refused, deferred constraints checked), and the rollback leaves every
database exactly as it was, whatever the use cases committed."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.billing import models as bm
from services.billing.schemas import ClaimIn
from services.billing.usecases import claims
from services.referral.domain.rules import Direction, Policy
from services.referral.schemas import ReferralIn
from services.referral.usecases import referrals
from services.registry import models as rm
from services.registry.schemas import CommunityIn, ContractIn, ResidentIn
from services.registry.usecases import orgs, people
from shared.db import EventsNotWritten
from shared.errors import Conflict
from shared.principal import Principal, Role

from ..conftest import BILLING_NOW, NOW
from ..factories import COUNTY, TODAY, VAULT, BillingRows, RegistryRows, national_id, referral_county
from .rollback import TxDatabase, count_rows, rolled_back, table_counts


async def test_the_rollback_leaves_every_database_as_it_was(
    registry_uc_engine: AsyncEngine, referral_uc_engine: AsyncEngine, billing_uc_engine: AsyncEngine
) -> None:
    engines = {"registry": registry_uc_engine, "referral": referral_uc_engine, "billing": billing_uc_engine}
    before = {name: await table_counts(e) for name, e in engines.items()}

    async with (
        rolled_back(registry_uc_engine) as registry,
        rolled_back(referral_uc_engine) as referral,
        rolled_back(billing_uc_engine) as billing,
    ):
        # registry: a resident and their contract, each committed by its use case's unit of work
        reg_rows = RegistryRows(registry.session)
        team = await reg_rows.team()
        admin = Principal(subject="admin", role=Role.COMMISSION_ADMIN)
        body = ResidentIn(national_id=national_id(), name="赵居民", community_id=team.community_id)
        resident = await registry.run(lambda s: people.create_resident(s, VAULT, body))
        contract = ContractIn(resident_id=resident.id, team_id=team.id)
        await registry.run(lambda s: people.create_contract(s, contract, TODAY, admin))
        # referral: a submitted referral
        c = await referral_county(referral.session)
        sender = Principal(
            subject="vdoc", role=Role.VILLAGE_DOCTOR, institution_id=c.village.id, practitioner_id=None
        )
        referral_body = ReferralIn(
            direction=Direction.UP,
            resident_id=c.resident.id,
            from_institution_id=c.village.id,
            to_institution_id=c.hospital.id,
            diagnosis_icd10="J18.9",
            reason="肺炎",
            clinical_summary="发热三天",
        )
        await referral.run(lambda s: referrals.submit_referral(s, sender, referral_body, NOW, Policy()))
        # billing: a priced claim
        b = await BillingRows(billing.session).county()
        his = Principal(subject="his", role=Role.HIS_SYSTEM, institution_id=b.hospital.id)
        claim = ClaimIn(
            claim_no="C-1",
            institution_id=b.hospital.id,
            resident_id=b.resident.id,
            kind="outpatient",
            service_date=date(2030, 5, 1),
            diagnosis_icd10="J18.9",
            total_cost=1_000,
            eligible_cost=1_000,
        )
        await billing.run(lambda s: claims.ingest_claims(s, his, [claim], BILLING_NOW, detail=False))

        assert await registry.count("outbox") == 2 and await referral.count("outbox") == 4
        for name, db in {"registry": registry, "referral": referral, "billing": billing}.items():
            grew = [t for t in before[name] if await db.count(f'"{t}"') > before[name][t]]
            assert grew, f"{name}: the use cases wrote nothing?"
        # committed by the use cases, yet nothing is visible on any other connection
        assert {name: await table_counts(e) for name, e in engines.items()} == before
        assert await registry.count("contracts") == 1 and await billing.count("claims") == 1

    assert {name: await table_counts(e) for name, e in engines.items()} == before


async def test_each_test_starts_from_empty_tables(
    registry: TxDatabase, referral: TxDatabase, billing: TxDatabase
) -> None:
    """Nothing any test of this layer did is left (alembic_version aside, no table has a row)."""
    for db in (registry, referral, billing):
        counts = await count_rows(db.connection)
        assert counts and {table: n for table, n in counts.items() if n} == {}


async def test_events_committed_around_the_unit_of_work_are_refused(registry: TxDatabase) -> None:
    """The `EventsNotWritten` guard holds under the savepoint mode: the session's own transaction is not a
    nested one, so committing it with raised events is refused as in the service."""
    await RegistryRows(registry.session).region(COUNTY)
    body = CommunityIn(code="C-GUARD", name="医共体", county_code=COUNTY)

    async with registry.uow() as uow:
        await orgs.create_community(uow.session, body)  # raises registry.community.created
        with pytest.raises(EventsNotWritten):
            await uow.session.commit()

    assert await registry.count("communities") == 0
    assert await registry.outbox() == []


async def test_an_unbalanced_journal_fails_the_commit_as_it_would_in_production(billing: TxDatabase) -> None:
    """The ledger's balance check is a deferred constraint trigger: checked at COMMIT, which a savepoint
    release is not. The fixture's sessions check deferred constraints at every commit."""
    async with billing.uow() as uow:
        journal = bm.Journal(
            key=f"test:{uuid.uuid4()}", kind="test", county_code=COUNTY, year=2030, memo="m", posted_at=NOW
        )
        uow.session.add(journal)
        await uow.session.flush()
        uow.session.add(bm.LedgerLine(journal_id=journal.id, account="fund", amount=100))
        with pytest.raises(IntegrityError, match="does not balance"):
            await uow.commit()

    assert await billing.count("journals") == 0 and await billing.count("ledger_lines") == 0
    async with billing.uow() as uow:  # the test's transaction is still usable, and balanced ones commit
        journal = bm.Journal(
            key=f"test:{uuid.uuid4()}", kind="test", county_code=COUNTY, year=2030, memo="m", posted_at=NOW
        )
        uow.session.add(journal)
        await uow.session.flush()
        uow.session.add_all(
            [
                bm.LedgerLine(journal_id=journal.id, account="fund", amount=100),
                bm.LedgerLine(journal_id=journal.id, account="bank", amount=-100),
            ]
        )
        await uow.commit()
    assert await billing.count("ledger_lines") == 2


async def test_arranged_rows_survive_a_use_case_that_fails(registry: TxDatabase) -> None:
    """A failed use case rolls back its own savepoint only: what the test arranged before stays."""
    community = await RegistryRows(registry.session).community()
    body = CommunityIn(code=community.code, name="同码", county_code=COUNTY)

    with pytest.raises(Conflict) as caught:
        await registry.run(lambda s: orgs.create_community(s, body))

    assert caught.value.code == "duplicate-code"
    assert await registry.get(rm.Community, community.id) is not None
    assert await registry.count("communities") == 1
