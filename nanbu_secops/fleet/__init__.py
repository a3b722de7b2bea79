"""The fleet as the county office sees it: units and their terminals (the inventory), calendar
quarters, and roster changes between quarters, for the quarterly inspection (article 29)."""
