"""IPv6 readiness of the platform's portals and app endpoints (article 9(2)): DNS, HTTP(S), links."""
