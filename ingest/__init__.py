"""Ingest: records in over MQTT, HTTP and files, validated and stored exactly once."""
