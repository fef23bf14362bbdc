"""Where packets were lost: the drop reconciliation of every trial that lost any."""
import numpy as np
import pandas as pd

from .. import charts, fmt, vocab
from ..html import empty, fragment
from ..stats import by_config

TITLE = "Packet loss"
# Colours by precedence position (Okabe–Ito); the layers themselves are the harness's.
LAYER_PALETTE = ["#E69F00", "#CC79A7", "#0072B2", "#56B4E9", "#009E73", "#F0E442", "#000000"]
UNATTRIBUTED_COLOUR = "#D55E00"


def layers_of(run):
    """[(name, counter text)] of the harness's drop layers, precedence order."""
    return vocab.drop_layers(run.doc)


TEMPLATE = """
<p class="note">Lost = sent − received over the whole trial (warm-up, window and the drain after
the generator stopped: every packet the generator sent that the sink never saw), and the loss share
divides it by the whole trial's sent. Each drop is attributed once, in this order:
{{ layer_order }}; what no counter explains is <em>unattributed</em> and shown as its own
number, so the stacks add up to lost. A trial fails its reconciliation when the unattributed rest exceeds max(10, 0.1 % of sent)
or the counters claim more than was lost.</p>
<div class="cards">
 <div class="card"><div class="big">{{ n_measured }}</div>measured trials</div>
 <div class="card"><div class="big">{{ n_lossless }}</div>lost nothing</div>
 <div class="card"><div class="big">{{ n_lossy }}</div>lost packets</div>
 <div class="card{% if n_bad %} alert{% endif %}"><div class="big">{{ n_bad }}</div>reconciliation failed</div>
 <div class="card{% if unattributed %} alert{% endif %}"><div class="big">{{ fmt.count(unattributed) }}</div>packets unattributed in all</div>
</div>
{% if chart %}<figure>{{ chart }}</figure>{% endif %}
{% if rows %}
<h3>Reconciliation per trial</h3>
{% if quiet_layers %}<p class="note">No trial counted a drop in: {{ quiet_layers|join(", ") }}
(columns left out).</p>{% endif %}
<div class="scroll">
<table class="compact">
 <thead><tr><th>generator → sink</th><th>payload</th><th>offered</th><th>rep</th>
  <th class="num">sent (trial)</th><th class="num">received (trial)</th><th class="num">lost</th>
  {% for l in layers %}<th class="num" title="{{ layer_text[l] }}">{{ l }}</th>{% endfor %}
  <th class="num">unattributed</th><th class="num">over-attributed</th><th>reconciled</th></tr></thead>
 <tbody>
 {% for r in rows %}
  <tr{% if r["derived.reconciliation_ok"] == False %} class="badrow"{% endif %}><td>{{ r.pair }}</td><td>{{ fmt.row_size(r) }}</td><td>{{ r.rate_label }}</td>
   <td>{{ fmt.plain(r["params.repetition"]) }}</td>
   <td class="num">{{ fmt.count(r["raw.drop_counters.sent"]) }}</td>
   <td class="num">{{ fmt.count(r["raw.drop_counters.received_unique"]) }}</td>
   <td class="num">{{ fmt.count(r["derived.lost_packets"]) }}</td>
   {% for l in layers %}<td class="num">{{ fmt.count(r["derived.drops." ~ l]) }}</td>{% endfor %}
   <td class="num{% if r.unattributed_nonzero %} bad{% endif %}">{{ fmt.count(r["derived.drops.unattributed"]) }}</td>
   <td class="num">{{ fmt.count(r["derived.drops.over_attributed"]) }}</td>
   <td>{% if r["derived.reconciliation_ok"] == True %}{{ badge("pass") }}{% elif r["derived.reconciliation_ok"] == False %}{{ badge("fail", r.reason) }}{% else %}–{% endif %}</td></tr>
 {% endfor %}
 </tbody>
</table>
</div>
{% endif %}
"""


def chart(trials, layers, layer_text):
    """Median drops per layer, as a share of the trial's sent, per configuration that lost packets."""
    metrics = [f"derived.drops.{l}" for l in layers + ["unattributed"]] + ["raw.drop_counters.sent"]
    agg = by_config(trials, metrics)
    if agg.empty:
        return None
    agg = agg.sort_values(["params.payload_bytes", "pair", "rate_order"]).reset_index(drop=True)
    labels = [f"{r['pair']} · {fmt.row_size(r)} · {r['rate_label']}"
              for _, r in agg.iterrows()]
    sent = agg["raw.drop_counters.sent.med"].replace(0, np.nan)
    fig, axes = charts.figure(ncols=1, width=10, height=1.0 + 0.28 * len(labels))
    ax = axes[0]
    y = np.arange(len(labels))[::-1]
    left = np.zeros(len(labels))
    for i, layer in enumerate(layers + ["unattributed"]):
        share = (100 * agg[f"derived.drops.{layer}.med"] / sent).fillna(0).to_numpy()
        if not share.any():
            continue
        colour = UNATTRIBUTED_COLOUR if layer == "unattributed" else LAYER_PALETTE[i % len(LAYER_PALETTE)]
        ax.barh(y, share, left=left, height=0.7, color=colour,
                label=layer_text.get(layer, layer), hatch="//" if layer == "unattributed" else None)
        left += share
    ax.set_yticks(y)
    ax.set_yticklabels(labels)
    ax.set_xlabel("packets dropped, median share of sent (%)")
    ax.grid(axis="y", visible=False)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3)
    fig.tight_layout()
    return charts.svg(fig, "Drops by layer per configuration")


def render(run):
    m = run.measured
    if m.empty:
        return TITLE, empty("No measured trials: nothing to reconcile.")
    layer_list = layers_of(run)
    layer_names = [name for name, _ in layer_list]
    layer_text_ = {name: f"{name} ({counter})" if counter else name for name, counter in layer_list}
    layer_text_["unattributed"] = "unattributed"
    lost = pd.to_numeric(m["derived.lost_packets"], errors="coerce").fillna(0)
    ok = m["derived.reconciliation_ok"]
    bad = ok.map(lambda v: v is False or v == False)  # noqa: E712 (numpy bools too)
    lossy = m[(lost > 0) | bad]
    rows = []
    for _, r in lossy.sort_values(["pair", "params.payload_bytes", "rate_order",
                                   "params.repetition"]).iterrows():
        r = r.copy()
        r["unattributed_nonzero"] = (r.get("derived.drops.unattributed") or 0) > 0
        rows.append(r)
    unattributed = pd.to_numeric(m["derived.drops.unattributed"], errors="coerce").fillna(0).sum()
    # Layers no trial counted anything in only widen the table.
    shown = [l for l in layer_names
             if pd.to_numeric(lossy[f"derived.drops.{l}"], errors="coerce").fillna(0).any()]
    quiet = [layer_text_[l] for l in layer_names if l not in shown]
    return TITLE, fragment(
        TEMPLATE, layers=shown, quiet_layers=quiet if rows else [], layer_text=layer_text_,
        layer_order=" → ".join(layer_text_[l] for l in layer_names),
        n_measured=len(m), n_lossless=int((lost <= 0).sum() - (bad & (lost <= 0)).sum()),
        n_lossy=int((lost > 0).sum()), n_bad=int(bad.sum()), unattributed=unattributed,
        chart=chart(lossy, layer_names, layer_text_) if not lossy.empty else None, rows=rows)
