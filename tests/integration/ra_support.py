"""Shared set-up for the RA integration tests: an initialised home (SQLite or PostgreSQL), the RA
service on it, the API test client, accounts of every role, and orders ready for approval."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient

from qtsp.config import load_config
from qtsp.wiring import ra_service, runtime
from ra.api import create_app
from ra.roles import Role
from ra.service import RAService, cli_principal

PASSWORD = "correct horse battery staple"
_counter = itertools.count(1)


def csr_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class RAEnv:
    service: RAService
    client: FlaskClient
    tokens: dict[str, str] = field(default_factory=dict)
    totp: dict[str, str] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)

    def call(self, method: str, url: str, who: str | None = None, **kwargs: Any) -> Any:
        headers = kwargs.pop("headers", {})
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        # Buffered: the response is read and closed, as a WSGI server does once it has sent it, so
        # that work deferred to close (a TAN's SMS: ra/api/tan.py) has run when the call returns.
        kwargs.setdefault("buffered", True)
        return self.client.open(url, method=method, headers=headers, **kwargs)

    def ok(self, method: str, url: str, who: str | None = None, status: int = 200, **kwargs: Any) -> Any:
        r = self.call(method, url, who, **kwargs)
        assert r.status_code == status, (r.status_code, r.get_json())
        return r.get_json()

    def slot_serial(self, order_id: int, slot: str = "signature") -> str:
        """The serial of the certificate issued for ``slot`` of the order."""
        from ra.store import repository as repo

        with self.service.db.read() as s:
            found = next(x for x in repo.slots(s, order_id) if x.name == slot)
        assert found.serial_hex is not None
        return found.serial_hex

    # -- accounts -------------------------------------------------------------------------------

    def applicant(self, name: str, given: str, surname: str, dob: str) -> None:
        """Register ``name``, activate the account with the mailed code (seed 001), log in."""
        from ra.store import repository as repo

        email = f"{name}@example.org"
        self.ok(
            "POST",
            "/api/accounts",
            json={"email": email, "password": PASSWORD, "given_names": given, "surname": surname, "date_of_birth": dob},
            status=202,
        )
        with self.service.db.read() as s:
            account = repo.account_by_email(s, email)
        assert account is not None, f"no account was opened for {email}"
        self.ids[name] = account.id
        ref = self.service.email_confirmations.pending_mail(account_id=account.id)
        self.ok("POST", "/api/email-confirmations", json={"token": self.mailed_code(ref)})
        self.tokens[name] = self.ok("POST", "/api/auth/login", json={"email": email, "password": PASSWORD})["token"]

    def mailed_code(self, reference: str | None) -> str:
        """The confirmation code in the spooled mail ``reference``."""
        from ra.email_confirmation import code_in_mail
        from ra.outbox import Channel, SpoolGateway

        assert reference is not None, "no confirmation mail"
        gateway = self.service.gateways[Channel.EMAIL]
        assert isinstance(gateway, SpoolGateway)
        return code_in_mail(gateway.read(Channel.EMAIL, reference))

    def operator(self, name: str, *roles: Role, person: tuple[str, str, dt.date] | None = None) -> None:
        from ra.evidence import PersonData

        email = f"{name}@qtsp.example"
        account_id, secret = self.service.create_operator(
            cli_principal("os:test@host", Role.SECURITY_OFFICER),
            email=email,
            password=PASSWORD,
            roles=[r.value for r in roles],
            person=PersonData(*person) if person else None,
        )
        self.ids[name], self.totp[name] = account_id, secret
        self.login_totp(name)

    def login_totp(self, name: str) -> None:
        code = pyotp.TOTP(self.totp[name]).now()
        # A code is accepted once (replay protection): use the next step's code if this one was spent.
        r = self.call(
            "POST", "/api/auth/login", json={"email": f"{name}@qtsp.example", "password": PASSWORD, "totp": code}
        )
        if r.status_code != 200:
            code = pyotp.TOTP(self.totp[name]).at(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30))
            r = self.call(
                "POST", "/api/auth/login", json={"email": f"{name}@qtsp.example", "password": PASSWORD, "totp": code}
            )
        assert r.status_code == 200, r.get_json()
        assert r.get_json()["second_factor"] is True
        self.tokens[name] = r.get_json()["token"]

    # -- evidence -------------------------------------------------------------------------------

    def email_token(self, order_id: int) -> str:
        """The code of the order's pending email confirmation, read from the spooled mail."""
        return self.mailed_code(self.service.email_confirmations.pending_mail(order_id))

    def confirm_email(self, order_id: int) -> Any:
        """The applicant follows the link mailed to the order's address (seed 004)."""
        return self.ok("POST", "/api/email-confirmations", json={"token": self.email_token(order_id)})

    def identity(self, order_id: int, given: str, surname: str, dob: str, **over: Any) -> Any:
        body = {
            "document_type": "id-card",
            "document_number": f"T{next(_counter):08d}",
            "issuing_state": "DE",
            "expires_on": (dt.date.today() + dt.timedelta(days=2000)).isoformat(),
            "given_names": given,
            "surname": surname,
            "date_of_birth": dob,
            "verified_by": "Deutsche Post PostIdent, Filiale 4711",
            "verified_place": "Berlin",
            "verified_at": dt.datetime.now(dt.UTC).isoformat(),
            "security_features": ["hologram", "laser engraving", "microprint"],
        }
        body.update(over)
        return self.call("POST", f"/api/orders/{order_id}/identity", "ra1", json=body)

    def ozb(self, order_id: int, signatory_id: int | None, **over: Any) -> Any:
        body = {
            "signatory_id": signatory_id,
            "signed_by": "Max Mustermann",
            "signed_on": dt.date.today().isoformat(),
            "document_sha256": hashlib.sha256(b"ozb form").hexdigest(),
            "organisation_agrees": True,
            "person_agrees": True,
        }
        body.update(over)
        return self.call("POST", f"/api/orders/{order_id}/ozb", "ra1", json=body)

    def organisation(self, **over: Any) -> tuple[int, int]:
        body = {
            "name": "Musterfirma GmbH",
            "legal_form": "GmbH",
            "country": "DE",
            "register_court": "Amtsgericht Berlin-Charlottenburg",
            "register_number": f"HRB {next(_counter) + 10000}",
            "signatories": [
                {
                    "given_names": "Max",
                    "surname": "Mustermann",
                    "date_of_birth": "1970-01-01",
                    "role": "Geschäftsführer",
                }
            ],
        }
        body.update(over)
        org_id = self.ok("POST", "/api/organisations", "ra1", json=body, status=201)["id"]
        org = self.ok("GET", f"/api/organisations/{org_id}", "ra1")
        return org_id, org["signatories"][0]["id"]


@contextmanager
def ra_env(home: Path, *, pkilint: bool = False) -> Iterator[RAEnv]:
    with runtime(load_config(home)) as rt:
        service = ra_service(rt, pkilint=pkilint)
        app = create_app(service)
        app.testing = True
        env = RAEnv(service=service, client=app.test_client())
        env.operator("ra1", Role.RA_OFFICER)
        env.operator("ra2", Role.RA_OFFICER)
        env.operator("caop", Role.CA_OPERATOR)
        env.operator("revo", Role.REVOCATION_OFFICER)
        env.operator("aud", Role.AUDITOR)
        env.operator("sec", Role.SECURITY_OFFICER)
        yield env
