"""Decision: a face track's matches in, a door decision out (tracking, aggregation over frames, liveness, policy)."""
