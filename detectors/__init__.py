"""Detectors: stored rows in, findings out (entity, risk kind, score, level, evidence)."""
