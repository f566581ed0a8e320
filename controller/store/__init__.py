"""Persistence: SQLAlchemy 2 Core tables, one writer thread, and snapshot loading at start."""
