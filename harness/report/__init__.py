"""The self-contained HTML report of a run (docs/report.md): one file that opens offline, with
the verdict, every expectation, the V/A/W chart and the run's link, faults, commands, device log
and events (of a run of several devices, all of these but the events for each device, the
charts on one time axis). One renderer, two sources: `harness run --html` (the run's own record and a bounded
envelope of its samples, `extension.py`) and the viewer's run page (the log's rows for a run).

- `envelope`: V, A, W and the supply's readback over scenario time in a bounded number of buckets
- `data`: what the report shows, made from a run record's JSON form and its charts
- `render`: the jinja2 template with uPlot inlined; the atomic write
- `extension`: the run extension behind `--html`
"""
