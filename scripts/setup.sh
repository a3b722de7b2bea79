#!/usr/bin/env bash
# Set up nanbu-secops in ./.venv on a Debian machine (Debian 12, Kylin/UOS derivatives).
#   scripts/setup.sh         runtime: python3-venv, then the package and its dependencies
#   scripts/setup.sh --test  also what the tests need: sshd for the SSH lab, iproute2, ...
# Idempotent: Debian packages are installed only when missing, pip only when pyproject.toml changed.
# The venv is made from Debian's /usr/bin/python3 so that the lab hosts (overlay copies of this
# machine, whose /root is hidden) and terminals can run the very same interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."

# libcrypt1: the system's crypt(3), which makes the SHA-512 password hashes (creds/generate.py).
packages=(python3 python3-venv libcrypt1)
# [controller]: ansible-core and paramiko, for running the playbooks from this checkout; the
# terminals' agent is installed without them (playbooks/deploy_agent.yml).
extras="[controller]"
if [[ "${1:-}" == "--test" ]]; then
  # sudo, nftables and chrony are what the terminal checks are tested against inside lab hosts;
  # age is the reference implementation the escrow files are checked against; ClamAV (no
  # signatures ship, the tests build their own databases) is what the antivirus checks read;
  # unbound serves the IPv6 checks' test zones on the lab bridge (started by the tests only);
  # openssl's `passwd -6` is the second SHA-512 crypt implementation the hashes are checked against;
  # nginx, apache2 and lighttpd (with its TLS and gzip modules) are the real web servers `ipv6 check`
  # is tested against, nsd the real authoritative DNS server (all started by the tests only, from
  # their own config files in a temporary folder);
  # faketime: the test command reruns the lab-free tests under shifted wall clocks (a year wrap, a
  # quarter boundary in county time, 400 days ahead), so no test depends on the day it runs.
  # systemd: `systemd-analyze security --offline=true` rates the agent's unit; libcap2-bin: capsh
  # decodes the capability sets inside the emulated sandbox and python3-seccomp builds its system
  # call filter (tests/sandbox.py, tests/test_agent_sandbox.py).
  packages+=(openssh-server openssh-client iproute2 util-linux procps sudo nftables chrony age openssl systemd libcap2-bin python3-seccomp
             clamav clamav-daemon clamdscan clamav-testfiles unbound chromium fonts-wqy-microhei
             nginx apache2 lighttpd lighttpd-mod-openssl lighttpd-mod-deflate nsd faketime
             rpm    # rpmbuild and rpm write the rpm databases tests/test_rpmdb.py reads
             libpwquality-tools   # pwscore: libpwquality itself judges the pwquality.conf files NS26-PASS-006 reads
             pamtester cracklib-runtime   # the scenario suite's PAM oracle runs the password stacks (with a dictionary)
             linkchecker)  # the dead-link oracle of site inspect's differential test
  extras="[test,controller]"
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) != 0 ]]; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
    exit 2
  fi
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  # Installing must not start daemons on this machine (chronyd would reach for public NTP
  # servers): policy-rc.d is Debian's switch for that; a temporary one is removed afterwards.
  rcd=/usr/sbin/policy-rc.d
  if [[ ! -e $rcd ]]; then
    printf '#!/bin/sh\nexit 101\n' > "$rcd" && chmod 755 "$rcd"
    trap 'rm -f "$rcd"' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ ! -x .venv/bin/python ]] || ! .venv/bin/python -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  rm -rf .venv
  /usr/bin/python3 -m venv .venv
fi

stamp=".venv/.installed$extras"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
# A venv the tests set up holds the runtime too: `scripts/audit.sh` after `scripts/test.sh` installs nothing.
tested=".venv/.installed[test,controller]"
if [[ "$extras" == "[controller]" && -f "$tested" && "$(cat "$tested")" == "$want" ]]; then
  stamp="$tested"
fi
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "setup: installing nanbu-secops$extras into .venv"
  log=.venv/pip-install.log
  if ! { .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip &&
         .venv/bin/python -m pip install --disable-pip-version-check -e ".$extras"; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "setup: pip install failed; full log in $log" >&2
    exit 2
  fi
  .venv/bin/python -c 'import nanbu_secops, ansible, yaml, psutil, paramiko, cryptography, jsonschema, rich'
  echo "$want" > "$stamp"
fi

if [[ "${1:-}" == "--test" ]]; then
  # The agent's dependencies as wheels, for playbooks/deploy_agent.yml in the tests (terminals have no
  # internet and the tests no network): exactly the files requirements/agent.lock pins, downloaded
  # hash-checked (wheels only: a wheel built here would not have the lock's hash), again only when
  # the lock changes. The project's own wheel is not among them: the playbook builds it offline.
  wstamp=.wheelhouse/.built
  lockhash="$(sha256sum requirements/agent.lock | cut -d' ' -f1)"
  if [[ ! -f "$wstamp" || "$(cat "$wstamp")" != "$lockhash" ]]; then
    echo "setup: downloading the agent's locked dependency wheels into .wheelhouse"
    rm -rf .wheelhouse
    log=.venv/pip-wheel.log
    if ! .venv/bin/python -m pip download --disable-pip-version-check --no-deps --only-binary=:all: \
           --require-hashes -r requirements/agent.lock -d .wheelhouse >"$log" 2>&1; then
      tail -n 30 "$log" >&2
      echo "setup: pip download failed; full log in $log" >&2
      exit 2
    fi
    echo "$lockhash" > "$wstamp"
  fi
  # pam_pwquality.so for the scenario suite's PAM oracle, unpacked into .pam-modules and never
  # installed: installing libpam-pwquality would add it to this machine's own common-password.
  if [[ ! -f .pam-modules/pam_pwquality.so ]]; then
    echo "setup: unpacking pam_pwquality.so into .pam-modules"
    tmp=$(mktemp -d) && chmod 755 "$tmp"
    (cd "$tmp" && apt-get download -qq libpam-pwquality 2>/dev/null && dpkg-deb -x libpam-pwquality_*.deb x)
    mkdir -p .pam-modules && cp "$(find "$tmp/x" -name pam_pwquality.so | head -1)" .pam-modules/
    rm -rf "$tmp"
  fi
fi
