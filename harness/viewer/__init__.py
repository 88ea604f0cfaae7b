"""The live web viewer: a quart-trio app served by Hypercorn inside the run's nursery
(`harness run`, `harness monitor`), or over the log alone (`harness view`). See docs/viewer.md.

- `live`: what the live page shows of each device, kept from the run's bus
- `hub`: per-client bounded queues (a stalled browser never slows the run)
- `stats`: last-minute min/max/avg, moving averages, energy, z-score outliers
- `app`: pages, JSON API, CSV downloads, the WebSocket
- `archive`: read-only queries of the log in worker threads
- `metrics`: GET /metrics, the run's (or the log's) state for Prometheus, read at scrape time
- `openapi`: the API's OpenAPI description, GET /api/openapi.json
- `runreport`: a logged run's HTML report (harness.report), GET /api/runs/<id>/report.html
- `server`: Hypercorn, the run extension, `harness view`
- `transport`: Hypercorn on connections the viewer can cut (bounded sends, bounded input, a
  shutdown that no client can hold)
"""
