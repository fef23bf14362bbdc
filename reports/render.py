"""Assemble the page: header, status banner, table of contents, sections."""
import datetime
import os
import traceback

from . import load as load_mod
from . import results_csv
from .html import Markup, env, escape
from .sections import SECTIONS


def _section(run, section):
    """Render one section; a crash shows in the page instead of losing the report."""
    try:
        title, html = section.render(run)
        return {"key": section.key, "title": title, "html": Markup(html), "error": ""}
    except Exception as e:  # noqa: BLE001 — one bad section must not hide the others
        tb = traceback.format_exc(limit=-3)
        return {"key": section.key, "title": section.key, "error": f"{type(e).__name__}: {e}",
                "html": Markup('<pre class="error">{}</pre>').format(tb)}


def banner(run):
    """A warning line for runs that did not complete, else empty."""
    measured = len(run.measured)
    if run.status == "interrupted":
        return f"Partial run: {measured} trials completed before the run was interrupted."
    if run.status == "failed":
        return f"Run failed: {measured} trials completed; see the records below for why."
    if run.status not in ("complete", ""):
        return f"Unknown run status {run.status!r}: {measured} trials completed."
    return ""


def render_run(run, strict=False):
    """The report for a loaded run as one HTML string.

    strict: re-raise a section's exception (tests) instead of printing it in the page.
    """
    sections = []
    for s in SECTIONS:
        if strict:
            title, html = s.render(run)
            sections.append({"key": s.key, "title": title, "html": Markup(html), "error": ""})
        else:
            sections.append(_section(run, s))
    doc = run.doc
    tool = (run.context.get("tool") or {})
    return env.get_template("page.html.j2").render(
        run_id=doc.get("run_id", "?"), status=run.status or "?", banner=banner(run),
        started=doc.get("started_at", ""), finished=doc.get("finished_at") or "",
        kernel=(run.context.get("host") or {}).get("kernel", ""),
        tool=f"{tool.get('name', 'zcbench')} {tool.get('version', '')}".strip(),
        sha=tool.get("git_sha") or "", sections=sections,
        generated=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        source=os.path.basename(run.path) if run.path else "run.json")


def write_report(run_json, out_html=None):
    run = load_mod.load(run_json)
    out_html = out_html or os.path.join(os.path.dirname(os.path.abspath(run_json)), "report.html")
    text = render_run(run)
    tmp = out_html + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, out_html)  # never leave a half-written report
    # The flat per-trial table beside run.json, for spreadsheets and pandas.
    results_csv.write(run, os.path.join(os.path.dirname(os.path.abspath(run_json)), "results.csv"))
    return out_html


__all__ = ["render_run", "write_report", "banner", "escape"]
