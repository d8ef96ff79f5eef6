"""Shop codes (issue 6 point 6; seed 001, D-Trust portal: "Über einen Shop-Code stellen Organisationen
einen eigenen Bereich bereit ... eingeschränkte Produktauswahl oder besondere Identifizierungsverfahren
... Bitte geben Sie den Shop-Code einmalig nach Ihrem Login ein ... wird automatisch in der Navigation
hinterlegt").

An RA officer opens a shop for an organisation: a name, the products it offers (a subset of the
configured products), the identification methods it offers (each certified for at least one of
them, :func:`check_offer`), an optional end of validity.  The code is generated here and shown to
the officer once; only its HMAC is stored (:func:`code_digest`).  An applicant enters the code once
after login; the shop then stays in their navigation (``ra_shop_member``).  An order placed through
a shop (:func:`check_order`) must be for one of its products with one of its methods, by an
applicant who entered the code, while the shop is enabled and valid.

Affiliation: a shop is the organisation's own storefront for its people, so an order through it is
affiliated with the shop's organisation whenever the product supports an organisation
(``organisation = "optional"`` or ``"required"``): the OZB (or, for seals, the signatory rule)
then applies as for any affiliated order.  A product without organisation (``"none"``) is ordered
unaffiliated.  Naming another organisation on a shop order is refused.

Why an HMAC and not Argon2: the code has 60 random bits (12 characters of a 32-symbol alphabet), so
a slow hash adds nothing against guessing, and a keyed digest allows the lookup by code through a
unique index.  The key is derived from the RA data key, which lives outside the database: a stolen
database alone does not allow testing candidate codes offline.  Online guessing is rate-limited
per account and per client address in the database (:data:`CODE_FAILURES_PER_ACCOUNT`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from ca.findings import Finding, Severity, format_findings
from ra.credentials import CROCKFORD_ALPHABET, new_letter_secret
from ra.errors import RAError, RAErrorKind
from ra.products import IdentMethod, OrderKind, Product, check_method
from ra.rate_limit import retry_after
from ra.roles import Principal, Role
from ra.store import repository as repo
from ra.store import shop_repo
from ra.store.shop_repo import ShopRec

if TYPE_CHECKING:
    from ca.store.db import UnitOfWork
    from ra.credentials import DataKey
    from ra.service import RAService

__all__ = [
    "CODE_ALPHABET",
    "CODE_FAILURES_PER_ACCOUNT",
    "CODE_FAILURES_PER_ADDRESS",
    "CODE_LENGTH",
    "CODE_WINDOW",
    "ShopRec",
    "ShopService",
    "check_offer",
    "check_order",
    "code_digest",
    "new_shop_code",
    "normalise_code",
    "order_findings",
    "shop_of_order",
]

#: Crockford's base32: digits and capitals without I, L, O, U (read aloud and typed without doubt).
CODE_ALPHABET: Final = CROCKFORD_ALPHABET
CODE_LENGTH: Final = 12
"""60 random bits, typed as XXXX-XXXX-XXXX."""
CODE_WINDOW: Final = dt.timedelta(hours=1)
CODE_FAILURES_PER_ACCOUNT: Final = 10
CODE_FAILURES_PER_ADDRESS: Final = 30
_PURPOSE: Final = "shop-code"
_CONFUSABLE: Final = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None, " ": None})


def new_shop_code() -> str:
    """A fresh code from the CSPRNG, grouped ``XXXX-XXXX-XXXX``."""
    return new_letter_secret(groups=CODE_LENGTH // 4, alphabet=CODE_ALPHABET)


def normalise_code(text: str) -> str:
    """The canonical 12 characters of a typed code: case, blanks and hyphens ignored, O read as 0
    and I, L as 1 (Crockford).

    :raises RAError: MALFORMED when it cannot be a shop code at all.
    """
    code = text.strip().upper().translate(_CONFUSABLE)
    if len(code) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in code):
        raise RAError(RAErrorKind.MALFORMED, f"a shop code has {CODE_LENGTH} letters and digits (XXXX-XXXX-XXXX)")
    return code


def code_digest(key: DataKey, code: str) -> str:
    """HMAC-SHA256 of the canonical code under a key derived from the data key (hex)."""
    derived = key.derive(b"qtsp-ra-shop-code-digest-key")
    return hmac.new(derived, normalise_code(code).encode("ascii"), hashlib.sha256).hexdigest()


def check_offer(
    products: Mapping[str, Product], product_names: Iterable[str], method_names: Iterable[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Validate what a shop offers: known products, known methods, each method certified for at
    least one offered product (:func:`ra.products.check_method`; shop orders are new orders).

    :returns: the product names and method values, sorted and without duplicates.
    :raises RAError: MALFORMED (empty, unknown) or POLICY_VIOLATION (a method no offered product is
        certified for).
    """
    names = sorted(set(product_names))
    if not names:
        raise RAError(RAErrorKind.MALFORMED, "a shop offers at least one product")
    unknown = [n for n in names if n not in products]
    if unknown:
        raise RAError(RAErrorKind.MALFORMED, f"unknown product {', '.join(repr(n) for n in unknown)}")
    methods: list[IdentMethod] = []
    for m in sorted(set(method_names)):
        try:
            methods.append(IdentMethod(m))
        except ValueError:
            raise RAError(RAErrorKind.MALFORMED, f"unknown identification method {m[:32]!r}") from None
    if not methods:
        raise RAError(RAErrorKind.MALFORMED, "a shop offers at least one identification method")
    for method in methods:
        certified = False
        for name in names:
            try:
                check_method(products[name], method, OrderKind.NEW)
                certified = True
            except RAError:
                continue
        if not certified:
            raise RAError(
                RAErrorKind.POLICY_VIOLATION,
                f"identification method {method.title} is not certified for any product of the shop "
                f"({', '.join(names)})",
            )
    return tuple(names), tuple(m.value for m in methods)


def order_findings(
    shop: ShopRec | None, *, entered: bool, product: Product, method: IdentMethod, now: dt.datetime
) -> list[Finding]:
    """The shop rules for one order (pure).  A shop that does not exist and one the applicant has
    not entered give the same finding, so shop ids cannot be probed."""

    def rule(code: str, message: str) -> Finding:
        return Finding(Severity.ERROR, f"qtsp.ra.shop.{code}", message)

    if shop is None or not entered:
        return [rule("not_entered", "shop rule: enter the shop's code before ordering through it")]
    out = []
    if not shop.enabled:
        out.append(rule("disabled", f"shop rule: shop {shop.name!r} is closed"))
    if shop.valid_until is not None and shop.valid_until <= now:
        out.append(rule("expired", f"shop rule: shop {shop.name!r} closed on {shop.valid_until.isoformat()}"))
    if product.name not in shop.products:
        out.append(rule("product", f"shop rule: shop {shop.name!r} does not offer {product.title}"))
    if method.value not in shop.methods:
        out.append(rule("method", f"shop rule: shop {shop.name!r} does not offer identification by {method.title}"))
    return out


def check_order(
    ra: RAService,
    s: UnitOfWork,
    principal: Principal,
    shop_id: int,
    product: Product,
    method: IdentMethod,
    organisation_id: int | None,
    *,
    lock: bool = False,
) -> int | None:
    """Refuse an order through the shop that breaks a shop rule; return the organisation the order
    is affiliated with (see the module docstring).  Called by :meth:`RAService.create_order` before
    its checks and again, with the shop row locked, in its transaction.

    :raises RAError: POLICY_VIOLATION with the findings naming the rule.
    """
    shop = shop_repo.shop_get(s, shop_id, lock=lock)
    entered = principal.account_id is not None and shop_repo.is_member(s, principal.account_id, shop_id)
    findings = order_findings(shop, entered=entered, product=product, method=method, now=ra.clock())
    if shop is not None and not findings and product.organisation != "none":
        if organisation_id is not None and organisation_id != shop.organisation_id:
            findings.append(
                Finding(
                    Severity.ERROR,
                    "qtsp.ra.shop.organisation",
                    f"shop rule: orders through shop {shop.name!r} are affiliated with {shop.organisation_name}",
                )
            )
        organisation_id = shop.organisation_id
    if findings:
        raise RAError(RAErrorKind.POLICY_VIOLATION, format_findings(findings), tuple(findings))
    return organisation_id


@dataclass(frozen=True, slots=True)
class ShopOffer:
    """One product as a shop offers it: the product and the methods of the shop it is certified for."""

    product: Product
    methods: tuple[IdentMethod, ...]


@dataclass
class ShopService:
    """Shops: officers open, list and close them; applicants enter codes and see their shops."""

    ra: RAService

    def create_shop(
        self,
        principal: Principal,
        organisation_id: int,
        *,
        name: str,
        products: Iterable[str],
        methods: Iterable[str],
        valid_until: dt.datetime | None = None,
    ) -> tuple[int, str]:
        """Open a shop; returns its id and the code, shown this once (only its HMAC is stored)."""
        acting = principal.require(Role.RA_OFFICER)
        ra = self.ra
        name = name.strip()
        if not name or len(name) > 128:
            raise RAError(RAErrorKind.MALFORMED, "name: 1-128 characters")
        offered, offered_methods = check_offer(ra.products, products, methods)
        now = ra.clock()
        if valid_until is not None:
            if valid_until.tzinfo is None:
                raise RAError(RAErrorKind.MALFORMED, "valid_until: needs a time zone (UTC offset)")
            if valid_until <= now:
                raise RAError(RAErrorKind.MALFORMED, "valid_until: must lie in the future")
        code = new_shop_code()
        with ra.db.write() as s:
            org = repo.org_get(s, organisation_id)
            if org is None:
                raise RAError(RAErrorKind.NOT_FOUND, f"no organisation {organisation_id}")
            shop_id = shop_repo.shop_add(
                s,
                organisation_id=org.id,
                name=name,
                code_digest=code_digest(ra.data_key, code),
                key_id=ra.data_key.key_id,
                products=offered,
                methods=offered_methods,
                valid_until=valid_until,
                enabled=True,
                created_at=now,
                created_by=principal.name,
                disabled_at=None,
                disabled_by=None,
            )
            ra._audit(
                s,
                principal,
                acting,
                "shop.created",
                "shop",
                shop_id,
                {
                    "organisation": org.identifier,
                    "name": name,
                    "products": list(offered),
                    "methods": list(offered_methods),
                    "valid_until": valid_until.isoformat() if valid_until else None,
                },
                at=now,
            )
        return shop_id, code

    def disable_shop(self, principal: Principal, shop_id: int) -> ShopRec:
        """Close a shop: no more orders through it, its code is refused."""
        acting = principal.require(Role.RA_OFFICER)
        ra = self.ra
        now = ra.clock()
        with ra.db.write() as s:
            shop = shop_repo.shop_get(s, shop_id, lock=True)
            if shop is None:
                raise RAError(RAErrorKind.NOT_FOUND, f"no shop {shop_id}")
            if not shop.enabled:
                raise RAError(RAErrorKind.CONFLICT, f"shop {shop_id} was closed on {shop.disabled_at}")
            shop_repo.shop_update(s, shop_id, enabled=False, disabled_at=now, disabled_by=principal.name)
            ra._audit(s, principal, acting, "shop.disabled", "shop", shop_id, {"name": shop.name}, at=now)
            result = shop_repo.shop_get(s, shop_id)
        assert result is not None
        return result

    def list_shops(self, principal: Principal) -> list[ShopRec]:
        """RA officers: every shop; applicants: the shops in their navigation."""
        with self.ra.db.read() as s:
            if Role.RA_OFFICER in principal.roles:
                return shop_repo.shops_list(s)
            principal.require(Role.APPLICANT)
            assert principal.account_id is not None
            return shop_repo.member_shops(s, principal.account_id)

    def _visible(self, s: UnitOfWork, principal: Principal, shop_id: int) -> ShopRec:
        shop = shop_repo.shop_get(s, shop_id)
        if shop is not None and Role.RA_OFFICER in principal.roles:
            return shop
        principal.require(Role.APPLICANT, Role.RA_OFFICER)
        if shop is None or principal.account_id is None or not shop_repo.is_member(s, principal.account_id, shop_id):
            raise RAError(RAErrorKind.NOT_FOUND, f"no shop {shop_id} in your navigation (enter its code first)")
        return shop

    def offers(self, principal: Principal, shop_id: int) -> tuple[ShopRec, list[ShopOffer]]:
        """The shop's products, each with the shop's methods certified for it."""
        with self.ra.db.read() as s:
            shop = self._visible(s, principal, shop_id)
        out = []
        for name in shop.products:
            product = self.ra.products.get(name)
            if product is None:
                continue  # a product withdrawn from the configuration since the shop was opened
            methods = tuple(IdentMethod(m) for m in shop.methods if IdentMethod(m) in product.methods)
            out.append(ShopOffer(product, methods))
        return shop, out

    def enter_code(self, principal: Principal, code: str, client_address: str | None = None) -> ShopRec:
        """An applicant enters a shop code once; the shop stays in their navigation.  Entering it
        again changes nothing.  Wrong codes are counted per account and per client address and
        rate-limited (429 with Retry-After); within the window even a right code is refused.

        :raises RAError: MALFORMED, NOT_FOUND (no shop has the code), POLICY_VIOLATION (shop
            closed), RATE_LIMITED.
        """
        principal.require(Role.APPLICANT)
        assert principal.account_id is not None
        ra = self.ra
        canonical = normalise_code(code)
        digest = code_digest(ra.data_key, canonical)
        address = client_address[:64] if client_address else None
        now = ra.clock()
        refusal: RAError | None = None
        with ra.db.write() as s:
            shop_repo.lock_account(s, principal.account_id)
            if address is not None:
                repo.serialise_limit(s, f"address:{address}")
            failures = shop_repo.failures_since(
                s, _PURPOSE, now - CODE_WINDOW, account_id=principal.account_id, client_address=address
            )
            retry = retry_after(
                now,
                CODE_WINDOW,
                [
                    ([at for a, _, _, at in failures if a == principal.account_id], CODE_FAILURES_PER_ACCOUNT),
                    (
                        [at for _, _, c, at in failures if address is not None and c == address],
                        CODE_FAILURES_PER_ADDRESS,
                    ),
                ],
            )
            shop = None if retry is not None else shop_repo.shop_by_digest(s, digest)
            if retry is not None:
                refusal = RAError(
                    RAErrorKind.RATE_LIMITED, "too many wrong shop codes: try again later", retry_after=retry
                )
            elif shop is None:
                shop_repo.failure_add(
                    s, purpose=_PURPOSE, at=now, account_id=principal.account_id, client_address=address
                )
                refusal = RAError(RAErrorKind.NOT_FOUND, "no shop has this code")
            elif not shop.enabled or (shop.valid_until is not None and shop.valid_until <= now):
                refusal = RAError(RAErrorKind.POLICY_VIOLATION, f"shop rule: shop {shop.name!r} is closed")
            if refusal is not None:  # access attempts are logged (EN 319 411-1 OVR-6.4.5-02)
                ra._audit(
                    s,
                    principal,
                    Role.APPLICANT,
                    "shop.code_refused",
                    "shop",
                    shop.id if shop is not None else "-",
                    {"reason": refusal.kind.value, "client_address": address},
                    at=now,
                )
            else:
                assert shop is not None
                if shop_repo.member_add(s, principal.account_id, shop.id, now):
                    ra._audit(
                        s,
                        principal,
                        Role.APPLICANT,
                        "shop.entered",
                        "shop",
                        shop.id,
                        {"name": shop.name, "organisation_id": shop.organisation_id, "client_address": address},
                        at=now,
                    )
                shop = shop_repo.shop_get(s, shop.id)
        if refusal is not None:
            raise refusal
        assert shop is not None
        return shop


def shop_of_order(ra: RAService, order_id: int) -> int | None:
    """The shop an order was placed through (None when placed outside any shop)."""
    with ra.db.read() as s:
        return shop_repo.order_shop(s, order_id)
