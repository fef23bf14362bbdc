"""Why zero-copy is not zero-copy here: the notes drivers leave in their
statistics (raw.driver_stats.<side>.notes), e.g. an AF_XDP socket that fell
back to copy mode and the kernel's reason, or MSG_ZEROCOPY completions that
report copied data. Generic: any driver's notes are shown per transport."""
from ..html import empty, fragment

TITLE = "Driver notes (zero-copy or not)"

TEMPLATE = """
<p class="note">What the transports themselves reported about how the data moved: a path that
asks for zero-copy may be refused it (a veth without native XDP zero-copy, an interface that
copies MSG_ZEROCOPY pages). Counted over all trials of the run.</p>
<table class="compact">
 <thead><tr><th>transport</th><th>side</th><th>note</th><th class="num">trials</th></tr></thead>
 <tbody>
 {% for n in notes %}
  <tr><td>{{ n.transport }}</td><td>{{ n.side }}</td><td class="reason">{{ n.text }}</td><td class="num">{{ n.count }}</td></tr>
 {% endfor %}
 </tbody>
</table>
"""


def _texts(value):
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [str(v) for v in value if v not in (None, "")]
    if isinstance(value, dict):
        return [f"{k}: {v}" for k, v in value.items() if v not in (None, "", False)]
    return [str(value)] if value not in (None, False) else []


def collect(records):
    """{(transport, side, text): count} from driver_stats.<side>.notes and from
    AF_XDP's zerocopy_refused reason."""
    counts = {}
    for rec in records:
        params = rec.get("params") or {}
        stats = (rec.get("raw") or {}).get("driver_stats") or {}
        if not isinstance(stats, dict):
            continue
        for side, block in stats.items():
            if not isinstance(block, dict):
                continue
            transport = params.get("rx" if side == "rx" else "tx", side)
            texts = _texts(block.get("notes"))
            refused = block.get("zerocopy_refused")
            if refused:
                texts.append(f"zero-copy refused: {refused}" if isinstance(refused, str)
                             else "zero-copy refused")
            for text in texts:
                key = (str(transport), side, text)
                counts[key] = counts.get(key, 0) + 1
    return counts


def render(run):
    records = [r for r in run.trials["record"]] + [r for r in run.ndr_steps["record"]]
    counts = collect(records)
    if not counts:
        return TITLE, empty("No transport in this run left a note about copies or zero-copy "
                            "(driver_stats.*.notes).")
    notes = [{"transport": t, "side": s, "text": x, "count": n}
             for (t, s, x), n in sorted(counts.items())]
    return TITLE, fragment(TEMPLATE, notes=notes)
