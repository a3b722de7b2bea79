"""Incident response (article 27): what to secure from a terminal when something has happened."""
