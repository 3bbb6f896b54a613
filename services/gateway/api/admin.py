"""Administration, for the health commission only (`access.check_gateway_admin`): API clients, user
accounts, signing key rotation, and the audit log of personal-data calls."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from shared.crud import paginate, where_equal
from shared.pagination import Page
from shared.principal import Role
from shared.problems import Problem
from shared.text import RequestModel

from .. import auth
from .. import models as m
from ..access import check_gateway_admin
from ..keys import rotate
from .deps import Caller, Paging, clock, database, vault

router = APIRouter(tags=["gateway"])


class ClientIn(RequestModel):
    client_id: str = Field(min_length=3, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    client_secret: str = Field(min_length=16, max_length=200)
    institution_id: uuid.UUID
    community_id: uuid.UUID | None = None


class UserIn(RequestModel):
    username: str = Field(min_length=3, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=10, max_length=200)
    role: Role
    institution_id: uuid.UUID | None = None
    community_id: uuid.UUID | None = None
    practitioner_id: uuid.UUID | None = None
    resident_id: uuid.UUID | None = None


@router.post("/admin/clients", status_code=201)
async def create_client(body: ClientIn, request: Request, principal: Caller) -> dict[str, Any]:
    check_gateway_admin(principal)
    db = database(request)
    secret_hash = await auth.hash_secret(body.client_secret)  # off the event loop
    async with db.uow() as uow:
        if await uow.session.get(m.ApiClient, body.client_id):
            raise Problem(409, "client-exists", "客户端已存在", "A client with this id exists")
        uow.session.add(
            m.ApiClient(
                client_id=body.client_id,
                secret_hash=secret_hash,
                institution_id=body.institution_id,
                community_id=body.community_id,
            )
        )
        await uow.commit()
    return {"client_id": body.client_id, "institution_id": str(body.institution_id)}


@router.post("/admin/users", status_code=201)
async def create_user(body: UserIn, request: Request, principal: Caller) -> dict[str, Any]:
    check_gateway_admin(principal)
    if body.role == Role.RESIDENT and body.resident_id is None:
        raise Problem(
            422, "resident-id-required", "居民账号须关联居民", "A resident account needs resident_id"
        )
    if (
        body.role not in (Role.RESIDENT, Role.COMMISSION_ADMIN, Role.INSURANCE_OFFICER)
        and body.institution_id is None
    ):
        raise Problem(
            422, "institution-required", "医务人员账号须关联机构", "A staff account needs institution_id"
        )
    db = database(request)
    password_hash = await auth.hash_secret(body.password)  # off the event loop
    async with db.uow() as uow:
        if await uow.session.get(m.User, body.username):
            raise Problem(409, "user-exists", "用户名已存在", "This username is taken")
        uow.session.add(m.User(password_hash=password_hash, **body.model_dump(exclude={"password"})))
        await uow.commit()
    return {"username": body.username, "role": body.role}


@router.post("/admin/keys/rotate", status_code=201)
async def rotate_keys(request: Request, principal: Caller) -> dict[str, str]:
    check_gateway_admin(principal)
    db = database(request)
    async with db.uow() as uow:
        kid = await rotate(uow.session, vault(request), clock(request).now())
        await uow.commit()
    request.app.state.ring = None
    return {"kid": kid}


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    at: Any
    subject: str
    role: str
    institution_id: uuid.UUID | None
    method: str
    path: str
    status: int
    request_id: str | None


@router.get("/admin/audit", response_model=Page[AuditOut])
async def audit(
    request: Request,
    principal: Caller,
    page: Paging,
    subject: str | None = None,
) -> Page[AuditOut]:
    check_gateway_admin(principal)
    async with database(request).read() as s:
        stmt = where_equal(sa.select(m.AuditEntry), subject=subject).order_by(m.AuditEntry.id.desc())
        return await paginate(s, stmt, page, AuditOut.model_validate)
