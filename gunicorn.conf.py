"""gunicorn settings, read by ``gunicorn app:server`` started in this directory; command-line flags still win.

They add what no flag gives the gthread worker: a deadline on reading a request, and a warning when open
WebSockets could take every thread.
"""

from config import Settings

settings = Settings.from_env()


def pre_request(worker, req):
    """Give the request's reads and writes a timeout: gthread reads a body with no deadline, so a client
    that stalls it would hold a thread for good. A WebSocket clears it on upgrade (events/ws.py)."""
    worker.log.debug("%s %s", req.method, req.path)
    sock = getattr(req.unreader, "sock", None)
    if sock is not None:
        sock.settimeout(settings.request_timeout_s)


def post_worker_init(worker):
    """Warn when sockets can take every thread: past ``--threads`` they wait, unrefused, and requests queue."""
    from gunicorn.workers.gthread import ThreadWorker

    if isinstance(worker, ThreadWorker) and worker.cfg.threads <= settings.ws_max_clients:
        worker.log.warning(
            "MLOPS_WS_MAX_CLIENTS=%d is not below --threads %d: open WebSockets can take every thread and "
            "requests (health checks too) wait behind them; set it to --threads minus the requests served at once",
            settings.ws_max_clients, worker.cfg.threads,
        )
