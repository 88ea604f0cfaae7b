"""Devices the harness can talk to without hardware: the mock (Python) lives here."""
