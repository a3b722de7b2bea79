"""Policies: operator-editable YAML files that tie every control to an article.

``load_policies`` reads a file or a folder of ``*.yml``, validates it against the shipped JSON
Schema and against each check's parameter schema, substitutes ``${variables}``, and returns
:class:`PolicySet`. Every problem is an :class:`~nanbu_secops.errors.InputError` naming the file
and line.
"""

from nanbu_secops.policy.loader import default_policy_dir, load_policies, require_variables
from nanbu_secops.policy.model import Control, Policy, PolicySet

__all__ = ["Control", "Policy", "PolicySet", "default_policy_dir", "load_policies", "require_variables"]
