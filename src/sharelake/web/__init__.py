"""What the API, the console and the ingest door share: who is calling, from where, what each route
may be called with, how an error answers, and how a list's query parameters read."""
