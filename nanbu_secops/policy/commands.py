"""The policy variables that the commands beside ``check`` read, each under its command's own schema.

``policy validate`` runs every one of these schemas, so a policy it passes is one that no command
refuses later (a ``severity: hihg`` in ``account_findings`` used to pass validate and fail only
``accounts audit``). The schemas stay beside the code that reads them; this module only lists them.
"""

from __future__ import annotations

from typing import Any

from nanbu_secops.policy.loader import require_variables
from nanbu_secops.policy.model import PolicySet


def command_schemas() -> dict[str, dict[str, Any]]:
    """Command → the schema of the variables it reads (imported here, not at load: the commands import policy).

    Only modules a terminal's agent has are imported (no paramiko, no ansible): ``policy validate``
    runs on terminals too (playbooks/deploy_agent.yml)."""
    from nanbu_secops.accounts.platform import SETTINGS_SCHEMA
    from nanbu_secops.checks.sshd import PROBE_POLICY_SCHEMA as PROBE_SCHEMA
    from nanbu_secops.creds.rotate import POLICY_SCHEMA as ROTATE_SCHEMA
    from nanbu_secops.ipv6.assess import POLICY_SCHEMA as IPV6_SCHEMA
    from nanbu_secops.report.quarterly import SCORE_SCHEMA

    return {"accounts audit": SETTINGS_SCHEMA, "creds password": ROTATE_SCHEMA, "ipv6 check": IPV6_SCHEMA,
            "report quarterly": SCORE_SCHEMA, "ssh probe": dict(PROBE_SCHEMA)}


def validate_command_variables(policies: PolicySet) -> list[str]:
    """Check the variables of every command whose variables the policies define (InputError at the
    bad line, as the command itself would raise); return the commands checked. A command none of
    whose variables are defined is left out: such a policy folder is not meant for it."""
    checked = []
    for command, schema in command_schemas().items():
        names = set(schema.get("required", []))
        if any(names & policy.variables.keys() for policy in policies.policies):
            require_variables(policies, schema)
            checked.append(command)
    return checked
