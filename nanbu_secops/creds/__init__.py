"""Credential rotation that cannot lock anyone out (article 26: 不定期更换登录口令).

The playbook ``playbooks/rotate_credentials.yml`` drives the steps; this package does the
parts that need care on the controller: generating secrets (``generate``), escrowing them to
the unit account manager's age recipient before any host is touched (``escrow``), the
operations key folder (``keys``) and proving a new credential by logging in with it
(``verify``).
"""
