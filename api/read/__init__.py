"""The query side: what the routes show, read from the database and the ledger."""
