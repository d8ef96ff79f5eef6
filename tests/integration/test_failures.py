"""A failure or a crash between any two pipeline steps leaves every reserved serial either a
stored certificate or marked failed; lint errors stop issuance before the HSM is touched."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from ca.issuance.errors import IssuanceError, LintFailed
from ca.issuance.serial import new_serial
from ca.issuance.service import STEPS
from ca.profiles.subject import SubjectInput
from ca.store.models import AuditEvent, CertificateRecord, IssuanceJournal, SerialReservation
from qtsp.demo import DEMO_SUBJECTS, fresh_csr
from qtsp.wiring import os_actor
from tests.conftest import Home, init_home
from tests.integration.helpers import open_runtime


class InjectedFailure(Exception):
    pass


class CountingKey(ec.EllipticCurvePrivateKey):
    """Delegates to the CA key and records every signature request (to prove none happened)."""

    def __init__(self, inner: ec.EllipticCurvePrivateKey) -> None:
        self.inner = inner
        self.calls: list[bytes] = []

    def sign(self, data: bytes, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:  # type: ignore[override]
        self.calls.append(bytes(data))
        return self.inner.sign(data, signature_algorithm)

    def exchange(self, *a: object) -> bytes:  # type: ignore[override]
        raise NotImplementedError

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.inner.public_key()

    @property
    def curve(self) -> ec.EllipticCurve:
        return self.inner.curve

    @property
    def key_size(self) -> int:
        return self.inner.key_size

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        raise NotImplementedError

    def private_bytes(self, *a: object) -> bytes:  # type: ignore[override]
        raise NotImplementedError

    def __copy__(self) -> CountingKey:
        return self

    def __deepcopy__(self, memo: object) -> CountingKey:
        return self


def _issue(service: object, profile: str = "qes-natural") -> object:
    return service.issue(  # type: ignore[attr-defined]
        profile_name=profile,
        csr=fresh_csr(),
        subject=SubjectInput.from_json_obj(DEMO_SUBJECTS[profile]),
        actor=os_actor(),
    )


def _state(rt: object) -> tuple[dict[str, int], int, dict[str, int], list[str]]:
    with rt.db.read() as s:  # type: ignore[attr-defined]
        reservations = dict(
            s.execute(select(SerialReservation.state, func.count()).group_by(SerialReservation.state)).all()
        )
        certs = s.scalar(
            select(func.count()).select_from(CertificateRecord).where(CertificateRecord.journal_id.is_not(None))
        )
        journal = dict(s.execute(select(IssuanceJournal.state, func.count()).group_by(IssuanceJournal.state)).all())
        actions = list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))
    return reservations, int(certs or 0), journal, actions


@pytest.mark.parametrize("step", STEPS)
def test_injected_failure_settles_serial_as_failed(soft_home: Home, step: str) -> None:
    with open_runtime(soft_home.path) as rt:
        service = rt.issuance()

        def fault(name: str) -> None:
            if name == step:
                raise InjectedFailure(f"injected at {name}")

        service.faults = fault
        with pytest.raises(InjectedFailure):
            _issue(service)
        reservations, certs, journal, actions = _state(rt)
    # Every failure is audited: against the profile before the serial is reserved, against the serial after.
    assert actions[-1] == "certificate.issuance_failed"
    if step in ("lint", "reserve"):
        # Nothing was reserved or journaled: the failure came before the first write.
        assert reservations == {} and journal == {}
    else:
        assert reservations == {"failed": 1}
    assert certs == 0
    assert journal.get("stored", 0) == 0 and journal.get("signing", 0) == 0
    if step in ("sign", "verify", "store"):
        assert journal == {"failed": 1}


_CRASH_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from ca.profiles.subject import SubjectInput
    from qtsp.demo import DEMO_SUBJECTS, fresh_csr
    from qtsp.wiring import os_actor
    from tests.integration.helpers import open_runtime

    step = sys.argv[2]
    with open_runtime(Path(sys.argv[1])) as rt:
        service = rt.issuance()
        def crash(name):
            if name == step:
                os._exit(17)  # the process dies: no exception handler, no cleanup
        service.faults = crash
        service.issue(profile_name="qes-natural", csr=fresh_csr(),
                      subject=SubjectInput.from_json_obj(DEMO_SUBJECTS["qes-natural"]), actor=os_actor())
    """
)


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_crash_between_steps_recovers_to_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, step: str, database: str
) -> None:
    url = request.getfixturevalue("pg_url") if database == "postgres" else None
    home = init_home(tmp_path / "home", database_url=url)
    env = {**os.environ, **home.env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run(
        [sys.executable, "-c", _CRASH_SCRIPT, str(home.path), step],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 17, proc.stderr
    for k, v in home.env.items():
        monkeypatch.setenv(k, v)
    with open_runtime(home.path) as rt:
        reservations, certs, _, _ = _state(rt)
        if step in ("lint", "reserve"):
            assert reservations == {}  # the serial is reserved with the journal row, in one commit
            return
        assert reservations == {"reserved": 1}  # left open by the dead process
        service = rt.issuance()
        # A young reservation may belong to a live process: recovery leaves it alone ...
        assert service.recover(os_actor()) == []
        # ... and settles it once it is older than the configured age.
        service.clock = lambda: dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        settled = service.recover(os_actor())
        assert len(settled) == 1
        assert settled[0].journaled  # a reservation never exists without its journal row
        reservations, certs, journal, actions = _state(rt)
    assert reservations == {"failed": 1}
    assert certs == 0
    assert "signing" not in journal
    assert actions[-1] == "serial.recovered_failed"
    # The recovery event names the serial as issuance events do: "<issuer name>:<serial hex>".
    assert settled[0].issuer_name == "qes"


def test_lint_error_stops_before_the_hsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A base URL on an internal (non-public, non-loopback) host fails pkilint: nothing is signed."""
    home = init_home(tmp_path / "home", base_url="http://ca.internal")
    for k, v in home.env.items():
        monkeypatch.setenv(k, v)
    with open_runtime(home.path) as rt:
        service = rt.issuance()
        counting = CountingKey(service.issuers["qes"].signing_key)  # type: ignore[arg-type]
        service.issuers = {**service.issuers, "qes": dataclasses.replace(service.issuers["qes"], signing_key=counting)}
        calls = counting.calls
        with pytest.raises(LintFailed) as info:
            _issue(service)
        assert "etsi.internal_domain_name" in str(info.value)
        assert calls == []
        reservations, certs, journal, actions = _state(rt)
        with rt.db.read() as s:
            event = s.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
    # A refused certificate takes no serial: nothing is reserved or journaled, the refusal is audited
    # against the profile, with the issuer, the stage and every blocking finding.
    assert reservations == {}
    assert certs == 0 and journal == {}
    assert actions[-1] == "certificate.refused"
    assert (event.object_type, event.object_id) == ("profile", "qes-natural")
    details = json.loads(event.details)
    assert details["issuer"] == "qes" and details["stage"] == "lint"
    assert details["findings"] and all("ca.internal" in m for m in details["findings"])


def test_loopback_downgrade_applies_only_to_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = init_home(tmp_path / "home", base_url="http://127.0.0.1:8080")
    for k, v in home.env.items():
        monkeypatch.setenv(k, v)
    with open_runtime(home.path) as rt:
        issued = _issue(rt.issuance())
    notices = [
        f for f in issued.findings if f.code == "etsi.internal_ip_address" or f.code == "etsi.internal_domain_name"
    ]  # type: ignore[attr-defined]
    assert notices and all(f.severity.name == "NOTICE" for f in notices)


def test_subject_refusal_names_rule_and_reserves_nothing(soft_home: Home) -> None:
    bad = dict(DEMO_SUBJECTS["qes-natural"], serialNumber="X123")
    with open_runtime(soft_home.path) as rt:
        with pytest.raises(LintFailed) as info:
            rt.issuance().issue(
                profile_name="qes-natural", csr=fresh_csr(), subject=SubjectInput.from_json_obj(bad), actor=os_actor()
            )
        reservations, certs, _, actions = _state(rt)
    assert 'EN 319 412-1 §5.1.3: serialNumber "X123" is not <type><country>-<id>' in str(info.value)
    assert reservations == {} and certs == 0
    assert actions[-1] == "certificate.refused"


def test_hsm_unavailable_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import make_softhsm_token

    token = make_softhsm_token()
    home = init_home(tmp_path / "home", backend="pkcs11", token=token)
    for k, v in home.env.items():
        monkeypatch.setenv(k, v)
    with open_runtime(home.path) as rt:
        service = rt.issuance()
        subprocess.run(["softhsm2-util", "--delete-token", "--token", token.label], check=True, capture_output=True)
        with pytest.raises(IssuanceError) as info:
            _issue(service)
        assert info.value.kind.value in ("hsm_unavailable", "internal")
        reservations, certs, _, _ = _state(rt)
    assert reservations == {"failed": 1} and certs == 0


def test_counting_key_sees_the_signature_when_lint_passes(soft_home: Home) -> None:
    """Control for the test above: the same probe counts exactly one HSM signature on success."""
    with open_runtime(soft_home.path) as rt:
        service = rt.issuance()
        counting = CountingKey(service.issuers["qes"].signing_key)  # type: ignore[arg-type]
        service.issuers = {**service.issuers, "qes": dataclasses.replace(service.issuers["qes"], signing_key=counting)}
        issued = _issue(service)
    assert len(counting.calls) == 1
    assert counting.calls[0] == issued.certificate.tbs_certificate_bytes  # type: ignore[attr-defined]


class WrongKey(CountingKey):
    """Signs with another key: a faulty HSM, or the wrong key object behind the issuer."""

    def sign(self, data: bytes, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:  # type: ignore[override]
        self.calls.append(bytes(data))
        return ec.generate_private_key(ec.SECP256R1()).sign(data, signature_algorithm)


def _tamper_tbs(tbs: bytes, algorithm: bytes, signature: bytes) -> bytes:
    from ca.asn1.crl_entry import assemble_signed

    changed = bytearray(tbs)
    changed[-1] ^= 0x01  # the last octet of the extensions: still DER, another TBS
    return assemble_signed(bytes(changed), algorithm, signature)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("wrong-key", "HSM signature does not verify with the CA certificate"),
        ("tbs", "signed TBS differs from the linted TBS"),
        ("garbage", "the signed certificate does not parse"),
    ],
)
def test_a_bad_signed_certificate_is_discarded(
    soft_home: Home, monkeypatch: pytest.MonkeyPatch, fault: str, message: str
) -> None:
    """The checks after the HSM signature: it must verify with the CA key over exactly the linted
    TBS, or the certificate is discarded and its serial settled as failed."""
    with open_runtime(soft_home.path) as rt:
        service = rt.issuance(pkilint=False)
        if fault == "wrong-key":
            wrong = WrongKey(service.issuers["qes"].signing_key)  # type: ignore[arg-type]
            service.issuers = {**service.issuers, "qes": dataclasses.replace(service.issuers["qes"], signing_key=wrong)}
        elif fault == "tbs":
            monkeypatch.setattr("ca.issuance.service.assemble_signed", _tamper_tbs)
        else:
            monkeypatch.setattr("ca.issuance.service.assemble_signed", lambda tbs, alg, sig: b"\x30\x03\x02\x01\x01")
        with pytest.raises(IssuanceError, match=message):
            _issue(service)
        reservations, certs, journal, actions = _state(rt)
    assert reservations == {"failed": 1} and certs == 0 and journal == {"failed": 1}
    assert actions[-1] == "certificate.issuance_failed"


def test_downgrade_needs_the_exact_development_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A gate for 127.0.0.1 still fails a certificate pointing at 127.0.0.10 (another internal host)."""
    from cryptography.hazmat.primitives import serialization

    from ca.issuance.lint import PkilintGate

    home = init_home(tmp_path / "home", base_url="http://127.0.0.10:8080")
    for k, v in home.env.items():
        monkeypatch.setenv(k, v)
    with open_runtime(home.path) as rt:
        issued = _issue(rt.issuance())  # its own gate downgrades 127.0.0.10
    der = issued.certificate.public_bytes(serialization.Encoding.DER)  # type: ignore[attr-defined]
    errors = [f for f in PkilintGate(dev_host="127.0.0.1").lint(der, "qes-natural") if f.severity.name == "ERROR"]
    assert {f.code for f in errors} <= {"etsi.internal_domain_name", "etsi.internal_ip_address"}
    assert len(errors) == 3  # caIssuers, OCSP and CRL distribution point
    assert all(f.severity.name != "ERROR" for f in PkilintGate(dev_host="127.0.0.10").lint(der, "qes-natural"))


def test_serial_collision_draws_again_and_a_broken_rng_is_refused(db_home: Home) -> None:
    fixed = b"\x42" * 16
    with open_runtime(db_home.path) as rt:
        service = rt.issuance(pkilint=False)
        service.random_bytes = lambda n: fixed
        first = _issue(service)
        draws = iter([fixed, b"\x43" * 16])
        service.random_bytes = lambda n: next(draws)
        second = _issue(service)  # the first draw collides with the first certificate's serial
        assert first.certificate.serial_number != second.certificate.serial_number  # type: ignore[attr-defined]
        # The TBS was rebuilt and linted again for the second draw: the certificate carries it.
        assert second.certificate.serial_number == new_serial(lambda n: b"\x43" * 16)  # type: ignore[attr-defined]
        service.random_bytes = lambda n: fixed
        with pytest.raises(IssuanceError, match="random source is broken"):
            _issue(service)
        reservations, certs, journal, _ = _state(rt)
    # The collisions rolled back whole: no journal row without its reservation, none left open.
    assert reservations == {"issued": 2} and certs == 2 and journal == {"stored": 2}


def test_a_reservation_recovered_meanwhile_is_never_stored(db_home: Home) -> None:
    """A signer slower than ``stale_after``: recovery has settled its serial as failed before the
    store step, so the signed certificate is discarded, never stored next to a failed serial."""
    with open_runtime(db_home.path) as rt:
        service = rt.issuance(pkilint=False)
        recovery = rt.issuance(pkilint=False)
        recovery.clock = lambda: dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)

        def fault(name: str) -> None:
            if name == "store":
                assert len(recovery.recover(os_actor())) == 1

        service.faults = fault
        with pytest.raises(IssuanceError, match="recovery settled it as failed meanwhile"):
            _issue(service)
        reservations, certs, journal, actions = _state(rt)
    assert reservations == {"failed": 1} and certs == 0 and journal == {"failed": 1}
    assert actions[-1] == "serial.recovered_failed"  # nothing audited as issued


def test_database_down_during_settlement_keeps_the_original_error(soft_home: Home) -> None:
    with open_runtime(soft_home.path) as rt:
        service = rt.issuance(pkilint=False)

        def fault(name: str) -> None:
            if name == "sign":
                rt.db.engine.dispose()
                rt.db.write = _broken_write  # type: ignore[method-assign]
                raise InjectedFailure("HSM gone")

        service.faults = fault
        with pytest.raises(InjectedFailure, match="HSM gone"):
            _issue(service)


def _broken_write() -> object:
    raise RuntimeError("database unreachable")
