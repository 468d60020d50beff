"""`nnctl serve`: models over HTTP (the `serve` extra: FastAPI and uvicorn). Imports training, inference and below.

    rows      a request's rows (JSON records, or CSV) in, predict's answers out; RequestError and its HTTP status
    registry  the served models by file stem, each swapped whole when its file is replaced (the Watcher thread)
    metrics   request, row, latency and error counts, and their Prometheus text
    app       the FastAPI routes, the body limit, every error as JSON (imports FastAPI: `nnctl serve` only)
"""
