"""The RA part of ``qtsp demo``: a signature card with OZB, a seal card and a UPC card from
application to activated card, then one refused application per rule family with its reason, then
a shop code and the one reveal of a transport PIN."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable

import pyotp
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from qtsp.config import Config
from qtsp.demo import fresh_csr
from qtsp.wiring import os_actor, ra_service, runtime
from ra.email_confirmation import code_in_mail
from ra.errors import RAError
from ra.evidence import DocumentType, IdentityEvidence
from ra.organisation import OrganisationData, SignatoryData
from ra.outbox import Channel, SpoolGateway
from ra.roles import Principal, Role
from ra.service import RAService, cli_principal

__all__ = ["run_ra_demo"]

_PASSWORD = "demo-" + "x" * 16


def _applicant(service: RAService, tag: str, given: str, surname: str, dob: dt.date) -> Principal:
    """Register, activate the account with the code mailed to it (seed 001), log in."""
    email = f"{given.lower()}.{tag}@example.org"
    account_id = service.register_applicant(
        email=email, password=_PASSWORD, given_names=given, surname=surname, date_of_birth=dob
    )
    assert account_id is not None
    _confirm_code(service, service.email_confirmations.pending_mail(account_id=account_id))
    token, _ = service.login(email, _PASSWORD)
    return service.authenticate(token)


def _confirm_code(service: RAService, reference: str | None) -> str:
    """Read the code from the spooled mail ``reference`` and confirm it, as the mailbox's owner
    would; returns the masked address."""
    gateway = service.gateways.get(Channel.EMAIL)
    if reference is None or not isinstance(gateway, SpoolGateway):
        raise RuntimeError("the demo reads confirmation codes from the spooled mail: [ra] email_gateway = 'spool'")
    token = code_in_mail(gateway.read(Channel.EMAIL, reference))
    return service.email_confirmations.confirm(token, "127.0.0.1").email


def _operator(service: RAService, tag: str, name: str, role: Role, *, totp: bool = True) -> Principal:
    email = f"{name}.{tag}@qtsp.example"
    _, secret = service.create_operator(
        cli_principal(os_actor().name, Role.SECURITY_OFFICER), email=email, password=_PASSWORD, roles=[role.value]
    )
    token, _ = service.login(email, _PASSWORD, pyotp.TOTP(secret).now() if totp else None)
    return service.authenticate(token)


def _identity(given: str, surname: str, dob: dt.date, **over: object) -> IdentityEvidence:
    values: dict[str, object] = {
        "document_type": DocumentType.ID_CARD,
        "document_number": f"T{secrets.randbelow(10**8):08d}",
        "issuing_state": "DE",
        "expires_on": dt.date.today() + dt.timedelta(days=2000),
        "given_names": given,
        "surname": surname,
        "date_of_birth": dob,
        "verified_by": "Deutsche Post PostIdent, Filiale 4711",
        "verified_place": "Berlin",
        "verified_at": dt.datetime.now(dt.UTC),
        "security_features": ("hologram", "laser engraving", "microprint"),
    }
    values.update(over)
    return IdentityEvidence(**values)  # type: ignore[arg-type]


def _signature_card(
    ra: RAService, ra1: Principal, caop: Principal, holder: Principal, order: int, identity: IdentityEvidence
) -> int:
    """Identity recorded, approval, the card's key pair and shipping for a one-slot signature
    order: the (not yet activated) card's id."""
    ra.record_identity(ra1, order, identity)
    ra.approve(ra1, order)
    ra.submit_csr(caop, order, "signature", fresh_csr())
    ra.ship(caop, order)
    card = ra.get_order(holder, order).card_id
    assert card is not None
    return card


def _revocation_by_authorised_person(
    ra: RAService, ra1: Principal, caop: Principal, tag: str, console: Console
) -> None:
    """A card whose revocation password the RA posts to the person the holder names; that person
    revokes with it, without an account, after a wrong try is recorded (seed 000)."""
    dob = dt.date(1970, 1, 1) + dt.timedelta(days=secrets.randbelow(9000))
    holder = _applicant(ra, tag, "Rita", "Rueckruf", dob)
    order = ra.create_order(holder, product="qes-card", method="on-site", country="DE")
    card = _signature_card(ra, ra1, caop, holder, order, _identity("Rita", "Rueckruf", dob))
    ra.confirm_receipt(holder, card)
    table = Table(title=f"qtsp demo: revocation by the revocation-authorised person (card {card})")
    table.add_column("step")
    table.add_column("result", overflow="fold")
    _, letter = ra.issue_revocation_password(holder, card, "Ralf Rueckruf", "Ralf Rueckruf\nHauptstr. 1\n10115 Berlin")
    sent = ra.dispatch_outbox()
    spool = ra.gateways.get(Channel.POST)
    table.add_row(
        "RA generates the revocation password", f"letter {letter} for the authorised person; Argon2 hash stored"
    )
    table.add_row("letter handed to the post gateway", f"{len(sent.sent)} sent ({type(spool).__name__})")
    password = ""
    if isinstance(spool, SpoolGateway):
        password = spool.read(Channel.POST, letter).split("\n\n    ", 1)[1].split("\n", 1)[0]
    try:
        ra.revoke_with_password(card, "a wrong password", "keyCompromise", "Ralf Rueckruf", "192.0.2.7")
    except RAError as exc:
        table.add_row("wrong password", f"refused and recorded: {exc.detail}")
    request_id, revoked = ra.revoke_with_password(card, password, "keyCompromise", "Ralf Rueckruf", "192.0.2.7")
    table.add_row("right password from the letter", f"request {request_id}: card {revoked.state}")
    table.add_row("recorded requests", ", ".join(str(r["decision"]) for r in ra.revocation_requests(holder, card)))
    console.print(table)


def _sms_tan_demo(ra: RAService, tag: str, ra1: Principal, caop: Principal, portal_card: int, console: Console) -> None:
    """SMS-TAN (seed 000): a partner-channel card with the mobile number from the application, a
    revocation TAN sent through the outbox (shown masked from the development spool) and used to
    revoke the card without a login; then the refusal for a portal-ordered card."""
    from ra.outbox import Channel, SpoolGateway
    from ra.tan import TanService

    dob = dt.date(1950, 1, 1) + dt.timedelta(days=secrets.randbelow(3000))
    tom = _applicant(ra, tag, "Tom", "Telefon", dob)
    mobile = f"+49151{secrets.randbelow(10**8):08d}"
    order = ra.create_order(
        tom,
        product="qes-card",
        method="on-site",
        country="DE",
        channel="partner",
        mobile=mobile,
        postal_address="Tom Telefon\nKammerweg 3\n10117 Berlin",
    )
    card = _signature_card(ra, ra1, caop, tom, order, _identity("Tom", "Telefon", dob))
    tans = TanService(ra)
    table = Table(title="qtsp demo: SMS-TAN (partner channel) and its refusal for a portal card")
    table.add_column("step")
    table.add_column("result", overflow="fold")
    status = tans.status(tom, card)
    table.add_row("mobile number with the application", f"card {card} via {status.channel}: {status.mobile}")
    receipt = tans.request_tan(card, "revocation", client_address="127.0.0.1")
    sent = receipt.sent
    if sent is None:
        table.add_row("TAN request", f"[red]nothing sent[/red]: {receipt.refusal}")
        console.print(table)
        return
    table.add_row("anonymous caller is told (any card id)", receipt.answer())
    gateway = ra.gateways.get(Channel.SMS)
    if isinstance(gateway, SpoolGateway):
        text = gateway.read(Channel.SMS, sent.reference)
        tan = text[:6]
        shown = "******" + text[6:]
        table.add_row("TAN sent (spool, TAN masked)", f"to {sent.sent_to}: {shown}")
        request_id, revoked = tans.revoke_with_tan(card, tan, "keyCompromise", "Tom Telefon", "127.0.0.1")
        table.add_row("revoked with card id + TAN, no login", f"request {request_id}: card {revoked.state}")
    else:
        table.add_row("TAN sent", f"to {sent.sent_to} through the configured SMS gateway")
    portal = tans.request_tan(portal_card, "revocation", client_address="127.0.0.1")
    if portal.refusal is not None and portal.sent is None:
        table.add_row(
            f"portal-ordered card {portal_card}",
            f"refused (audited; the caller gets the same answer): {portal.refusal.detail}",
        )
    else:
        table.add_row(f"portal-ordered card {portal_card}", "[red]NOT refused[/red]")
    console.print(table)


def _confirm_email(ra: RAService, order_id: int) -> tuple[str, ...]:
    """Paula follows the link mailed to her order's address (seed 004): read from the spool here."""
    email = _confirm_code(ra, ra.email_confirmations.pending_mail(order_id))
    return ("email confirmation", f"{order_id}: {email} confirmed with the code mailed to it", "", "", "")


def _shop_and_transport_pin(
    ra: RAService, ra1: Principal, org_id: int, holder: Principal, card_id: int, tag: str, console: Console
) -> None:
    """A shop for the organisation: an applicant enters its code and orders through it, one order
    outside the shop is refused; the holder of a shipped card sees its transport PIN once."""
    from ra.shop import ShopService
    from ra.transport_pin import TransportPinService

    table = Table(title="qtsp demo: shop code (seed 001) and transport PIN (seed 004)")
    table.add_column("step")
    table.add_column("result", overflow="fold")
    shops = ShopService(ra)
    shop_id, code = shops.create_shop(
        ra1, org_id, name="Musterfirma staff shop", products=["qes-card"], methods=["postident-branch", "on-site"]
    )
    table.add_row("RA officer opens a shop", f"shop {shop_id}, code {code[:4]}-****-**** (shown once, stored as HMAC)")
    sven = _applicant(ra, tag, "Sven", "Shopper", dt.date(1977, 7, 7) + dt.timedelta(days=secrets.randbelow(900)))
    shop = shops.enter_code(sven, code.lower())
    table.add_row("applicant enters the code once", f"{shop.name} of {shop.organisation_name} kept in the navigation")
    order_id = ra.create_order(sven, product="qes-card", method="on-site", country="DE", shop_id=shop_id)
    org = ra.get_order(sven, order_id).order.organisation_id
    table.add_row("order through the shop", f"order {order_id}, affiliated with organisation {org}")
    try:
        ra.create_order(sven, product="qes-card", method="notary", country="DE", shop_id=shop_id)
        table.add_row("order outside the shop", "[red]NOT refused[/red]")
    except RAError as exc:
        table.add_row("order outside the shop", f"refused: {exc.detail}")
    pins = TransportPinService(ra)
    pin, at = pins.reveal(holder, card_id, _PASSWORD)
    shown = f"card {card_id}: revealed once ({'*' * len(pin)}) at {at:%H:%M:%S}"
    table.add_row("holder reveals the transport PIN", shown)
    try:
        pins.reveal(holder, card_id, _PASSWORD)
        table.add_row("second reveal", "[red]NOT refused[/red]")
    except RAError as exc:
        table.add_row("second reveal", f"refused: {exc.detail}")
    console.print(table)


def _online_renewal(
    ra: RAService, holder: Principal, officer: Principal, card_id: int, representative_id: int, console: Console
) -> None:
    """Online renewal (the DigiSign model): the holder takes the form pre-filled from the current
    certificate, picks an issuance date in the window, submits a CSR for a new key and the
    documents (the contract signed by the organisation's representative); an RA officer approves;
    the scheduled issuance issues nothing before the date and the new certificate on it."""
    from ra.renewal import RenewalService

    renewals = RenewalService(ra)
    form = renewals.form(holder, card_id)
    issue_on = min(form.window.latest, form.window.earliest + dt.timedelta(days=7))
    table = Table(
        title=f"qtsp demo: online renewal of card {card_id} (window {form.window.earliest}..{form.window.latest})"
    )
    table.add_column("step")
    table.add_column("result", overflow="fold")
    subjects = {s.name: s.subject for s in form.slots}
    try:
        late = form.window.latest + dt.timedelta(days=1)
        renewals.request(holder, card_id, issue_on=late, subjects=subjects, csrs={s: fresh_csr() for s in subjects})
    except RAError as exc:
        table.add_row(f"request for {late} (after the window)", escape(f"refused: {exc.detail}"))
    order_id = renewals.request(
        holder, card_id, issue_on=issue_on, subjects=subjects, csrs={s: fresh_csr() for s in subjects}
    )
    table.add_row(f"request for {issue_on}, new key", escape(f"renewal order {order_id}; form {subjects}"))
    pdf = b"%PDF-1.4\n%demo renewal document\ntrailer\n<<>>\n%%EOF\n"
    for kind, signer in (("contract", representative_id), ("declaration", None), ("terms", None)):
        doc = renewals.add_document(holder, order_id, kind, pdf + kind.encode(), signer)
        table.add_row(f"document: {kind}", f"signed by {doc.signed_by}, sha256 {doc.sha256[:16]}...")
    ra.upload_copy(holder, order_id, b"\x89PNG\r\n\x1a\n" + b"\x00" * 200)
    table.add_row("document: ID copy", "encrypted evidence copy of the order")
    table.add_row("approval", renewals.approve(officer, order_id).state)
    table.add_row("scheduled issuance today", f"issued {len(renewals.issue_due().issued)} (waits for {issue_on})")
    real = ra.clock
    ra.clock = lambda: dt.datetime.combine(issue_on, dt.time(0, 5), tzinfo=dt.UTC)
    try:
        run = renewals.issue_due()
    finally:
        ra.clock = real
    view = renewals.get(holder, order_id)
    table.add_row(
        f"scheduled issuance on {issue_on}",
        f"issued {list(run.issued)}: order {view.order.state}, new card {view.new_card_id}; "
        f"card {card_id} stays {ra.get_card(holder, card_id).state}",
    )
    console.print(table)


def _followup_demo(ra: RAService, tag: str, ra1: Principal, caop: Principal, console: Console) -> None:
    """A follow-up card: the holder signs the request with the current card (CMS; the CA checks the
    signature, the path and our own OCSP answer), an officer approves, the new card is issued."""
    import base64

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import pkcs7

    from ra.followup import FollowUpRequest
    from ra.followup_rules import canonical_request

    dob = dt.date(1970, 1, 1) + dt.timedelta(days=secrets.randbelow(9000))
    holder = _applicant(ra, tag, "Frank", "Folge", dob)

    def card(order_id: int) -> tuple[int, ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
        slot = ra.submit_csr(caop, order_id, "signature", csr.public_bytes(serialization.Encoding.DER))
        ra.ship(caop, order_id)
        card_id = ra.get_order(holder, order_id).card_id or 0
        ra.confirm_receipt(holder, card_id)
        found = ra.ca.find_issued(slot.evidence_ref or "")
        assert found is not None
        return card_id, key, x509.load_der_x509_certificate(found.certificate_der)

    first = ra.create_order(
        holder,
        product="qes-card",
        method="on-site",
        country="DE",
        postal_address="Frank Folge\nHauptstr. 1\n10115 Berlin",
    )
    ra.record_identity(ra1, first, _identity("Frank", "Folge", dob))
    ra.approve(ra1, first)
    card_id, key, cert = card(first)
    challenge = ra.followups.challenge(holder, card_id)
    content = canonical_request(card_id, "qes-card", challenge.nonce, None)
    signed = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(cert, key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )
    request = FollowUpRequest(
        card_id=card_id,
        authentication="qualified-signature",
        nonce=challenge.nonce,
        signed_request=base64.b64encode(signed).decode(),
    )
    follow_up = ra.followups.request_followup(holder, request)
    ra.approve(ra1, follow_up)
    new_card, _, new_cert = card(follow_up)
    table = Table(title="qtsp demo: follow-up card, authenticated by the current card's qualified signature")
    for col in ("current card", "follow-up order", "new card", "subject (unchanged)"):
        table.add_column(col, overflow="fold")
    table.add_row(
        f"{card_id} ({cert.serial_number:x}, still valid)",
        f"{follow_up} {ra.get_order(holder, follow_up).order.state}",
        f"{new_card} {ra.get_card(holder, new_card).state} ({new_cert.serial_number:x})",
        new_cert.subject.rfc4514_string(),
    )
    console.print(table)


def run_ra_demo(config: Config, console: Console) -> None:
    tag = secrets.token_hex(3)
    rnd = secrets.randbelow(3000)
    dob = [dt.date(1960, 1, 1) + dt.timedelta(days=rnd + i * 400) for i in range(4)]
    with runtime(config) as rt:
        ra = ra_service(rt)
        ra1 = _operator(ra, tag, "officer1", Role.RA_OFFICER)
        ra2 = _operator(ra, tag, "officer2", Role.RA_OFFICER)
        caop = _operator(ra, tag, "personalisation", Role.CA_OPERATOR)
        erika = _applicant(ra, tag, "Erika", "Mustermann", dob[0])
        max_ = _applicant(ra, tag, "Max", "Beispiel", dob[1])
        paula = _applicant(ra, tag, "Paula", "Patent", dob[2])
        org_id = ra.create_organisation(
            ra1,
            OrganisationData(
                "Musterfirma GmbH", "GmbH", "DE", "Amtsgericht Charlottenburg", f"HRB {rnd + 10000}", None
            ),
            [SignatoryData("Max", "Beispiel", dob[1], "Geschäftsführer")],
        )
        sig_id = ra.get_organisation(ra1, org_id).signatories[0].id

        table = Table(title="qtsp demo: registration authority, application to activated card")
        for col in ("product", "order", "approved by", "certificates", "card"):
            table.add_column(col, overflow="fold")

        def produce(order_id: int, slots: list[str], applicant: Principal, *, confirm: bool) -> None:
            for slot in slots:
                ra.submit_csr(caop, order_id, slot, fresh_csr())
            ra.ship(caop, order_id)
            view = ra.get_order(applicant, order_id)
            assert view.card_id is not None
            if confirm:
                ra.confirm_receipt(applicant, view.card_id)
            else:  # nobody confirmed: the card activates itself 24 h after shipping
                real = ra.clock
                ra.clock = lambda: real() + ra.activation_delay + dt.timedelta(seconds=1)
                try:
                    ra.activate_due()
                finally:
                    ra.clock = real
            view = ra.get_order(applicant, order_id)
            card = ra.get_card(applicant, view.card_id or 0)
            serials = ", ".join(f"{s.name}: {s.issuer}/{s.serial_hex}" for s in view.slots)
            table.add_row(
                view.product_title, f"{order_id} {view.order.state}", ", ".join(view.approvals), serials, card.state
            )

        # 1. Signature card with the organisation (OZB signed by the managing director).
        o1 = ra.create_order(erika, product="qes-card", method="postident-branch", country="DE", organisation_id=org_id)
        ra.record_identity(ra1, o1, _identity("Erika", "Mustermann", dob[0]))
        ra.record_ozb(
            ra1,
            o1,
            signatory_id=sig_id,
            signed_by="Max Beispiel",
            signed_on=dt.date.today(),
            document_sha256=hashlib.sha256(b"OZB Erika").hexdigest(),
            organisation_agrees=True,
            person_agrees=True,
        )
        ra.approve(ra1, o1)
        produce(o1, ["signature"], erika, confirm=True)
        # 2. Seal card: the authorised signatory applies, two officers approve.
        o2 = ra.create_order(
            max_,
            product="seal-card",
            method="on-site",
            country="DE",
            organisation_id=org_id,
            common_name="Musterfirma Siegel",
        )
        ra.record_identity(ra1, o2, _identity("Max", "Beispiel", dob[1]))
        ra.approve(ra1, o2)
        ra.approve(ra2, o2)
        produce(o2, ["seal"], max_, confirm=False)
        # 3. UPC card: a qualified signature and a UPC authentication certificate on one card.
        o3 = ra.create_order(
            paula, product="upc-card", method="postident-eid", country="DE", email=f"paula.{tag}@example.org"
        )
        ra.record_identity(ra1, o3, _identity("Paula", "Patent", dob[2]))
        table.add_row(*_confirm_email(ra, o3))
        ra.approve(ra1, o3)
        ra.approve(ra2, o3)
        produce(o3, ["signature", "authentication"], paula, confirm=True)
        console.print(table)
        _online_renewal(ra, erika, ra1, ra.get_order(erika, o1).card_id or 0, sig_id, console)
        _followup_demo(ra, tag, ra1, caop, console)

        refused = Table(title="qtsp demo: refused, one per rule family")
        refused.add_column("rule family")
        refused.add_column("reason", overflow="fold")
        eve = _applicant(ra, tag, "Eve", "Intruder", dob[3])
        plain = _operator(ra, tag, "officer3", Role.RA_OFFICER, totp=False)
        o_eve = ra.create_order(eve, product="qes-card", method="on-site", country="DE")
        attempts: list[tuple[str, Callable[[], object]]] = [
            (
                "method x product",
                lambda: ra.create_order(
                    max_, product="seal-card", method="embassy", country="DE", organisation_id=org_id, common_name="S"
                ),
            ),
            (
                "identity evidence",
                lambda: ra.record_identity(
                    ra1, o_eve, _identity("Eve", "Intruder", dob[3], expires_on=dt.date.today() + dt.timedelta(days=20))
                ),
            ),
            ("evidence copy", lambda: ra.upload_copy(eve, o_eve, b"MZ\x90\x00" + b"\x00" * 64)),
            (
                "OZB",
                lambda: ra.record_ozb(
                    ra1,
                    ra.create_order(eve, product="qes-card", method="on-site", country="DE", organisation_id=org_id),
                    signatory_id=None,
                    signed_by="Eve Intruder",
                    signed_on=dt.date.today(),
                    document_sha256=hashlib.sha256(b"forged").hexdigest(),
                    organisation_agrees=True,
                    person_agrees=True,
                ),
            ),
            (
                "seal applicant",
                lambda: ra.create_order(
                    eve, product="seal-card", method="on-site", country="DE", organisation_id=org_id, common_name="S"
                ),
            ),
            ("approval readiness", lambda: ra.approve(ra1, o_eve)),
            ("second factor", lambda: ra.approve(plain, o_eve)),
            ("role", lambda: ra.approve(eve, o_eve)),
            ("order life cycle", lambda: ra.ship(caop, o_eve)),
        ]
        for family, attempt in attempts:
            try:
                attempt()
            except RAError as exc:
                refused.add_row(family, exc.detail)
            else:
                refused.add_row(family, "[red]NOT refused[/red]")
        # Four eyes: the same officer cannot give both approvals.
        o4 = ra.create_order(paula, product="qes-professional-card", method="notary", country="DE")
        ra.record_identity(ra1, o4, _identity("Paula", "Patent", dob[2]))
        try:
            ra.approve(ra1, o4)
        except RAError as exc:
            refused.add_row("professional attribute", exc.detail)
        console.print(refused)
        _revocation_by_authorised_person(ra, ra1, caop, tag, console)
        _sms_tan_demo(ra, tag, ra1, caop, ra.get_order(erika, o1).card_id or 0, console)
        _shop_and_transport_pin(ra, ra1, org_id, erika, ra.get_order(erika, o1).card_id or 0, tag, console)
