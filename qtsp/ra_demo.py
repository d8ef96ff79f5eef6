"""The RA part of ``qtsp demo``: a signature card with OZB, a seal card and a UPC card from
application to activated card, then one refused application per rule family with its reason."""

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
        _online_renewal(ra, erika, ra1, ra.get_order(erika, o1).card_id or 0, sig_id, console)

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
