"""zcbench report generator: run.json -> one self-contained report.html.

    /usr/bin/python3 -m reports results/<run-id>/run.json [-o report.html]
    /usr/bin/python3 -m reports.validate results/<run-id>/run.json

Public API: load.load(path) -> Run; render.render_run(run) -> str (HTML);
render.write_report(run_json, out_html=None) -> path; sections.SECTIONS /
sections.register() for new report sections.
"""
