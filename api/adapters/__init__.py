"""The service's ports to the outside: ledger, metrics, encryption, files, workers."""
