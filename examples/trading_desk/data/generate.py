"""Writes candles.csv: hourly OHLCV candles of two made-up markets, the same every time.

A seeded geometric random walk whose drift changes regime every 60-240 hours (trends
up, down and sideways, as markets have), so a trend-following strategy has both good
and bad stretches. No real market's data: run ``python generate.py`` to write it again
(byte for byte the same file).
"""

from __future__ import annotations

import csv
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

SEED = 3  # seed 003
START = datetime(2025, 10, 1, tzinfo=UTC)
HOURS = 1500  # candles a market: 62.5 days
MARKETS = {"BTC-USD": (42_000.0, 0.006), "ETH-USD": (2_300.0, 0.008)}  # start, hourly vol


def candles() -> list[tuple[str, str, float, float, float, float, float]]:
    rng = random.Random(SEED)
    rows = []
    for symbol, (price, vol) in MARKETS.items():
        drift, regime_left = 0.0, 0
        for hour in range(HOURS):
            if regime_left == 0:
                drift = rng.choice((-1.0, -1.0, 0.0, 1.0, 1.0)) * vol * rng.uniform(0.05, 0.25)
                regime_left = rng.randint(60, 240)
            regime_left -= 1
            open_ = price
            close = open_ * math.exp(drift + rng.gauss(0.0, vol))
            high = max(open_, close) * (1 + abs(rng.gauss(0.0, vol / 2)))
            low = min(open_, close) * (1 - abs(rng.gauss(0.0, vol / 2)))
            volume = rng.lognormvariate(3.0, 0.5) * (10 if symbol == "ETH-USD" else 1)
            at = (START + timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M:%SZ")
            rows.append((at, symbol, round(open_, 2), round(high, 2), round(low, 2),
                         round(close, 2), round(volume, 4)))
            price = close
    return rows


def main() -> None:
    with (Path(__file__).parent / "candles.csv").open("w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(("time", "symbol", "open", "high", "low", "close", "volume"))
        writer.writerows(candles())


if __name__ == "__main__":
    main()
