"""The flow of an invoice and its claims, one module per step."""
