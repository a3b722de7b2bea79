"""Which crypt method and cost a terminal itself would use when a user changes a password.

A rotated password is hashed the way the terminal's own ``passwd`` would hash it, so that a
rotation neither weakens the terminal's hashes nor writes a kind its administrators do not expect
(Debian 12 writes yescrypt although its login.defs says SHA512).

``passwd`` goes through PAM: pam_unix's ``password`` line in ``common-password`` (Debian family)
or ``system-auth`` (Red Hat family) decides. pam_unix (Linux-PAM 1.4 and later, support.c
``_set_ctrl``) first presets the method from login.defs ``ENCRYPT_METHOD`` and, when that is
SHA256/SHA512, the cost from ``SHA_CRYPT_MAX_ROUNDS``; then its own options override, the last
hash option winning, and ``rounds=N`` sets the cost. yescrypt, gost_yescrypt and blowfish
without a cost get 5; an out-of-range cost falls back to 5 (yescrypt 3..11, blowfish 4..31) or,
for SHA, below 1000 to libxcrypt's default, and above 9,999,999 to 9,999,999.

Without a pam_unix password line, shadow-utils' own rules apply (login.defs(5)):
``ENCRYPT_METHOD`` (DES when absent), ``SHA_CRYPT_MIN_ROUNDS``/``SHA_CRYPT_MAX_ROUNDS``,
``YESCRYPT_COST_FACTOR`` (5 when absent), ``BCRYPT_MIN_ROUNDS``.

DES, bigcrypt and MD5 are refused rather than followed: a rotation must not write a hash that
truncates the password to 8 characters or that article 26's controls would flag.
"""

from __future__ import annotations

from nanbu_secops.collect.logindefs import LoginDefs
from nanbu_secops.collect.logindefs import parse as parse_login_defs
from nanbu_secops.collect.pam import parse_rules
from nanbu_secops.creds.generate import HashMethod

#: pam_unix's hash options and the libxcrypt prefix each writes.
PAM_METHODS: dict[str, str] = {
    "yescrypt": "$y$",
    "gost_yescrypt": "$gy$",
    "sha512": "$6$",
    "sha256": "$5$",
    "blowfish": "$2b$",
}
WEAK = ("md5", "bigcrypt", "des")
#: pam_unix's option table compares by prefix (strncmp); the order of this tuple is the table's.
_PAM_TOKENS = ("md5", "bigcrypt", "sha256", "sha512", "blowfish", "gost_yescrypt", "yescrypt")
_SHADOW_METHODS = {"SHA512": "sha512", "SHA256": "sha256", "YESCRYPT": "yescrypt", "BCRYPT": "blowfish",
                   "MD5": "md5", "DES": "des"}


def pam_unix_password_line(text: str) -> tuple[int, list[str]] | None:
    """(line number, module options) of the last ``password … pam_unix.so`` line, or None
    (PAM's own line syntax: collect/pam.py)."""
    found = None
    for rule in parse_rules(text, ""):
        if rule.kind == "password" and rule.module == "pam_unix.so":
            found = (rule.line, list(rule.args))
    return found


def _pam_token(option: str) -> str | None:
    return next((token for token in _PAM_TOKENS if option.startswith(token)), None)


def terminal_method(pam_path: str, pam_text: str | None, login_defs_text: str | None) -> HashMethod:
    """The method ``passwd`` on the terminal would use; ValueError naming the file when it is
    DES, bigcrypt or MD5, or a method libxcrypt does not know."""
    defs = parse_login_defs(login_defs_text or "")
    line = pam_unix_password_line(pam_text) if pam_text is not None else None
    if line is None:
        return _shadow_method(defs)
    number, options = line
    method, source, rounds = "des", f"{pam_path}:{number} (pam_unix.so without a hash option)", None
    encrypt = defs.values.get("ENCRYPT_METHOD")
    if encrypt is not None:
        token = next((t for t in _PAM_TOKENS if encrypt.lower().startswith(t)), None)
        if token is not None:
            method = token
            source = (f"/etc/login.defs:{defs.lines['ENCRYPT_METHOD']} ENCRYPT_METHOD "
                      f"(pam_unix.so at {pam_path}:{number} has no hash option)")
            if token in ("sha256", "sha512") and "SHA_CRYPT_MAX_ROUNDS" in defs.values:
                rounds = _integer(defs.values["SHA_CRYPT_MAX_ROUNDS"])
    for option in options:
        token = _pam_token(option)
        if token is not None:
            method, source = token, f"{pam_path}:{number} pam_unix.so {token}"
        elif option.startswith("rounds="):
            rounds = _integer(option[len("rounds="):])
    if method in WEAK:
        raise ValueError(f"{source}: the terminal writes {method} hashes; set yescrypt or sha512 for pam_unix")
    if rounds is None and method in ("yescrypt", "gost_yescrypt", "blowfish"):
        rounds = 5
    if rounds is not None:
        if method in ("yescrypt", "gost_yescrypt") and not 3 <= rounds <= 11 or method == "blowfish" and not 4 <= rounds <= 31:
            rounds = 5
        elif method in ("sha256", "sha512"):
            rounds = 0 if rounds < 1000 or rounds == 2**31 - 1 else min(rounds, 9_999_999)
    return HashMethod(method, PAM_METHODS[method], rounds or 0, source)


def _shadow_method(defs: LoginDefs) -> HashMethod:
    """shadow-utils' choice when PAM does not hash (login.defs(5))."""
    value = defs.values.get("ENCRYPT_METHOD")
    source = f"/etc/login.defs:{defs.lines['ENCRYPT_METHOD']} ENCRYPT_METHOD" if value is not None else \
        "/etc/login.defs: no ENCRYPT_METHOD (shadow-utils writes DES)"
    method = _SHADOW_METHODS.get((value or "DES").upper())
    if method is None:
        raise ValueError(f"{source}: unknown method {value!r}")
    if method in WEAK:
        raise ValueError(f"{source}: the terminal writes {method} hashes; set ENCRYPT_METHOD YESCRYPT or SHA512")
    count = 0
    if method in ("sha256", "sha512"):
        low = _integer(defs.values.get("SHA_CRYPT_MIN_ROUNDS", ""))
        high = _integer(defs.values.get("SHA_CRYPT_MAX_ROUNDS", ""))
        chosen = low if low is not None else high
        count = 0 if chosen is None else max(1000, min(chosen, 999_999_999))
    elif method == "yescrypt":
        cost = _integer(defs.values.get("YESCRYPT_COST_FACTOR", ""))
        count = 5 if cost is None else max(1, min(cost, 11))
    elif method == "blowfish":
        cost = _integer(defs.values.get("BCRYPT_MIN_ROUNDS", ""))
        count = 13 if cost is None else max(4, min(cost, 31))
    return HashMethod(method, PAM_METHODS[method], count, source)


def _integer(text: str) -> int | None:
    try:
        return int(text, 10)
    except ValueError:
        return None
