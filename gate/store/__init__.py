"""The store: the one schema for every table, the database, the event journal, gate heartbeats, encryption at
rest, employee identifiers and the migrations."""
