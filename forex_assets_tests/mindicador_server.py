"""A real HTTP server on 127.0.0.1 standing in for mindicador.cl (``GET /api/dolar/{year}``), answering each year
by a script: for the price-source tests (``test_price_sources.py``) and the retry tests (``test_retries.py``)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd


def mindicador_serie(year: int, scale: float = 1.0) -> list[dict]:
    """The API's ``serie`` for ``year``: every weekday, newest first, stamped as mindicador stamps a Chilean
    date (local midnight in UTC: 03:00Z in summer, 04:00Z in winter)."""
    days = pd.bdate_range(f"{year}-01-01", f"{year}-12-31")
    stamps = days.tz_localize("America/Santiago").tz_convert("UTC")
    values = (800 + np.arange(len(days)) * 0.1) * scale
    rows = [
        {"fecha": s.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "valor": float(v)} for s, v in zip(stamps, values, strict=True)
    ]
    return rows[::-1]


class FakeMindicador:
    """Answers each year by ``script[year]`` (default ``["ok"]``), one step per request, the last one
    repeating: "ok"; "sleep" (1 s, then ok); "garbage" (not JSON); "implausible" (prices 100x too high: the
    data contract refuses them); a status ("503"), or a status with a Retry-After ("429:2"). Records the path
    (``requests``) and the arrival time (``arrivals``, monotonic seconds) of every request."""

    def __init__(self):
        self.requests: list[str] = []
        self.arrivals: list[float] = []
        self.script: dict[int, list[str]] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.requests.append(self.path)
                outer.arrivals.append(time.monotonic())
                year = int(self.path.rstrip("/").split("/")[-1])
                action = outer.script.get(year, ["ok"])
                step = action.pop(0) if len(action) > 1 else action[0]
                if step == "sleep":
                    time.sleep(1.0)
                    step = "ok"
                status, _, retry_after = step.partition(":")
                if status.isdigit():
                    self.send_response(int(status))
                    if retry_after:
                        self.send_header("Retry-After", retry_after)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                serie = mindicador_serie(year, 100.0 if step == "implausible" else 1.0)
                body = (
                    b"<html>not json"
                    if step == "garbage"
                    else json.dumps({"version": "1", "codigo": "dolar", "serie": serie}).encode()
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def year_url(self, year: int) -> str:
        return f"{self.url}/api/dolar/{year}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()
