"""Platform-use inspection of the units' sites (article 29, judged by articles 14, 18 and 12)."""
