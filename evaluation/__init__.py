"""Evaluation: verification and identification protocols, intervals, the walk-up gate, the study, reports."""
