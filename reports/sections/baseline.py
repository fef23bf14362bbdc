"""The comparison with a baseline run, when the run was made with --baseline
(or `./run.py ci`): run.py leaves compare.json beside run.json."""
import json
import os

from .. import compare
from ..html import Markup, empty, fragment

TITLE = "Baseline comparison"

TEMPLATE = """
<p class="verdict">{{ verdict }}</p>
<p class="note">Baseline <code>{{ result.base.run_id }}</code> ({{ result.base.kernel }}).
Per configuration: two-sided Mann–Whitney U on the repetitions (exact while small, else the normal
approximation), a change counts when p &lt; {{ result.alpha }} and the median moved more than
{{ "%.0f"|format(100 * result.effect) }} % (loss: {{ "%.1f"|format(100 * result.loss_effect) }}
points). The full page with every metric is <code>compare.html</code> beside this report.</p>
<table class="compact">
 <thead><tr><th>configuration</th><th>verdict</th><th>why</th></tr></thead>
 <tbody>
 {% for r in result.configs %}
  <tr><td>{{ r.config }}</td><td><span class="v {{ r.verdict|replace(' ', '-') }}">{{ r.verdict }}</span></td>
   <td class="reason">{{ r.why }}</td></tr>
 {% endfor %}
 </tbody>
</table>
"""


def load_result(run):
    """compare.json beside run.json, or None."""
    if not run.path:
        return None
    path = os.path.join(os.path.dirname(os.path.abspath(run.path)), "compare.json")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def render(run):
    result = load_result(run)
    if not result:
        return TITLE, empty("No baseline given for this run (./run.py --baseline RUN, "
                            "./run.py ci --baseline RUN, or ./run.py compare A B).")
    return TITLE, Markup(fragment(TEMPLATE, result=result,
                                  verdict=compare.summary_line(result)))
