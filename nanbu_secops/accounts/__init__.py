"""Platform and local account hygiene (article 26).

账号连续3个月未登录使用的，由主管单位禁用或收回账号；管理、使用人员必须是本单位在职在编干部；
严禁将账号转借他人使用. ``sources`` reads the platform's and HR's exports, ``rules`` judges
them (the same dormancy and sharing rules serve the terminals' own accounts in ``check``), and
``register`` keeps the append-only record of reinstatements.
"""
