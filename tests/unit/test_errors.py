"""The one error model: domain errors carry no HTTP, and `shared.problems` maps each kind to the same
problem+json clients got before (type URL, status, "zh / en" title, detail and extra fields)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response

from services.billing.domain.disputes import DisputeStatus, decided_amount
from services.billing.schemas import ClaimIn
from services.billing.usecases.claims import BatchErrors
from services.referral.domain.states import Action, Side, Status, next_status
from services.registry.domain.contracts import check_new_contract
from shared.crud import check_version
from shared.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, forbidden, not_found
from shared.problems import PROBLEM_JSON, TYPE_BASE, install_problem_handlers, problem_of

KINDS = [(NotFound, 404), (Conflict, 409), (Forbidden, 403), (Invalid, 422)]


@pytest.mark.parametrize(("kind", "status"), KINDS)
def test_every_kind_maps_to_its_status_type_and_title(kind: type[DomainError], status: int) -> None:
    body = problem_of(kind("some-rule", "规则", "The rule", "which one", extra_field=7)).body("/x")
    assert body == {
        "type": TYPE_BASE + "some-rule",
        "title": "规则 / The rule",
        "status": status,
        "title_zh": "规则",
        "title_en": "The rule",
        "detail": "which one",
        "instance": "/x",
        "extra_field": 7,
    }


def test_a_subclass_maps_as_its_kind_and_a_bare_domain_error_is_a_bug() -> None:
    class Closed(Conflict):
        pass

    assert problem_of(Closed("closed", "已关闭", "Closed")).status == 409
    assert problem_of(DomainError("no-kind", "无", "None")).status == 500


async def raising(error: Any) -> Response:
    """A tiny app whose one route runs `error` (a callable that raises), as a use case would."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/thing")
    async def thing() -> None:
        error()

    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
        return await client.get("/thing")


def refuse_contract() -> None:
    check_new_contract(has_active=True, resident_active=True, team_active=True, same_community=True)


def refuse_step() -> None:
    next_status(Status.SUBMITTED, Action.ACCEPT, {Side.SENDER})


def refuse_batch() -> None:
    errors = BatchErrors()
    errors.add(0, cast(ClaimIn, SimpleNamespace(claim_no="C1")), "period-closed", "结算期已关闭", "closed")
    errors.add(3, cast(ClaimIn, SimpleNamespace(claim_no="C4")), "period-closed", "结算期已关闭", "closed")
    errors.raise_if_any()


def raise_(error: DomainError) -> Any:
    def run() -> None:
        raise error

    return run


def problem(slug: str, status: int, zh: str, en: str, **rest: Any) -> dict[str, Any]:
    """The body as `Problem(status, slug, zh, en, ...)` wrote it before domain errors existed."""
    return {
        "type": TYPE_BASE + slug,
        "title": f"{zh} / {en}",
        "status": status,
        "title_zh": zh,
        "title_en": en,
        "instance": "/thing",
        **rest,
    }


CASES = [
    (
        refuse_contract,
        problem(
            "contract-already-active",
            409,
            "该居民已有有效签约",
            "The resident already has an active contract",
        ),
    ),
    (
        refuse_step,
        problem(
            "not-your-referral-step",
            403,
            "当前用户不能对此转诊执行“accept”",
            "You may not accept this referral",
        ),
    ),
    (
        lambda: decided_amount(DisputeStatus.ADJUSTED, 1, 2, None),
        problem(
            "bad-decision",
            422,
            "裁决须给出调整后金额或分值",
            "an adjusted decision needs the agreed amount (fen ≥ 0)",
        ),
    ),
    (
        lambda: check_version(SimpleNamespace(version=3), 2),
        problem(
            "stale-version",
            409,
            "数据已被他人修改，请刷新后重试",
            "The record changed since you read it; reload and retry",
            current_version=3,
        ),
    ),
    (
        raise_(not_found("转诊", "Referral", "r-1")),
        problem("not-found", 404, "转诊不存在", "Referral not found", detail="Referral r-1"),
    ),
    (
        raise_(forbidden("only the agency")),
        problem("forbidden", 403, "无权执行此操作", "only the agency"),
    ),
    (
        refuse_batch,
        problem(
            "period-closed",
            409,
            "2 条结算单被拒绝，整批未写入",
            "2 claim(s) refused; nothing in the batch was stored",
            errors=[
                {
                    "index": i,
                    "claim_no": no,
                    "type": TYPE_BASE + "period-closed",
                    "slug": "period-closed",
                    "title_zh": "结算期已关闭",
                    "title_en": "closed",
                }
                for i, no in ((0, "C1"), (3, "C4"))
            ],
        ),
    ),
]


@pytest.mark.parametrize(("error", "expected"), CASES)
async def test_a_use_case_error_is_answered_as_before(error: Any, expected: dict[str, Any]) -> None:
    response = await raising(error)
    assert response.status_code == expected["status"]
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json() == expected


def test_a_batch_refused_for_several_reasons_is_invalid() -> None:
    errors = BatchErrors()
    errors.add(0, cast(ClaimIn, SimpleNamespace(claim_no="C1")), "period-closed", "结算期已关闭", "closed")
    errors.add(1, cast(ClaimIn, SimpleNamespace(claim_no="C2")), "dip-needed", "须有 DIP", "DIP needed")
    with pytest.raises(Invalid) as err:
        errors.raise_if_any()
    assert err.value.code == "claims-rejected" and len(err.value.items) == 2
