"""How every report shows a value: one number style, one boolean style, one dash for nothing.

The HTML and Markdown reports (and the model's summaries) format through these functions, so
a number reads the same wherever it appears: three significant digits with a compact exponent
(0.523, 41.9, 1.45e3, 2.43e13), ``∞`` for infinity, ``yes``/``no`` for booleans, ``—`` for missing.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

MISSING = "—"


def missing(v) -> bool:
    """None, NaN, NA and NaT: a value that was not measured."""
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    try:
        return bool(isinstance(v, float | np.floating) and math.isnan(v))
    except TypeError:
        return False


def number(v) -> float | None:
    """``v`` as a float, or None when it is missing, a boolean or not a number."""
    if missing(v) or isinstance(v, bool | np.bool_):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def sig3(v) -> str:
    """Three significant digits, compact exponent: 0.523, 41.9, 1.45e3, 2.43e13, ∞."""
    x = number(v)
    if x is None:
        return MISSING
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    text = f"{x:.3g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def fmt_ratio3(x) -> str:
    """A ratio near 1 to three decimals (1.004), where a self-check's 5 % target is read."""
    return MISSING if missing(x) else f"{float(x):.3f}"


def fixed3(x: float) -> str:
    """x with three significant digits and no exponent (1.23, 12.3, 123)."""
    decimals = max(0, 2 - math.floor(math.log10(abs(x)))) if x else 2
    return f"{x:.{decimals}f}"


def fmt_time(v) -> str:
    """Seconds as ns, µs, ms or s with three significant digits."""
    x = number(v)
    if x is None or math.isinf(x):
        return MISSING
    if x == 0:
        return "0"
    for scale, unit in ((1, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if abs(x) >= scale * 0.9995:
            return f"{fixed3(x / scale)} {unit}"
    return f"{fixed3(x / 1e-9)} ns"


def fmt_gbps(v) -> str:
    """GB/s with one decimal (bandwidths are read to a tenth, never in exponents)."""
    x = number(v)
    if x is None:
        return MISSING
    return "<0.1" if 0 < x < 0.05 else f"{x:.1f}"


def fmt_percent(v) -> str:
    x = number(v)
    if x is None:
        return MISSING
    pct = x * 100
    if 0 < pct < 0.1:
        return "<0.1%"
    return f"{pct:.0f}%" if pct >= 10 else f"{pct:.1f}%"


def fmt_ratio(v) -> str:
    """A ratio to the fastest: 1.00×, 2.35×, 47.0×."""
    x = number(v)
    return MISSING if x is None or math.isinf(x) else f"{fixed3(x)}×"


def fmt_count(v) -> str:
    x = number(v)
    return MISSING if x is None else f"{int(x):,}"


def fmt_bool(v) -> str:
    return "yes" if v else "no"


def fmt_value(v) -> str:
    """Any cell: booleans as yes/no, floats with three significant digits, missing as a dash."""
    if missing(v):
        return MISSING
    if isinstance(v, bool | np.bool_):
        return fmt_bool(v)
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        return sig3(v)
    return str(v)


def fmt_date(v) -> str:
    """A timestamp to the minute, in UTC when it carries a zone."""
    if missing(v) or v == "":
        return MISSING
    try:
        stamp = pd.Timestamp(v)
    except (TypeError, ValueError):
        return str(v)
    if stamp.tzinfo is not None:
        return stamp.tz_convert("UTC").strftime("%Y-%m-%d %H:%M UTC")
    return stamp.strftime("%Y-%m-%d %H:%M")


def fmt_seconds(v) -> str:
    """A wait or a duration a person reads: 0.4 s, 12 s, 95 s."""
    x = number(v)
    return MISSING if x is None else f"{x:.1f} s" if x < 10 else f"{x:.0f} s"


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """'1 adapter', '2 adapters' (``nouns`` for irregular plurals)."""
    return f"{n:,} {noun if n == 1 else nouns or noun + 's'}"


def span(low: str, high: str) -> str:
    """'a–b', or just 'a' when both ends read the same."""
    return low if low == high else f"{low}–{high}"


def fmt_time_range(low, high) -> str:
    """Two times as one range, the unit said once where they share it: 1.10–1.52 ms, 980 µs–1.52 ms."""
    a, b = fmt_time(low), fmt_time(high)
    if a == b:
        return a
    unit_a, unit_b = a.rpartition(" ")[2], b.rpartition(" ")[2]
    return f"{a.rpartition(' ')[0]}–{b}" if unit_a == unit_b and " " in a else span(a, b)


def fmt_faults(v) -> str:
    """Page faults per call, rounded (a fraction of a fault per call reads as 0)."""
    x = number(v)
    return MISSING if x is None else f"{round(x):,}"
