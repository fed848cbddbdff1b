"""`make bench`: the service under wrk next to a minimal reference server (issue 4)."""
