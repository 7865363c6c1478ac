import json
import threading
import time
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest

from forex_assets.core.prices.schema import validate_prices
from forex_assets.core.prices.sources import MindicadorClient, PriceSourceError, read_price_csv, synthetic_prices

# ---------------------------------------------------------------- synthetic


def test_synthetic_series_is_deterministic_and_usdclp_like():
    prices = synthetic_prices()
    pd.testing.assert_frame_equal(prices, synthetic_prices())
    validate_prices(prices)
    years = (prices["date"].iloc[-1] - prices["date"].iloc[0]).days / 365.25
    assert years >= 10
    assert 450 <= prices["usdclp"].min() and prices["usdclp"].max() <= 1050
    log_returns = np.diff(np.log(prices["usdclp"].to_numpy()))
    assert 0.0045 <= log_returns.std() <= 0.0075  # near 0.6 % a day
    assert np.sum(np.abs(log_returns) > 5 * log_returns.std()) >= 3  # occasional jumps


def test_synthetic_series_has_a_regime_change_in_the_last_120_observations():
    log_returns = np.diff(np.log(synthetic_prices()["usdclp"].to_numpy()))
    recent, before = log_returns[-30:], log_returns[-150:-30]  # the change is 30 observations from the end
    assert recent.std() / before.std() > 2.0


def test_synthetic_seed_changes_the_series():
    assert not synthetic_prices(seed=1)["usdclp"].equals(synthetic_prices(seed=2)["usdclp"])


# ---------------------------------------------------------------- csv


def test_csv_with_custom_columns(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text('fecha,valor\n2024-01-02,880.5\n2024-01-03,"1,001.25"\n')
    prices = read_price_csv(path, "fecha", "valor")
    assert list(prices.columns) == ["date", "usdclp"]
    assert prices["usdclp"].tolist() == [880.5, 1001.25]
    assert str(prices["date"].dtype) == "datetime64[ns]"


def test_csv_missing_column_is_named(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("day,price\n2024-01-02,880.5\n")
    with pytest.raises(PriceSourceError, match=r"column\(s\) \['date', 'usdclp'\] not found.*\['day', 'price'\]"):
        read_price_csv(path)


def test_csv_bad_value_names_line_and_column(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("date,usdclp\n2024-01-02,880.5\n2024-01-03,abc\n")
    with pytest.raises(PriceSourceError, match=r"column 'usdclp' are not a valid number \(line 3: 'abc'\)"):
        read_price_csv(path)


def test_csv_bad_date_names_line(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("date,usdclp\n2024-13-45,880.5\n")
    with pytest.raises(PriceSourceError, match=r"not a valid date \(line 2: '2024-13-45'\)"):
        read_price_csv(path)


def test_csv_missing_file(tmp_path):
    with pytest.raises(PriceSourceError, match="does not exist"):
        read_price_csv(tmp_path / "nope.csv")


# ---------------------------------------------------------------- mindicador over real HTTP


def _serie(year: int) -> list[dict]:
    days = pd.bdate_range(f"{year}-01-01", f"{year}-12-31")
    # mindicador stamps a Chilean date at local midnight in UTC (03:00Z in summer, 04:00Z in winter)
    stamps = days.tz_localize("America/Santiago").tz_convert("UTC")
    values = 800 + np.arange(len(days)) * 0.1
    rows = [
        {"fecha": s.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "valor": float(v)} for s, v in zip(stamps, values, strict=True)
    ]
    return rows[::-1]  # the API lists newest first


class FakeMindicador:
    """A real HTTP server on 127.0.0.1 whose answers per year are scripted."""

    def __init__(self):
        self.requests: list[str] = []
        self.script: dict[int, list[str]] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.requests.append(self.path)
                year = int(self.path.rstrip("/").split("/")[-1])
                action = outer.script.get(year, ["ok"])
                step = action.pop(0) if len(action) > 1 else action[0]
                if step == "sleep":
                    time.sleep(1.0)
                    step = "ok"
                if step.isdigit():
                    self.send_response(int(step))
                    self.end_headers()
                    return
                body = (
                    b"<html>not json"
                    if step == "garbage"
                    else json.dumps({"version": "1", "codigo": "dolar", "serie": _serie(year)}).encode()
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api():
    server = FakeMindicador()
    yield server
    server.close()


def _client(api, tmp_path, **kwargs):
    defaults = {"timeout_s": 0.3, "max_retries": 2, "backoff_s": 0.01}
    return MindicadorClient(api.url, tmp_path / "cache", **(defaults | kwargs))


TODAY = date(2024, 6, 14)


def test_mindicador_fetches_sorts_and_validates(api, tmp_path):
    prices = _client(api, tmp_path).prices(2022, 2024, today=TODAY)
    validate_prices(prices)
    assert prices["date"].iloc[0] == pd.Timestamp("2022-01-03")  # Chilean dates, not UTC dates
    assert prices["date"].is_monotonic_increasing
    assert sorted(api.requests) == ["/api/dolar/2022", "/api/dolar/2023", "/api/dolar/2024"]


def test_mindicador_fetches_only_missing_years_and_the_current_one(api, tmp_path):
    client = _client(api, tmp_path)
    first = client.prices(2022, 2024, today=TODAY)
    api.requests.clear()
    second = client.prices(2021, 2024, today=TODAY)
    assert sorted(api.requests) == ["/api/dolar/2021", "/api/dolar/2024"]  # 2022-2023 from cache
    assert len(second) > len(first)
    assert not list((tmp_path / "cache").glob("*.tmp"))


def test_mindicador_retries_a_500_then_succeeds(api, tmp_path):
    api.script[2023] = ["500", "503", "ok"]
    prices = _client(api, tmp_path).prices(2023, 2023, today=TODAY)
    assert len(prices) == len(pd.bdate_range("2023-01-01", "2023-12-31"))
    assert api.requests.count("/api/dolar/2023") == 3


def test_mindicador_gives_up_after_retries_and_caches_nothing(api, tmp_path):
    api.script[2023] = ["500"]
    with pytest.raises(PriceSourceError, match=r"/api/dolar/2023 failed after 3 attempts \(last error: HTTP 500\)"):
        _client(api, tmp_path).prices(2023, 2023, today=TODAY)
    assert api.requests.count("/api/dolar/2023") == 3
    assert not (tmp_path / "cache" / "dolar_2023.json").exists()


def test_mindicador_timeout_is_retried_then_reported(api, tmp_path):
    api.script[2023] = ["sleep"]
    with pytest.raises(PriceSourceError, match=r"timed out after 0.3 s"):
        _client(api, tmp_path).prices(2023, 2023, today=TODAY)
    assert api.requests.count("/api/dolar/2023") == 3


def test_mindicador_timeout_then_recovery(api, tmp_path):
    api.script[2023] = ["sleep", "ok"]
    assert len(_client(api, tmp_path).prices(2023, 2023, today=TODAY)) > 250


def test_mindicador_404_is_not_retried(api, tmp_path):
    api.script[2023] = ["404"]
    with pytest.raises(PriceSourceError, match="HTTP 404; not retried"):
        _client(api, tmp_path).prices(2023, 2023, today=TODAY)
    assert api.requests.count("/api/dolar/2023") == 1


def test_mindicador_unexpected_document(api, tmp_path):
    api.script[2023] = ["garbage"]
    with pytest.raises(PriceSourceError, match="unexpected document"):
        _client(api, tmp_path).prices(2023, 2023, today=TODAY)
