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

LEFT_AND_RIGHT = """\
[[device]]
name = "left"

[[device]]
name = "right"
link = { drop = 0.2 }

[[supply]]
at = "0s"
volts = 5.0
amps = 0.25
"""
"""Two devices on a 5 V rail: left on a clean link, right's losing a fifth of its frames (the
scenarios of several devices start so)."""

TWO_DEVICES = (
    """\
[scenario]
name = "two boards"
duration = "20s"
seed = 3

"""
    + LEFT_AND_RIGHT
    + """

[[step]]
at = "1s"
send = { cmd = "set_interval", value = 200 }
ack_within = "2s"

[[expect]]
link = { lost = 0, duplicated = 0, commands_failed = 0 }

[[expect]]
name = "rail holds"
measure = "v"
stat = "min"
above = 4.9
"""
)
"""Two devices, one on a clean link and one losing a fifth of its frames: each must lose
nothing, get its command once, and see its rail hold."""
