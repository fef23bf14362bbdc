"""Environment: the host, tool, PMU, transports and lab the numbers come from."""
import json

from .. import fmt
from ..html import fragment

TITLE = "Environment"

TEMPLATE = """
<div class="grid2">
<div>
<h3>Host</h3>
<table class="kv compact"><tbody>
 <tr><th>hostname</th><td>{{ host.hostname or "–" }}</td></tr>
 <tr><th>CPU</th><td>{{ host.cpu_model or "–" }}{% if host.cpu_count %} × {{ host.cpu_count }}{% endif %}</td></tr>
 <tr><th>kernel</th><td>{{ host.kernel or "–" }}</td></tr>
 <tr><th>distribution</th><td>{{ host.distro or "–" }}</td></tr>
 <tr><th>memory</th><td>{{ fmt.bytes_iec(host.memory_bytes) }}</td></tr>
 <tr><th>virtualized</th><td>{{ yesno(host.virtualized) }}</td></tr>
 {% for k, v in host_extra %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}
</tbody></table>
<h3>Tool</h3>
<table class="kv compact"><tbody>
 <tr><th>tool</th><td>{{ tool.name }} {{ tool.version }}</td></tr>
 <tr><th>git sha</th><td>{% if tool.git_sha %}<code>{{ tool.git_sha }}</code>{% else %}–{% endif %}</td></tr>
 <tr><th>run id</th><td><code>{{ run_id }}</code></td></tr>
 <tr><th>started / finished</th><td>{{ started }} / {{ finished or "–" }}</td></tr>
 <tr><th>suites</th><td>{{ (options.suites or ["–"])|join(", ") }}</td></tr>
 <tr><th>lab mode</th><td>{{ options.lab_mode or lab.mode or "–" }}</td></tr>
 <tr><th>repetitions</th><td>{{ options.repetitions or "–" }}</td></tr>
 {% set cal = options.calibration %}<tr><th>A/A false-alarm rate</th><td>{% if cal %}{% if cal.false_alarm_rate is not none %}{{ "%.1f"|format(100 * cal.false_alarm_rate) }} %{% else %}n/a{% endif %} with the calibrated margins ({{ cal.false_alarm_method }}){% if cal.false_alarm_rate_fixed is not none %}, {{ "%.1f"|format(100 * cal.false_alarm_rate_fixed) }} % with the fixed thresholds{% endif %}: ./run.py calibrate, {{ cal.runs }} runs on {{ (cal.host or {}).hostname or "?" }}, {{ cal.created_at }}{% else %}not measured for this run's verdicts (./run.py calibrate){% endif %}</td></tr>
 <tr><th>command line</th><td>{% if options.argv %}<code>{{ options.argv|join(" ") }}</code>{% else %}–{% endif %}</td></tr>
</tbody></table>
<h3>Performance counters</h3>
<table class="kv compact"><tbody>
 <tr><th>hardware PMU</th><td>{% if pmu.available %}{{ badge("pass") }} available{% else %}{{ badge("skip") }} unavailable{% endif %}</td></tr>
 {% if pmu.reason %}<tr><th>reason</th><td class="reason">{{ pmu.reason }}</td></tr>{% endif %}
 <tr><th>software events</th><td>{{ yesno(pmu.software_events) }}</td></tr>
</tbody></table>
</div>
<div>
<h3>Lab</h3>
{% if lab %}
<p class="note">As recorded in the first trial ({{ lab_from }}).</p>
<table class="kv compact"><tbody>
 {% for k, v in lab_items %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}
</tbody></table>
{% for p in ports %}
<h4>port {{ loop.index0 }}</h4>
<table class="kv compact"><tbody>
 {% for k, v in p.items() %}<tr><th>{{ k }}</th><td>{{ show(v) }}</td></tr>{% endfor %}
</tbody></table>
{% endfor %}
{% else %}
<p class="empty">No trial recorded its lab.</p>
{% endif %}
</div>
</div>
<h3>Transports</h3>
{% if transports %}
<table>
 <thead><tr><th>name</th><th>direction</th><th>usable</th><th>description</th><th>options (default)</th></tr></thead>
 <tbody>
 {% for t in transports %}
  <tr><td><code>{{ t.name }}</code></td><td>{{ t.direction }}</td>
   <td>{% if t.usable %}{{ badge("pass", "usable") }}{% else %}{{ badge("skip", t.reason) }}<div class="why">{{ t.reason }}</div>{% endif %}</td>
   <td>{{ t.description }}</td>
   <td>{% for o in t.options or [] %}<span class="opt" title="{{ o.help }}"><code>{{ o.name }}</code>{% if o.default not in (none, "") %}={{ o.default }}{% endif %}</span> {% endfor %}</td></tr>
 {% endfor %}
 </tbody>
</table>
{% else %}
<p class="empty">No transport list recorded.</p>
{% endif %}
"""

HOST_KEYS = {"hostname", "cpu_model", "cpu_count", "kernel", "distro", "memory_bytes",
             "virtualized"}


def show(v):
    """Any JSON value as short text (dicts and lists as compact JSON)."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return "–" if fmt.missing(v) or v == "" else str(v)


def yesno(v):
    return "–" if v is None or v == "" else show(v)


def _lab(run):
    for _, t in run.trials.iterrows():
        rec = t["record"] or {}
        if isinstance(rec.get("lab"), dict) and rec["lab"]:
            return rec["lab"], str(rec.get("name") or "")
    return {}, ""


def render(run):
    ctx = run.context
    host = ctx.get("host") or {}
    lab, lab_from = _lab(run)
    ports = [p for p in lab.get("ports") or [] if isinstance(p, dict)]
    transports = [t for t in ctx.get("transports") or [] if isinstance(t, dict)]
    return TITLE, fragment(
        TEMPLATE, host=host, tool=ctx.get("tool") or {}, pmu=ctx.get("pmu") or {},
        options=ctx.get("options") or {}, run_id=run.doc.get("run_id", ""),
        started=run.doc.get("started_at", ""), finished=run.doc.get("finished_at"),
        host_extra=[(k, show(v)) for k, v in host.items() if k not in HOST_KEYS],
        lab=lab, lab_from=lab_from, ports=ports,
        lab_items=[(k, show(v)) for k, v in lab.items() if k != "ports"],
        transports=transports, show=show, yesno=yesno)
