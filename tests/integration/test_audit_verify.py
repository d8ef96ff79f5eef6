"""Audit verification (issue 5 points 1, 2 and 8): the database refuses UPDATE and DELETE of the
log; someone who bypasses that (drops the trigger, as a DBA could) and edits, deletes, inserts,
reorders, rewrites or truncates entries is caught by ``qtsp audit verify``, which names the first
bad entry; exports verify offline with no database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from ca.audit.chain import AuditEntry, entry_hash
from ca.profiles.subject import SubjectInput
from ca.store.db import Database
from qtsp.cli import cli
from qtsp.demo import DEMO_SUBJECTS, fresh_csr
from qtsp.wiring import os_actor
from tests.conftest import Home
from tests.integration.helpers import open_runtime


@pytest.fixture
def home(db_home: Home) -> Iterator[Home]:
    h = db_home
    with open_runtime(h.path) as rt:
        service = rt.issuance(pkilint=False)
        for _ in range(3):
            service.issue(
                profile_name="upc-auth",
                csr=fresh_csr(),
                subject=SubjectInput.from_json_obj(DEMO_SUBJECTS["upc-auth"]),
                actor=os_actor(),
            )
        rt.audit().checkpoint(rt.config.ca, os_actor("auditor"))  # covers init (7 events) and 3 issuances: 1..10
        for _ in range(2):
            service.issue(
                profile_name="upc-auth",
                csr=fresh_csr(),
                subject=SubjectInput.from_json_obj(DEMO_SUBJECTS["upc-auth"]),
                actor=os_actor(),
            )
    yield h


def _db(home: Home) -> Database:
    from qtsp.config import load_config

    return Database(load_config(home.path).database.url)


def _unprotect(db: Database) -> None:
    """What an attacker with schema rights does first."""
    with db.engine.begin() as c:
        if db.dialect == "postgresql":
            c.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
            c.execute(text("ALTER TABLE audit_checkpoint DISABLE TRIGGER USER"))
        else:
            for name in ("audit_event_no_update", "audit_event_no_delete"):
                c.execute(text(f"DROP TRIGGER {name}"))


def _verify(home: Home) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--home", str(home.path), "audit", "verify"])
    return result.exit_code, result.output


def _row(db: Database, seq: int) -> dict[str, object]:
    with db.engine.connect() as c:
        return dict(c.execute(text("SELECT * FROM audit_event WHERE seq = :s"), {"s": seq}).mappings().one())


def test_intact_log_verifies_with_its_checkpoint(home: Home) -> None:
    code, out = _verify(home)
    assert code == 0, out
    assert "audit log intact: 13 entries 1..13, 1 signed checkpoints verified" in out


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_event SET actor = 'x' WHERE seq = 2", "DELETE FROM audit_event WHERE seq = 2"]
)
def test_database_refuses_update_and_delete(home: Home, statement: str) -> None:
    db = _db(home)
    with pytest.raises(Exception, match="append-only"), db.engine.begin() as c:
        c.execute(text(statement))
    db.dispose()


def test_database_refuses_truncate_on_postgresql(home: Home) -> None:
    db = _db(home)
    if db.dialect != "postgresql":
        db.dispose()
        return  # SQLite has no TRUNCATE statement; DELETE is refused above
    with pytest.raises(Exception, match="append-only"), db.engine.begin() as c:
        c.execute(text("TRUNCATE audit_event CASCADE"))
    db.dispose()


def test_edited_entry_is_named(home: Home) -> None:
    db = _db(home)
    _unprotect(db)
    with db.engine.begin() as c:
        c.execute(text("UPDATE audit_event SET actor = 'mallory' WHERE seq = 4"))
    db.dispose()
    code, out = _verify(home)
    assert code == 1 and "entry 4" in out and "edited" in out


def test_deleted_entry_is_named(home: Home) -> None:
    db = _db(home)
    _unprotect(db)
    with db.engine.begin() as c:
        c.execute(text("DELETE FROM audit_event WHERE seq = 3"))
    db.dispose()
    code, out = _verify(home)
    assert code == 1 and "entries 3 are missing (deleted)" in out


def test_inserted_entry_is_named(home: Home) -> None:
    """A forged entry slipped in at 4 with a correct hash, later entries renumbered: entry 5 no longer links."""
    db = _db(home)
    _unprotect(db)
    prev = _row(db, 3)
    last = 13
    with db.engine.begin() as c:
        for seq in range(last, 3, -1):
            c.execute(text("UPDATE audit_event SET seq = seq + 1 WHERE seq = :s"), {"s": seq})
        forged = AuditEntry(
            4,
            prev["at"] if not isinstance(prev["at"], str) else _parse(prev["at"]),
            "mallory",
            "ca-operator",
            "certificate.issued",
            None,
            None,
            "{}",
            str(prev["hash"]),
        )
        c.execute(
            text(
                "INSERT INTO audit_event (seq, at, actor, role, action, object_type, object_id, details, prev_hash, "
                "hash) VALUES (4, :at, 'mallory', 'ca-operator', 'certificate.issued', NULL, NULL, '{}', :prev, :h)"
            ),
            {"at": prev["at"], "prev": prev["hash"], "h": entry_hash(forged)},
        )
        c.execute(text("UPDATE audit_head SET seq = seq + 1"))
    db.dispose()
    code, out = _verify(home)
    assert code == 1 and "entry 5: prev_hash does not link to entry 4" in out


def _parse(value: str) -> object:
    import datetime as dt

    return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)


def test_reordered_entries_are_named(home: Home) -> None:
    db = _db(home)
    _unprotect(db)
    with db.engine.begin() as c:
        c.execute(text("UPDATE audit_event SET seq = -1 WHERE seq = 5"))
        c.execute(text("UPDATE audit_event SET seq = 5 WHERE seq = 6"))
        c.execute(text("UPDATE audit_event SET seq = 6 WHERE seq = -1"))
    db.dispose()
    code, out = _verify(home)
    assert code == 1 and "entry 5" in out


def test_truncated_tail_is_caught_by_the_checkpoint(home: Home) -> None:
    """Remove entries 8..12 and repair the head: only the signed checkpoint (at 10) can tell."""
    db = _db(home)
    _unprotect(db)
    seven = _row(db, 7)
    with db.engine.begin() as c:
        c.execute(text("DELETE FROM audit_event WHERE seq >= 8"))
        c.execute(text("UPDATE audit_head SET seq = 7, hash = :h"), {"h": seven["hash"]})
    db.dispose()
    code, out = _verify(home)
    assert code == 1 and "truncated tail" in out and "ends at entry 7" in out


def test_rewritten_chain_is_caught_by_the_checkpoint(home: Home) -> None:
    """Edit entry 2 and recompute every later hash and the head: the signed checkpoint disagrees."""
    db = _db(home)
    _unprotect(db)
    with db.engine.begin() as c:
        rows = [dict(r) for r in c.execute(text("SELECT * FROM audit_event ORDER BY seq")).mappings()]
        prev = rows[0]["hash"]
        for r in rows[1:]:
            at = r["at"] if not isinstance(r["at"], str) else _parse(r["at"])
            actor = "mallory" if r["seq"] == 2 else r["actor"]
            entry = AuditEntry(
                r["seq"], at, actor, r["role"], r["action"], r["object_type"], r["object_id"], r["details"], prev
            )
            h = entry_hash(entry)
            c.execute(
                text("UPDATE audit_event SET actor = :a, prev_hash = :p, hash = :h WHERE seq = :s"),
                {"a": actor, "p": prev, "h": h, "s": r["seq"]},
            )
            prev = h
        c.execute(text("UPDATE audit_head SET hash = :h"), {"h": prev})
    db.dispose()
    code, out = _verify(home)
    assert code == 1 and "signed checkpoint" in out and "rewritten" in out


def test_export_verifies_offline_and_catches_a_tampered_file(home: Home, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "audit.jsonl"
    result = runner.invoke(cli, ["--home", str(home.path), "audit", "export", "--out", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["--home", str(home.path), "ca", "export", "--out", str(tmp_path / "pem")])
    assert result.exit_code == 0, result.output
    root = str(tmp_path / "pem" / "ca" / "root.pem")
    ok = runner.invoke(cli, ["audit", "verify-export", str(out), "--root", root])
    assert ok.exit_code == 0 and "1 signed checkpoints verified" in ok.output, ok.output
    lines = out.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if "upc-auth" in line)
    record = json.loads(lines[index])
    record["details"] = record["details"].replace("upc-auth", "qes-natural")
    lines[index] = json.dumps(record)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    caught = runner.invoke(cli, ["audit", "verify-export", str(bad), "--root", root])
    assert caught.exit_code == 1 and f"entry {record['seq']}" in caught.output
    wrong_root = runner.invoke(
        cli, ["audit", "verify-export", str(out), "--root", str(tmp_path / "pem" / "ca" / "qes.pem")]
    )
    assert wrong_root.exit_code == 1 and "not issued by the root" in wrong_root.output
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("not json\n")
    g = runner.invoke(cli, ["audit", "verify-export", str(garbage)])
    assert g.exit_code == 1 and "Traceback" not in g.output
