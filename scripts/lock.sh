#!/usr/bin/env bash
# Regenerate requirements/agent.lock: the exact versions and sha256 hashes of the agent's runtime
# dependencies (pyproject.toml's `dependencies`, not the test or controller extras), which
# playbooks/deploy_agent.yml and `scripts/setup.sh --test` install with pip's --require-hashes.
#
#   bash scripts/lock.sh           needs the package index (run it on a machine with internet)
#
# When: after changing `dependencies` in pyproject.toml (tests/test_agent_lock.py fails until the
# lock agrees), and to take upstream fixes (a security release of cryptography, say): a new lock
# is a new deployment, so review its diff and deploy it like a release.
#
# uv resolves, in a temporary venv (nothing is installed on this machine): `--universal` for every
# platform and every Python from 3.11 on (Debian 12's), `--generate-hashes` with the hash of every
# file of each pinned version, so one lock serves x86_64 and aarch64 terminals (Kylin and UOS often
# run on ARM). Then pip itself proves it: it downloads, hash-checked, the wheels of every pinned
# version for CPython 3.11 on x86_64 and on aarch64 (Debian 12's glibc 2.36), so a lock that cannot
# be installed from wheels on either is refused here rather than on a terminal.
set -euo pipefail
cd "$(dirname "$0")/.."

lock=requirements/agent.lock
uv_version=0.13.8      # the resolver used; raise it deliberately
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

/usr/bin/python3 -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$uv_version"

{
  printf '%s\n' \
    "# The agent's runtime dependencies (pyproject.toml \`dependencies\`), pinned with the sha256 of every" \
    "# file of each version. Made by scripts/lock.sh (uv $uv_version); do not edit by hand: rerun it after" \
    "# changing pyproject.toml's dependencies or to take upstream fixes (its header says more)." \
    "# playbooks/deploy_agent.yml installs terminals from it with pip --require-hashes."
  "$tmp/venv/bin/uv" pip compile --quiet --no-config --no-header --cache-dir "$tmp/cache" \
    --universal --python-version 3.11 --generate-hashes --no-emit-package nanbu-secops pyproject.toml
} > "$tmp/agent.lock"

for arch in x86_64 aarch64; do
  platforms=(--platform "manylinux2014_$arch")
  for minor in $(seq 17 36); do platforms+=(--platform "manylinux_2_${minor}_$arch"); done
  if ! "$tmp/venv/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --python-version 3.11 --implementation cp "${platforms[@]}" --require-hashes -r "$tmp/agent.lock" \
        -d "$tmp/wheels-$arch" >"$tmp/pip-$arch.log" 2>&1; then
    cat "$tmp/pip-$arch.log" >&2
    echo "lock: the new lock does not install from wheels on $arch; $lock left as it was" >&2
    exit 2
  fi
done

mkdir -p "$(dirname "$lock")"
mv "$tmp/agent.lock" "$lock"
echo "lock: wrote $lock ($(grep -c '==' "$lock") pins; wheels checked for x86_64 and aarch64)"
