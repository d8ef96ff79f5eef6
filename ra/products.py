"""Products and identification methods: raw TOML -> validated, frozen :class:`Product` (validated at load).

A product names its certificate slots (one profile each), the identification methods it is
certified for, whether two RA officers must approve, its validity and the evidence it needs.
:func:`check_method` is the method x product matrix.
"""

from __future__ import annotations

import enum
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Final, Literal

from ra.errors import RAError, RAErrorKind

__all__ = [
    "MAX_VALIDITY_DAYS",
    "ORDER_CHANNELS",
    "IdentMethod",
    "OrderKind",
    "Product",
    "ProductError",
    "Slot",
    "check_method",
    "load_products",
    "parse_products",
]

#: The brief: products are valid for at most three years.
MAX_VALIDITY_DAYS: Final = 3 * 365 + 1


class ProductError(Exception):
    """A product definition that cannot be used; ``str()`` names the product and the key."""


class IdentMethod(enum.StrEnum):
    """Identification methods of the seed portals (D-Trust FAQ), STANDARDS.md §3.1 mapping."""

    POSTIDENT_BRANCH = "postident-branch"
    POSTIDENT_EID = "postident-eid"
    NOTARY = "notary"
    EMBASSY = "embassy"
    OFFICER = "officer"
    ON_SITE = "on-site"
    EXISTING_QES = "existing-qes"

    @property
    def title(self) -> str:  # type: ignore[override]
        return _METHOD_TITLES[self]


_METHOD_TITLES: Final = {
    IdentMethod.POSTIDENT_BRANCH: "PostIdent at a branch",
    IdentMethod.POSTIDENT_EID: "PostIdent with the online ID function",
    IdentMethod.NOTARY: "NotarIdent (notary)",
    IdentMethod.EMBASSY: "BotschaftsIdent (German embassy abroad)",
    IdentMethod.OFFICER: "OfficerIdent/BehördenIdent (the organisation's registration officer)",
    IdentMethod.ON_SITE: "identification on site at the trust center",
    IdentMethod.EXISTING_QES: "existing qualified signature",
}


class OrderKind(enum.StrEnum):
    NEW = "new"
    FOLLOW_UP = "follow-up"
    RENEWAL = "renewal"


@dataclass(frozen=True, slots=True)
class Slot:
    """One certificate on the product: its name on the card and the CA profile it is issued under."""

    name: str
    profile: str


@dataclass(frozen=True, slots=True)
class Product:
    name: str
    title: str
    subject_kind: Literal["natural", "legal"]
    delivery: Literal["card", "remote"]
    """``card``: keys generated on the card at personalisation; ``remote``: in the HSM backend, never leaving it."""
    four_eyes: bool
    validity_days: int
    methods: frozenset[IdentMethod]
    organisation: Literal["none", "optional", "required"]
    """Whether an organisation (and so an OZB, or for legal persons the organisation record) applies."""
    professional: bool
    """Needs a chamber confirmation, which becomes the Admission extension."""
    email: bool
    """The subject's email goes into certificates whose profile allows it."""
    slots: tuple[Slot, ...]
    sms_tan_channels: frozenset[str] = frozenset()
    """Order channels through which SMS-TAN is offered for this product (ra/tan.py; never ``portal``)."""
    transport_pin_digits: int = 6
    """Card products: digits of the transport PIN the card ships behind (ra/transport_pin.py)."""

    @property
    def evidence(self) -> tuple[str, ...]:
        """The evidence an order of this product needs before approval."""
        needed = ["identity"]
        if self.subject_kind == "legal":
            needed.append("organisation, applicant an authorised signatory")
        elif self.organisation != "none":
            needed.append("OZB when an organisation is named" if self.organisation == "optional" else "OZB")
        if self.professional:
            needed.append("chamber confirmation")
        return tuple(needed)


_KEYS: Final = frozenset(
    {"title", "subject", "delivery", "four_eyes", "validity_days", "methods", "organisation", "professional", "email"}
    | {"slots", "sms_tan_channels", "transport_pin_digits"}
)


def _get(name: str, raw: Mapping[str, object], key: str, kind: type, default: object = None) -> object:
    value = raw.get(key, default)
    if value is None:
        raise ProductError(f"product {name}: {key} is required")
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ProductError(f"product {name}: {key} must be a {kind.__name__}")
    return value


def _choice(
    name: str, raw: Mapping[str, object], key: str, choices: tuple[str, ...], default: str | None = None
) -> str:
    value = _get(name, raw, key, str, default)
    if value not in choices:
        raise ProductError(f"product {name}: {key} must be one of {', '.join(choices)} (got {value!r})")
    assert isinstance(value, str)
    return value


def parse_product(name: str, raw: object, profiles: Mapping[str, Literal["natural", "legal"]]) -> Product:
    """Validate one product.

    :param profiles: the CA's profile names with their subject kind.
    :raises ProductError: naming the product and the key.
    """
    if not isinstance(raw, Mapping):
        raise ProductError(f"product {name}: must be a table")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ProductError(f"product {name}: unknown key {', '.join(unknown)}")
    subject_kind = _choice(name, raw, "subject", ("natural", "legal"))
    delivery = _choice(name, raw, "delivery", ("card", "remote"))
    days = _get(name, raw, "validity_days", int)
    assert isinstance(days, int)
    if not 1 <= days <= MAX_VALIDITY_DAYS:
        raise ProductError(f"product {name}: validity_days must be 1..{MAX_VALIDITY_DAYS} (3 years), got {days}")
    raw_methods = _get(name, raw, "methods", list)
    assert isinstance(raw_methods, list)
    if not raw_methods:
        raise ProductError(f"product {name}: methods must name at least one identification method")
    methods: set[IdentMethod] = set()
    for m in raw_methods:
        try:
            methods.add(IdentMethod(m))
        except ValueError:
            known = ", ".join(x.value for x in IdentMethod)
            raise ProductError(f"product {name}: unknown identification method {m!r} (known: {known})") from None
    if IdentMethod.EXISTING_QES in methods and len(methods) == 1:
        raise ProductError(f"product {name}: an existing QES serves follow-up and renewal only; add a first method")
    raw_slots = _get(name, raw, "slots", list)
    assert isinstance(raw_slots, list)
    if not raw_slots:
        raise ProductError(f"product {name}: slots must name at least one certificate")
    slots: list[Slot] = []
    for i, s in enumerate(raw_slots):
        if not isinstance(s, Mapping) or set(s) != {"name", "profile"}:
            raise ProductError(f"product {name}: slots[{i}] must be {{name, profile}}")
        slot_name, profile = s["name"], s["profile"]
        if not isinstance(slot_name, str) or not isinstance(profile, str) or not slot_name:
            raise ProductError(f"product {name}: slots[{i}] name and profile must be strings")
        if profile not in profiles:
            raise ProductError(f"product {name}: slots[{i}] names unknown profile {profile!r}")
        if profiles[profile] != subject_kind:
            raise ProductError(
                f"product {name}: slots[{i}] profile {profile} is for {profiles[profile]} persons, "
                f"the product for {subject_kind} persons"
            )
        if any(x.name == slot_name for x in slots):
            raise ProductError(f"product {name}: slot name {slot_name!r} appears twice")
        slots.append(Slot(slot_name, profile))
    if delivery == "remote" and subject_kind != "legal":
        raise ProductError(f"product {name}: remote keys are offered for seals (legal persons) only")
    organisation = _choice(name, raw, "organisation", ("none", "optional", "required"), "none")
    if subject_kind == "legal" and organisation != "required":
        raise ProductError(f'product {name}: a legal-person product needs organisation = "required"')
    title = _get(name, raw, "title", str)
    four_eyes = _get(name, raw, "four_eyes", bool)
    professional = _get(name, raw, "professional", bool, False)
    email = _get(name, raw, "email", bool, False)
    if professional and subject_kind != "natural":
        raise ProductError(f"product {name}: professional attributes apply to natural persons only")
    pin_digits = _get(name, raw, "transport_pin_digits", int, 6)
    assert isinstance(pin_digits, int)
    if not 6 <= pin_digits <= 12:
        raise ProductError(f"product {name}: transport_pin_digits must be 6..12, got {pin_digits}")
    assert isinstance(title, str) and isinstance(four_eyes, bool)
    assert isinstance(professional, bool) and isinstance(email, bool)
    sms_tan = _sms_tan_channels(name, raw.get("sms_tan_channels", []))
    return Product(
        name=name,
        title=title,
        subject_kind="natural" if subject_kind == "natural" else "legal",
        delivery="card" if delivery == "card" else "remote",
        four_eyes=four_eyes,
        validity_days=days,
        methods=frozenset(methods),
        organisation="none" if organisation == "none" else "optional" if organisation == "optional" else "required",
        professional=professional,
        email=email,
        slots=tuple(slots),
        sms_tan_channels=sms_tan,
        transport_pin_digits=pin_digits,
    )


#: Where an order can come from (seed 000): the TSP's own portal, or a partner channel (a
#: chamber's member service, an organisation's issuing office, a special application page).
ORDER_CHANNELS: Final = ("portal", "partner")


def _sms_tan_channels(name: str, raw: object) -> frozenset[str]:
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise ProductError(f"product {name}: sms_tan_channels must be a list of channel names")
    for channel in raw:
        if channel not in ORDER_CHANNELS:
            raise ProductError(f"product {name}: sms_tan_channels: unknown channel {channel!r}")
        if channel == "portal":
            # Seed 000: "not available for cards ordered in the D-Trust Portal".
            raise ProductError(f"product {name}: SMS-TAN is never offered for portal-ordered cards")
    return frozenset(raw)


def parse_products(text: str, profiles: Mapping[str, Literal["natural", "legal"]]) -> dict[str, Product]:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProductError(f"products: not valid TOML: {exc}") from None
    if not raw:
        raise ProductError("products: none defined")
    return {name: parse_product(name, value, profiles) for name, value in raw.items()}


def load_products(profiles: Mapping[str, Literal["natural", "legal"]]) -> dict[str, Product]:
    """The built-in products (``ra/products.toml``), validated against the CA's profiles."""
    text = resources.files("ra").joinpath("products.toml").read_text(encoding="utf-8")
    return parse_products(text, profiles)


def check_method(product: Product, method: IdentMethod, kind: OrderKind) -> None:
    """The method x product matrix.

    :raises RAError: POLICY_VIOLATION naming the method and the product.
    """
    if method is IdentMethod.EXISTING_QES and kind is OrderKind.NEW:
        raise RAError(
            RAErrorKind.POLICY_VIOLATION,
            f"identification method {method.title} is accepted for follow-up and renewal orders only, "
            f"not for a new {product.title} (STANDARDS.md §3.7)",
        )
    if method not in product.methods:
        raise RAError(
            RAErrorKind.POLICY_VIOLATION,
            f"identification method {method.title} is not certified for product {product.title}",
        )
