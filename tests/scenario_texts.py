"""Scenario files the tests write, shared where several test the same case."""

FAILING = """\
[scenario]
name = "doomed"
duration = "10s"
[[supply]]
at = "0s"
volts = 5.0
amps = 0.25
[[expect]]
name = "rail sags below 4 V"
measure = "v"
stat = "min"
below = 4.0
[[expect]]
alert = "uv"
absent = true
"""
"""A scenario built to fail: its rail never sags below 4 V; its uv alert stays absent (it holds)."""
