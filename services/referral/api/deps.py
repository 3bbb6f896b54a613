"""What every referral router needs: the clock, the referral and slot policies, the caller, a read
session, paging, and writes in one unit of work that honour Idempotency-Key. The same names in every
service's `api/deps.py`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Caller
from shared.deps import Clk, Paging, ReadSession, clock
from shared.writes import idempotent_write

from ..domain.rules import Policy
from ..domain.slots import SlotPolicy
from ..models import idempotency_keys

__all__ = ["Caller", "Clk", "Paging", "Session", "clock", "policy", "slot_policy", "write"]


def policy(request: Request) -> Policy:
    p: Policy = request.app.state.policy
    return p


def slot_policy(request: Request) -> SlotPolicy:
    p: SlotPolicy = request.app.state.slot_policy
    return p


Session = ReadSession


async def write(
    request: Request, body: Any, fn: Callable[[AsyncSession], Awaitable[Any]], status: int = 200
) -> JSONResponse:
    """Run a use case in one unit of work, honouring Idempotency-Key."""
    return await idempotent_write(request, idempotency_keys, body, fn, status)
