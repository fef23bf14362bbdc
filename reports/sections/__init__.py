"""The report's sections, in page order.

A section is a function ``render(run) -> (title, html)`` taking a loaded
:class:`reports.load.Run` and returning its heading and an HTML fragment
(Markup, built with autoescaping templates). Transport families add their own
module here and one line to SECTIONS (or call ``register`` from outside),
rather than growing the existing ones.
"""
from collections import namedtuple

from . import (baseline, claims, conformance, cpu, decision, environment, latency, loss, ndr,
               noise, notes, rates, suites, summary)

# key: the anchor id in the page (stable: links into reports use it).
Section = namedtuple("Section", "key render")

SECTIONS = [
    Section("decision", decision.render),  # the user's question first
    Section("summary", summary.render),
    Section("baseline", baseline.render),
    Section("ndr", ndr.render),
    Section("suites", suites.render),
    Section("rates", rates.render),
    Section("noise", noise.render),
    Section("cpu", cpu.render),
    Section("latency", latency.render),
    Section("loss", loss.render),
    Section("conformance", conformance.render),
    Section("claims", claims.render),
    Section("notes", notes.render),
    Section("environment", environment.render),
]


def register(key, render, before=None):
    """Add a section; ``before`` names the key it goes in front of (else last)."""
    if any(s.key == key for s in SECTIONS):
        raise ValueError(f"report section {key!r} already registered; keys must be unique")
    at = next((i for i, s in enumerate(SECTIONS) if s.key == before), len(SECTIONS))
    SECTIONS.insert(at, Section(key, render))
from . import capture_rings; register("capture_rings", capture_rings.render, before="conformance")  # noqa: E402,E702
from . import wire; register("wire", wire.render, before="rates")  # noqa: E402,E702
from .. import scale as _scale; register("scale", _scale.render, before="conformance")  # noqa: E402,E702
