"""Shop views (issue 6 point 6, ra/shop.py) on the RA blueprint: officers open, list and close an
organisation's shops; applicants enter a shop code once and see their shops and what each offers.
Orders through a shop go to ``POST /api/orders`` with ``shop_id``."""

from __future__ import annotations

from typing import Any

from apiflask import Schema
from apiflask.fields import Boolean, DateTime, Integer, List, Nested, String
from apiflask.validators import Length
from flask import request

from ra.api import _principal, _service, auth, bp, requires
from ra.errors import RAError, RAErrorKind
from ra.roles import Principal, Role
from ra.shop import ShopOffer, ShopRec, ShopService

__all__: list[str] = []


class ShopIn(Schema):
    name = String(required=True, validate=Length(min=1, max=128))
    products = List(String(validate=Length(max=64)), required=True, validate=Length(min=1, max=50))
    methods = List(String(validate=Length(max=32)), required=True, validate=Length(min=1, max=20))
    valid_until = DateTime(load_default=None, allow_none=True)


class ShopCreatedOut(Schema):
    id = Integer()
    code = String(metadata={"description": "The shop code, shown this once (only its HMAC is stored)"})


class ShopCodeIn(Schema):
    code = String(required=True, validate=Length(min=1, max=32), load_only=True)


class NamedOut(Schema):
    name = String()
    title = String()


class ShopOut(Schema):
    id = Integer()
    name = String()
    organisation_id = Integer()
    organisation = String()
    products = List(String())
    methods = List(String())
    valid_until = DateTime(allow_none=True)
    enabled = Boolean()
    # Officers only (None for applicants):
    created_at = DateTime(allow_none=True)
    created_by = String(allow_none=True)
    disabled_at = DateTime(allow_none=True)
    members = Integer(allow_none=True)


class ShopProductOut(Schema):
    name = String()
    title = String()
    subject_kind = String()
    delivery = String()
    validity_days = Integer()
    methods = List(Nested(NamedOut))
    evidence = List(String())


class ShopOffersOut(Schema):
    shop = Nested(ShopOut)
    products = List(Nested(ShopProductOut))


def _shops() -> ShopService:
    return ShopService(_service())


def _shop_out(shop: ShopRec, principal: Principal) -> dict[str, Any]:
    officer = Role.RA_OFFICER in principal.roles
    return {
        "id": shop.id,
        "name": shop.name,
        "organisation_id": shop.organisation_id,
        "organisation": shop.organisation_name,
        "products": list(shop.products),
        "methods": list(shop.methods),
        "valid_until": shop.valid_until,
        "enabled": shop.enabled,
        "created_at": shop.created_at if officer else None,
        "created_by": shop.created_by if officer else None,
        "disabled_at": shop.disabled_at if officer else None,
        "members": shop.members if officer else None,
    }


def _offer_out(offer: ShopOffer) -> dict[str, Any]:
    p = offer.product
    return {
        "name": p.name,
        "title": p.title,
        "subject_kind": p.subject_kind,
        "delivery": p.delivery,
        "validity_days": p.validity_days,
        "methods": [{"name": m.value, "title": m.title} for m in offer.methods],
        "evidence": list(p.evidence),
    }


@bp.post("/organisations/<int:org_id>/shops")
@bp.auth_required(auth)
@requires(Role.RA_OFFICER)
@bp.input(ShopIn, arg_name="data")
@bp.output(ShopCreatedOut, status_code=201)
@bp.doc(summary="Open a shop for the organisation; the generated shop code is returned this once")
def create_shop(org_id: int, data: dict[str, Any]) -> dict[str, Any]:
    valid_until = data["valid_until"]
    if valid_until is not None and valid_until.tzinfo is None:
        raise RAError(RAErrorKind.MALFORMED, "valid_until: needs a time zone (UTC offset)")
    shop_id, code = _shops().create_shop(
        _principal(),
        org_id,
        name=data["name"],
        products=data["products"],
        methods=data["methods"],
        valid_until=valid_until,
    )
    return {"id": shop_id, "code": code}


@bp.get("/shops")
@bp.auth_required(auth)
@requires(Role.APPLICANT, Role.RA_OFFICER)
@bp.output(ShopOut(many=True))
@bp.doc(summary="Shops: applicants see the shops in their navigation, RA officers every shop")
def list_shops() -> list[dict[str, Any]]:
    principal = _principal()
    return [_shop_out(x, principal) for x in _shops().list_shops(principal)]


@bp.post("/shops")
@bp.auth_required(auth)
@requires(Role.APPLICANT)
@bp.input(ShopCodeIn, arg_name="data")
@bp.output(ShopOut)
@bp.doc(
    summary="Enter a shop code once: the shop stays in the navigation; wrong codes are rate-limited per "
    "account and client address (429 with Retry-After)"
)
def enter_shop_code(data: dict[str, Any]) -> dict[str, Any]:
    principal = _principal()
    return _shop_out(_shops().enter_code(principal, data["code"], request.remote_addr), principal)


@bp.get("/shops/<int:shop_id>/products")
@bp.auth_required(auth)
@requires(Role.APPLICANT, Role.RA_OFFICER)
@bp.output(ShopOffersOut)
@bp.doc(summary="The shop's products, each with the shop's identification methods certified for it")
def shop_products(shop_id: int) -> dict[str, Any]:
    principal = _principal()
    shop, offers = _shops().offers(principal, shop_id)
    return {"shop": _shop_out(shop, principal), "products": [_offer_out(x) for x in offers]}


@bp.post("/shops/<int:shop_id>/disable")
@bp.auth_required(auth)
@requires(Role.RA_OFFICER)
@bp.output(ShopOut)
@bp.doc(summary="Close a shop: its code and orders through it are refused from now on")
def disable_shop(shop_id: int) -> dict[str, Any]:
    principal = _principal()
    return _shop_out(_shops().disable_shop(principal, shop_id), principal)
