"""Optimisation proposals for the shared platform (article 28).

各单位可对集约化平台提出优化、升级建议，由县里汇总后报送市级. A unit fills one YAML form
per proposal (``form``: the blank template, loading with file:line errors); the county office
merges near-duplicates from every unit into one list per category (``aggregate``), rendered for
the municipal office by ``nanbu_secops.report.proposals``.
"""
