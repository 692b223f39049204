"""The store: the one schema for every table (schema), opening and migrating the database (database), the queries
by job (events, people, gate_status, audit, accounts, sealed), the event journal, gate heartbeats, encryption at
rest, employee identifiers and the migrations. Nothing outside the store writes SQL: a function taking a Session
joins the caller's transaction (one enrolment, one transaction), one taking a Database is a transaction itself."""
