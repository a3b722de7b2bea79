"""Action plugin of nanbu-secops: rotate one account's password on one host, end to end.

Every step that touches a secret or a hash runs inside this plugin, on the controller, and
nothing it returns holds one: the current hash (read on the host for the rollback and for
settling an interrupted run), the new secret and its hash (from ``nanbu-secops creds password``)
and the secret handed to ``creds verify`` stay in this process. So the rotation's output, -vvv
included, shows neither, and no task has to remember ``no_log`` (article 26; the escrow's own
guarantees are described in rotate_credentials.yml).

Steps: read the account's lock state and the terminal's hash method (nanbu_shadow_password);
leave a locked, passwordless or expired account alone and say why; generate and escrow the new
password on the controller; set it on the host only over the hash just read; log in with it over
SSH; on any failure after the escrow, set the previous hash again and record the rollback.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import subprocess
from collections.abc import Iterator
from typing import Any

from ansible.plugins.action import ActionBase

ARGUMENT_SPEC: dict[str, Any] = {
    "name": {"type": "str", "required": True},
    "cli": {"type": "str", "required": True},
    "escrow_dir": {"type": "str", "required": True},
    "host": {"type": "str", "required": True},
    "policy": {"type": "str", "required": True},
    "recipients": {"type": "list", "elements": "str", "required": True},
    "verify_address": {"type": "str", "required": True},
    "verify_port": {"type": "int", "default": 22},
    "known_hosts": {"type": "str", "required": True},
    "refuse_reason": {"type": "str", "default": ""},
}
MODULE = "nanbu_shadow_password"
TIMEOUT = 120


class ActionModule(ActionBase):
    """``nanbu_rotate_password``: returns ``rotation`` (account, kind, result, reason) or, in
    check mode for a usable account, only a message."""

    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            return self._rotate(super().run(tmp, task_vars), task_vars)
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)

    def _rotate(self, result: dict[str, Any], task_vars: dict[str, Any] | None) -> dict[str, Any]:
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        account = args["name"]

        def outcome(kind: str, reason: str = "", **extra: Any) -> dict[str, Any]:
            rotation = {"account": account, "kind": "password", "result": kind}
            if reason:
                rotation["reason"] = reason
            return {**result, **extra, "rotation": rotation}

        state = self._execute_module(MODULE, module_args={"name": account, "state": "query"},
                                     task_vars=task_vars)
        if state.get("unreachable") or state.get("failed"):
            return {**result, **state}
        if state["status"] != "usable":
            return outcome("failed" if state["status"] == "missing" else "skipped", state["reason"], changed=False)
        if args["refuse_reason"]:
            return outcome("failed", args["refuse_reason"], changed=False)
        if self._task.check_mode:
            return {**result, "changed": False, "msg": f"{account}: a new password would be escrowed, set and verified"}

        with self._unlogged():
            read = self._low_level_execute_command(f"getent shadow {shlex.quote(account)}", sudoable=True)
        if read.get("unreachable"):
            return {**result, **read}
        fields = read.get("stdout", "").strip().split(":")
        if read.get("rc") != 0 or len(fields) < 2:
            return outcome("failed", f"getent shadow {account} failed (exit {read.get('rc')})", changed=False)
        old_hash = fields[1]

        # Generate and escrow on the controller; the current hash settles an interrupted run's entries.
        terminal = {"current_hash": old_hash, "pam_path": state["pam_path"], "pam_text": state["pam_text"],
                    "login_defs": state["login_defs"]}
        made = self._controller([args["cli"], "creds", "password", "--escrow", args["escrow_dir"], "--host",
                                 args["host"], "--account", account, "--policy", args["policy"], "--terminal-stdin",
                                 *[f"--recipient={r}" for r in args["recipients"]]], json.dumps(terminal))
        if made.returncode != 0:
            return outcome("failed", f"creds password: {made.stderr.strip()[-500:]}", changed=False)
        new = json.loads(made.stdout)

        applied = self._execute_module(MODULE, module_args={"name": account, "state": "set", "password": new["hash"],
                                                            "expected": old_hash}, task_vars=task_vars)
        if applied.get("unreachable"):
            return {**result, **applied}  # the entry stays unconfirmed; the next run settles it
        if applied.get("failed"):
            return self._roll_back(args, account, old_hash, new, applied.get("msg", "not set"), outcome, task_vars)

        checked = self._controller([args["cli"], "creds", "verify", "--address", args["verify_address"], "--port",
                                    str(args["verify_port"]), "--user", account, "--known-hosts", args["known_hosts"],
                                    "--host-key-alias", args["host"], "--entry", new["entry"], "--password-stdin"],
                                   new["secret"] + "\n")
        if checked.returncode != 0:
            try:
                reason = json.loads(checked.stdout)["reason"]
            except (ValueError, KeyError, TypeError):
                reason = checked.stderr.strip()[-500:] or "no answer"
            return self._roll_back(args, account, old_hash, new, f"verification failed: {reason}", outcome, task_vars)
        return outcome("verified", changed=True)

    def _roll_back(self, args: dict[str, Any], account: str, old_hash: str, new: dict[str, Any], why: str,
                   outcome: Any, task_vars: dict[str, Any] | None) -> dict[str, Any]:
        """Set the previous hash again (only over the new one: if the new one never landed there is
        nothing to undo) and record the rollback in the escrow entry's log."""
        undone = self._execute_module(MODULE, module_args={"name": account, "state": "set", "password": old_hash,
                                                           "expected": new["hash"]}, task_vars=task_vars)
        if undone.get("unreachable") or undone.get("failed"):
            return {**outcome("failed", f"{why}; the rollback failed too: {undone.get('msg', 'unreachable')}"),
                    "failed": True, "msg": f"{account}: {why}; the rollback failed: {undone.get('msg', 'unreachable')}"}
        self._controller([args["cli"], "creds", "mark", new["entry"], "rolled-back", "--detail", why], "")
        return outcome("rolled-back", why, changed=True)

    @contextlib.contextmanager
    def _unlogged(self) -> Iterator[None]:
        """The connection logs what a command prints at -vvv unless the play context says no_log;
        the current hash is read with it said here, so no task has to."""
        contexts = [c for c in (self._play_context, getattr(self._connection, "_play_context", None)) if c is not None]
        before = [c.no_log for c in contexts]
        for context in contexts:
            context.no_log = True
        try:
            yield
        finally:
            for context, value in zip(contexts, before, strict=False):
                context.no_log = value

    @staticmethod
    def _controller(argv: list[str], stdin: str) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return subprocess.CompletedProcess(argv, 1, "", str(exc))
