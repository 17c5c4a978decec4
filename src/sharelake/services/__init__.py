"""Use cases: domain rules combined with storage. No HTTP here."""
