"""Allow ``python -m nanbu_secops``."""

from nanbu_secops.cli import main

raise SystemExit(main())
