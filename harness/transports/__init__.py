"""Byte streams between the harness and a device: in memory, a pseudo-terminal, a serial port.
Each is a trio.abc.Stream; the link core above them never knows which."""
