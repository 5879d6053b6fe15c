"""The store: the only place with SQL (db.py connects, migrations.py owns the schema)."""
