"""What the API, the console and the ingest door share: who is calling, from where, and what each route
may be called with."""
