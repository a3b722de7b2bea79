"""Allowed-signers lines decide trust exactly as ``ssh-keygen -Y verify`` does (the oracle).

Every line of the matrix is written to a file, a message is signed with the unit's key, and
ssh-keygen (with ``-O verify-time=`` set to the same moment) and ``keys.trusts`` must agree on
whether the principal may sign. Times in the lines are relative to the moment of the test, so
the matrix means the same on any day. A line we refuse to read (an option we do not honour) counts
as "not trusted", and must be one ssh-keygen does not trust either.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from nanbu_secops.bundle import keys, sshsig
from nanbu_secops.errors import InputError
from tests.roots import make_root
from tests.test_cli import cli

MESSAGE = b"manifest bytes\n"
MOMENT = dt.datetime.now(dt.UTC).replace(microsecond=0)


def local(moment: dt.datetime, form: str) -> str:
    """``moment`` as ssh-keygen reads it: in the system's zone, or in UTC when the form ends in Z."""
    if form.endswith("Z"):
        return moment.astimezone(dt.UTC).strftime(form[:-1]) + "Z"
    return moment.astimezone().strftime(form)


PAST, FUTURE = MOMENT - dt.timedelta(days=10), MOMENT + dt.timedelta(days=10)
SOON, LATELY = MOMENT + dt.timedelta(minutes=5), MOMENT - dt.timedelta(minutes=5)

# (principals field, options field or "", principal asked for)
MATRIX: list[tuple[str, str, str]] = [
    ("unit", "", "unit"),
    ("unit", "", "unit2"),
    ("county,unit", "", "unit"),
    ("un*", "", "unit"),
    ("u?it", "", "unit"),
    ("u?t", "", "unit"),
    ("*", "", "anyone@example"),
    ("*,!unit", "", "unit"),
    ("*,!unit", "", "county"),
    ("!unit,*", "", "unit"),
    ("!mallory,unit", "", "unit"),
    ("UNIT", "", "unit"),
    ("unit", 'namespaces="nanbu-secops"', "unit"),
    ("unit", 'namespaces="git"', "unit"),
    ("unit", 'namespaces="git,file"', "unit"),
    ("unit", 'namespaces="nanbu-*"', "unit"),
    ("unit", 'namespaces="*,!nanbu-secops"', "unit"),
    ("unit", 'namespaces="nanbu-secop?"', "unit"),
    ("unit", f'valid-after="{local(PAST, "%Y%m%d")}"', "unit"),
    ("unit", f'valid-after="{local(FUTURE, "%Y%m%d")}"', "unit"),
    ("unit", f'valid-before="{local(PAST, "%Y%m%d")}"', "unit"),
    ("unit", f'valid-before="{local(FUTURE, "%Y%m%d")}"', "unit"),
    ("unit", f'valid-after="{local(LATELY, "%Y%m%d%H%M%SZ")}"', "unit"),
    ("unit", f'valid-after="{local(SOON, "%Y%m%d%H%M%SZ")}"', "unit"),
    ("unit", f'valid-before="{local(LATELY, "%Y%m%d%H%M%SZ")}"', "unit"),
    ("unit", f'valid-before="{local(SOON, "%Y%m%d%H%M%SZ")}"', "unit"),
    ("unit", f'valid-before="{local(LATELY, "%Y%m%d%H%M")}"', "unit"),
    ("unit", f'valid-before="{local(SOON, "%Y%m%d%H%M")}"', "unit"),
    ("unit", f'valid-after="{local(PAST, "%Y%m%d")}",valid-before="{local(FUTURE, "%Y%m%d")}"', "unit"),
    ("unit", f'valid-after="{local(FUTURE, "%Y%m%d")}",valid-before="{local(FUTURE, "%Y%m%d")}"', "unit"),
    ("unit", f'VALID-BEFORE="{local(PAST, "%Y%m%d")}"', "unit"),
    ("unit", f'namespaces="nanbu-secops",valid-before="{local(PAST, "%Y%m%d")}"', "unit"),
    ("unit", f'valid-before={local(FUTURE, "%Y%m%d")}', "unit"),  # unquoted
    ("unit", 'cert-authority', "unit"),
    ("unit", 'cert-authority,namespaces="nanbu-secops"', "unit"),
    ("unit", 'no-touch-required', "unit"),
    ("unit", 'namespaces="nanbu-secops",', "unit"),
]


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, keys.SignKey, str]:
    folder = tmp_path_factory.mktemp("signers")
    keys.new_keys("unit", folder, sign_only=True)
    key = keys.load_sign_key(folder / "unit_ed25519")
    signature = folder / "message.sig"
    signature.write_text(sshsig.sign(key.key, MESSAGE))
    public = (folder / "unit_ed25519.pub").read_text().split()[:2]
    return signature, key, " ".join(public)


def oracle(allowed: Path, signature: Path, principal: str) -> bool:
    """ssh-keygen's verdict at MOMENT."""
    done = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(allowed), "-I", principal, "-n", sshsig.NAMESPACE,
                           "-s", str(signature), "-O", f"verify-time={local(MOMENT, '%Y%m%d%H%M%SZ')}"],
                          input=MESSAGE, capture_output=True, timeout=30)
    return done.returncode == 0


def ours(allowed: Path, key: keys.SignKey, principal: str) -> bool:
    try:
        signers = keys.read_trust([allowed])
    except InputError:
        return False
    return keys.trusts(signers, key.blob, principal, at=MOMENT)


def test_every_line_of_the_matrix_agrees_with_ssh_keygen(signed, tmp_path: Path) -> None:
    signature, key, public = signed
    verdicts = []
    for number, (principals, options, principal) in enumerate(MATRIX):
        allowed = tmp_path / f"allowed-{number}"
        allowed.write_text(f"{principals} {options + ' ' if options else ''}{public}\n")
        verdicts.append((allowed.read_text().split(" ssh-")[0], principal, oracle(allowed, signature, principal),
                         ours(allowed, key, principal)))
    disagree = [v for v in verdicts if v[2] != v[3]]
    assert disagree == []
    # the matrix exercises both answers, and the cases the issue names
    assert {v[2] for v in verdicts} == {True, False}
    expired = f'valid-before="{local(PAST, "%Y%m%d")}"'
    assert [v[3] for v in verdicts if expired in v[0].lower()] == [False] * 3


def test_lines_are_tried_in_order_as_ssh_keygen_does(signed, tmp_path: Path) -> None:
    """A line that does not allow the signature does not stop a later one from allowing it, and vice versa."""
    signature, key, public = signed
    other_public = sshsig.openssh_public(keys.SignKey(ed25519.Ed25519PrivateKey.generate(), "unit").blob)
    files = {
        "namespace then plain": f'unit namespaces="git" {public}\nunit {public}\n',
        "expired then plain": f'unit valid-before="{local(PAST, "%Y%m%d")}" {public}\nunit {public}\n',
        "other key then ours": f"unit {other_public}\nunit {public}\n",
        "negated then plain": f"*,!unit {public}\nunit {public}\n",
        "other principal": f"county {public}\n",
        "comment and blank": f"# unit {public}\n\n",
    }
    for name, text in files.items():
        allowed = tmp_path / name.replace(" ", "-")
        allowed.write_text(text)
        assert ours(allowed, key, "unit") == oracle(allowed, signature, "unit"), name


def test_unsupported_options_fail_closed_naming_the_line(signed, tmp_path: Path) -> None:
    _, _, public = signed
    allowed = tmp_path / "allowed"
    for options, words in (("no-touch-required", "unsupported option"), ("cert-authority", "cert-authority"),
                           ('valid-before="tomorrow"', "not a time"), ("valid-before=20200101", "double quotes")):
        allowed.write_text(f"# first\nunit {options} {public}\n")
        with pytest.raises(InputError) as caught:
            keys.read_trust([allowed])
        assert caught.value.line == 2 and words in caught.value.message, caught.value.message


def test_an_expired_line_makes_verify_fail(tmp_path: Path) -> None:
    """The whole command: a bundle signed by the unit, whose only trusted line expired, does not verify."""
    assert cli("keys", "new", "unit", "--out", str(tmp_path / "k")).returncode == 0
    root_keys = tmp_path / "k"
    done = cli("incident", "collect", "--root", str(make_root(tmp_path)), "--unit", "u", "--title", "t",
               "--category", "other", "--severity", "一般", "--discovered-at", "2026-11-28T09:30",
               "-r", str(root_keys / "unit.recipient"), "--sign-key", str(root_keys / "unit_ed25519"),
               "--out", str(tmp_path / "b.nsb"))
    assert done.returncode == 0, done.stderr
    line = (root_keys / "unit.allowed_signers").read_text()
    expired = tmp_path / "expired.allowed_signers"
    expired.write_text(line.replace("namespaces=", f'valid-before="{local(PAST, "%Y%m%d")}",namespaces=', 1))
    bad = cli("incident", "verify", str(tmp_path / "b.nsb"), "-i", str(root_keys / "unit.agekey"),
              "--trust", str(expired), "--lang", "en")
    assert bad.returncode == 1 and "not in the trusted signers" in " ".join(bad.stdout.split()), bad.stdout
    good = cli("incident", "verify", str(tmp_path / "b.nsb"), "-i", str(root_keys / "unit.agekey"),
               "--trust", str(root_keys / "unit.allowed_signers"))
    assert good.returncode == 0, good.stdout
