"""Storage: SQLAlchemy Core tables, one module per entity with the same verbs, engine and migrations."""
