"""Who may do what in billing (defence in depth behind the gateway).

The insurance agency runs billing (parameters, budgets, prepayments, month closes, the settlement,
dispute decisions); it and the health commission read the figures. A hospital's HIS posts its own
institution's claims and sees them; the treating institution or the charged community's lead
institution opens a dispute and sees those it is party to. A claim outside the caller's reach is
reported as not found, so its existence does not leak.
Plain Python: the use cases and queries call these; the routers only pass the caller on.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable

from shared.errors import forbidden, not_found
from shared.principal import Principal, Role

OFFICERS = {Role.INSURANCE_OFFICER}
READERS = {Role.INSURANCE_OFFICER, Role.COMMISSION_ADMIN}


def check_officer(p: Principal) -> None:
    if p.role not in OFFICERS:
        raise forbidden("only an insurance officer runs billing", "仅医保经办人员可执行此操作")


def check_reader(p: Principal) -> None:
    if p.role not in READERS:
        raise forbidden(
            "billing figures are for the insurance agency and the health commission",
            "仅医保经办机构与卫健委可查看",
        )


def check_claim_sender(p: Principal, institution_ids: Iterable[uuid.UUID]) -> uuid.UUID:
    """Claims come from a hospital's HIS, for its own institution only; returns that institution."""
    if p.role != Role.HIS_SYSTEM or p.institution_id is None:
        raise forbidden("claims come from a hospital's HIS system", "结算单须由医疗机构 HIS 系统提交")
    if any(i != p.institution_id for i in institution_ids):
        raise forbidden("a HIS system posts claims of its own institution only", "HIS 只能提交本机构的结算单")
    return p.institution_id


def scope_claims(p: Principal, requested: uuid.UUID | None) -> uuid.UUID | None:
    """The institution a claims list is limited to: any (as asked) for the agency and the commission,
    its own for a HIS."""
    if p.role in READERS:
        return requested
    if p.role != Role.HIS_SYSTEM or p.institution_id is None:
        raise forbidden(
            "claims are for the agency, the commission and the institution's HIS", "无权查看结算单"
        )
    return p.institution_id


def ensure_claim_visible(p: Principal, claim_id: uuid.UUID, institution_id: uuid.UUID) -> None:
    if p.role not in READERS and p.institution_id != institution_id:
        raise not_found("结算单", "claim", claim_id)


def check_dispute_opener(p: Principal, parties: Collection[uuid.UUID]) -> None:
    """`parties`: the treating institution and the charged community's lead institution."""
    if p.role != Role.HIS_SYSTEM or p.institution_id not in parties:
        raise forbidden(
            "only the treating institution or the charged community's lead institution may dispute",
            "仅就诊机构或被扣费医共体的牵头医院可提出争议",
        )


def scope_disputes(p: Principal) -> uuid.UUID | None:
    """The institution a disputes list is limited to: none (all) for the agency and the commission, its
    own for a HIS."""
    if p.role in READERS:
        return None
    if p.role == Role.HIS_SYSTEM and p.institution_id:
        return p.institution_id
    raise forbidden("disputes are for the agency and the institutions involved", "无权查看争议")
