"""Fit the BG/NBD benchmark data with Python's `lifetimes` (BetaGeoFitter) and compare it
with Engage's Rust fit measured by criterion in the same run.

Usage: lifetimes_compare.py DATA_DIR CRITERION_DIR [REPEATS]
  DATA_DIR       holds daily_100k.csv (frequency,recency,T) and daily_100k_rust.json,
                 written by `cargo bench -p engage-bench --bench bgnbd`
  CRITERION_DIR  criterion's output (…/criterion), for the Rust fit's median time

Exits non-zero if the parameters do not agree to 3 significant figures.
"""

import json
import math
import statistics
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
from lifetimes import BetaGeoFitter


def three_figures(value: float) -> float:
    digits = 3 - int(math.floor(math.log10(abs(value)))) - 1
    return round(value, digits)


def main() -> int:
    data_dir, criterion_dir = Path(sys.argv[1]), Path(sys.argv[2])
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    summaries = pd.read_csv(data_dir / "daily_100k.csv")
    rust = json.loads((data_dir / "daily_100k_rust.json").read_text())
    estimates = json.loads(
        (criterion_dir / "bgnbd_fit" / "daily_100k" / "new" / "estimates.json").read_text()
    )
    rust_seconds = estimates["median"]["point_estimate"] / 1e9

    times = []
    fitter = None
    for _ in range(repeats):
        fitter = BetaGeoFitter(penalizer_coef=0.0)
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitter.fit(summaries["frequency"], summaries["recency"], summaries["T"])
        times.append(time.perf_counter() - started)
    python_seconds = statistics.median(times)

    print(f"customers: {len(summaries)}")
    print(f"{'param':<6} {'engage (Rust)':>16} {'lifetimes':>16} {'3 s.f. agree':>13}")
    agree = True
    for name in ["r", "alpha", "a", "b"]:
        ours, theirs = rust[name], float(fitter.params_[name])
        same = three_figures(ours) == three_figures(theirs) or abs(ours - theirs) <= 5e-4 * abs(theirs)
        agree &= same
        print(f"{name:<6} {ours:>16.6f} {theirs:>16.6f} {'yes' if same else 'NO':>13}")
    print(f"fit time, median: engage {rust_seconds * 1000:.1f} ms (criterion), "
          f"lifetimes {python_seconds * 1000:.1f} ms ({repeats} runs)")
    print(f"speed-up: {python_seconds / rust_seconds:.1f}x")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
