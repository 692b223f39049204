"""Decision: a face track's matches in, a door decision out (tracking, aggregation over frames, the N-of-M policy
with its reasons, liveness and the grants held for its verdict)."""
