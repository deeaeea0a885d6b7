"""Grafana boards for analysts, built as code on the analyst views (interfaces §6)."""
