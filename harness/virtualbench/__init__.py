"""`harness virtual-bench`: a bench with no hardware. The firmware runs in simavr as a
stand-alone Uno on a pty (opening the port resets it), fed by an emulated bench supply that the
real drivers reach on a loopback SCPI port (and, optionally, as a Korad on a pty); the supply's
output drives the simulator's rail through its control channel.

- `rail`: the emulated output's terminals as the simulator's rail
- `serve`: the command: start it all, print where each part is, run until Ctrl-C
"""

LOAD_OHMS = 20.0
"""The default load: 5 V draws 250 mA, the shipped scenarios' current."""
