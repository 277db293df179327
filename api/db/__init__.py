"""Database: models, engine and unit of work, migrations (Alembic, in api/migrations)."""
