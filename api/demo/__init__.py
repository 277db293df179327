"""Demo data, the demo catalogue and seeding: development only."""
