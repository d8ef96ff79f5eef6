"""The RA part of ``qtsp demo``: a signature card with OZB, a seal card and a UPC card from
application to activated card, then one refused application per rule family with its reason."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable

import pyotp
from rich.console import Console
from rich.table import Table

from qtsp.config import Config
from qtsp.demo import fresh_csr
from qtsp.wiring import os_actor, ra_service, runtime
from ra.errors import RAError
from ra.evidence import DocumentType, IdentityEvidence
from ra.organisation import OrganisationData, SignatoryData
from ra.roles import Principal, Role
from ra.service import RAService, cli_principal

__all__ = ["run_ra_demo"]

_PASSWORD = "demo-" + "x" * 16


def _applicant(service: RAService, tag: str, given: str, surname: str, dob: dt.date) -> Principal:
    email = f"{given.lower()}.{tag}@example.org"
    service.register_applicant(email=email, password=_PASSWORD, given_names=given, surname=surname, date_of_birth=dob)
    token, _ = service.login(email, _PASSWORD)
    return service.authenticate(token)


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
        ra.approve(ra1, o3)
        ra.approve(ra2, o3)
        produce(o3, ["signature", "authentication"], paula, confirm=True)
        console.print(table)
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
