"""Pricing a batch of claims: the per-claim rule (claims.insurance_share) applied in order, carrying the
deductible met along each referral chain (in all, and on each leg of an up-and-down episode) from one
claim to the next."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from .claims import ClaimInput, Leg, insurance_share
from .parameters import YearParameters

FOUR = Decimal("0.0001")


@dataclass(frozen=True)
class ClaimFacts:
    """What the service looked up about one claim."""

    tier: str
    kind: str
    eligible_cost: int
    grassroots_disease: bool
    referred: bool
    chain_id: str | None
    dip_points: Decimal | None
    leg: Leg = Leg.NONE


@dataclass
class Met:
    """The deductible already met along each chain: in all, and per (chain, leg)."""

    total: dict[str, int] = field(default_factory=dict)
    in_leg: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, chain: str, leg: str, fen: int) -> None:
        self.total[chain] = self.total.get(chain, 0) + fen
        self.in_leg[(chain, leg)] = self.in_leg.get((chain, leg), 0) + fen


@dataclass(frozen=True)
class Priced:
    deductible_used: int
    ratio: Decimal
    insurance_share: int
    weighted_points: Decimal | None


def price_claims(
    facts: list[ClaimFacts],
    params: YearParameters,
    chain_met: dict[str, int],
    leg_met: dict[tuple[str, str], int] | None = None,
) -> list[Priced]:
    """`chain_met` is the deductible already met per chain before this batch, `leg_met` per (chain, leg);
    both are updated in place."""
    leg_met = {} if leg_met is None else leg_met
    out = []
    for f in facts:
        met = chain_met.get(f.chain_id, 0) if f.chain_id else 0
        in_leg = leg_met.get((f.chain_id, f.leg), 0) if f.chain_id else 0
        claim = ClaimInput(f.tier, f.eligible_cost, met, f.referred, f.grassroots_disease, f.leg, in_leg)
        share, deductible = insurance_share(
            claim,
            params.tiers,
            params.unreferred_county_ratio,
            params.upward_deductible,
            params.downward_deductible,
        )
        if f.chain_id:
            chain_met[f.chain_id] = met + deductible
            leg_met[(f.chain_id, f.leg)] = in_leg + deductible
        ratio = params.tiers[f.tier].ratio
        if f.tier == "county" and f.grassroots_disease and not f.referred:
            ratio = min(ratio, params.unreferred_county_ratio)
        weighted = None
        if f.dip_points is not None and f.kind != "outpatient":
            # 同病同价: a grassroots disease group pays the same at every tier
            coefficient = Decimal(1) if f.grassroots_disease else params.dip_tier_coefficients[f.tier]
            weighted = (f.dip_points * coefficient).quantize(FOUR, rounding=ROUND_HALF_UP)
        out.append(Priced(deductible, ratio.quantize(FOUR), share, weighted))
    return out
