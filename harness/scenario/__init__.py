"""The scenario format: loading a TOML file with one-line errors (`load`), what it says as values (`model`), the supply profile (`profile`) and durations (`units`)."""
