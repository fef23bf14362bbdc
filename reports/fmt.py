"""Number formatting for tables: one place so every section writes units alike.

Every formatter takes None/NaN and returns "–", because optional fields are
missing in real documents.
"""
import math

from jinja2 import Undefined


def missing(v):
    # Templates pass absent optional fields through as jinja2 Undefined.
    if v is None or isinstance(v, Undefined):
        return True
    try:
        return math.isnan(float(v))
    except (TypeError, ValueError):
        return False


def _scaled(v, unit, digits=4, steps=((1e9, "G"), (1e6, "M"), (1e3, "K"))):
    for div, prefix in steps:
        if abs(v) >= div:
            return f"{v / div:.{digits}g}\u00a0{prefix}{unit}"
    return f"{v:.{digits}g}\u00a0{unit}"


def pps(v):
    return "–" if missing(v) else _scaled(float(v), "pps")


def count(v):
    if missing(v):
        return "–"
    v = float(v)
    return f"{v:,.0f}".replace(",", "\u202f") if v == int(v) else f"{v:,.1f}".replace(",", "\u202f")


def ns(v):
    if missing(v):
        return "–"
    v = float(v)
    if v >= 1e6:
        return f"{v / 1e6:.3g}\u00a0ms"
    if v >= 1e4:
        return f"{v / 1e3:.3g}\u00a0µs"
    return f"{v:.0f}\u00a0ns"


def pct(v, digits=3):
    """A ratio (0..1) as a percentage."""
    if missing(v):
        return "–"
    v = 100 * float(v)
    if v == 0:
        return "0\u00a0%"
    if abs(v) < 0.001:
        return "<0.001\u00a0%"
    return f"{v:.{digits}g}\u00a0%"


def percent(v):
    """A value already in percent."""
    return "–" if missing(v) else f"{float(v):.3g}\u00a0%"


def mbytes(v):
    return "–" if missing(v) else f"{float(v):.3g}\u00a0MB/s"


def plain(v):
    if missing(v):
        return "–"
    if isinstance(v, float) and v == int(v):
        return str(int(v))
    return str(v)


def size(v):
    return "–" if missing(v) else f"{int(float(v))}\u00a0B"


def payload_label(payload_bytes, size_mix=None):
    """A trial's packet size as the report names it: "272 B", or for a frame-size
    mix (params.size_mix, frame bytes : weight) "IMIX 64:7,576:4,1518:1" —
    never the mix's largest payload, which only sizes the buffers."""
    if isinstance(size_mix, str) and size_mix:
        return f"IMIX {size_mix}"
    return size(payload_bytes)


def row_size(row):
    """The size column of one (aggregated) row: its size_label where the row has one
    (payload_label: "IMIX ..." for a mix), else its payload size."""
    label = row.get("size_label") if hasattr(row, "get") else None
    if isinstance(label, str) and label:
        return label
    return size(row.get("params.payload_bytes") if hasattr(row, "get") else None)


def bytes_iec(v):
    if missing(v):
        return "–"
    v = float(v)
    for div, unit in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if v >= div:
            return f"{v / div:.3g}\u00a0{unit}"
    return f"{v:.0f}\u00a0B"


def mbits(v):
    """Megabits per second with four significant digits."""
    if missing(v):
        return "–"
    return f"{float(v):.4g}"
