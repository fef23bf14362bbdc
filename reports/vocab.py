"""The harness's vocabularies as the report reads them.

zcbench owns the drop layers, sink roles, frame overheads and rules
(harness/vocabulary.cc) and writes them into every run.json's
context.vocabularies (and `zcbench list --json`). The report keeps no copy:
a document without the block (an older writer) is read by what its own
records carry.
"""


def vocabularies(doc):
    v = ((doc or {}).get("context") or {}).get("vocabularies")
    return v if isinstance(v, dict) else {}


def drop_remainders(doc):
    """The keys beside the layers that say what the layers do not explain."""
    v = vocabularies(doc).get("drop_remainders")
    # Before vocabularies were exported the harness wrote these two names.
    return list(v) if v else ["unattributed", "over_attributed"]


def drop_layers(doc):
    """[(name, what it is read from)] in the harness's precedence order."""
    v = vocabularies(doc).get("drop_layers")
    if v:
        return [(l["name"], l.get("counter", "")) for l in v if isinstance(l, dict) and "name" in l]
    # No vocabulary: the layers the records' drops objects hold, in the order written.
    skip = set(drop_remainders(doc)) | {"lost"}
    seen = []
    for r in (doc or {}).get("records") or []:
        drops = ((r or {}).get("derived") or {}).get("drops") or {}
        for k in drops:
            if k not in skip and k not in seen:
                seen.append(k)
    return [(k, "") for k in seen]


def sink_role(doc, rx):
    """"ceiling", "peer" or "" (a transport a user would choose)."""
    for role, names in (vocabularies(doc).get("sink_roles") or {}).items():
        if rx in (names or []):
            return role
    return ""


def generator_short_ratio(doc):
    """The achieved/offered share under which a trial is flagged generator_short, or None."""
    v = vocabularies(doc).get("generator_short_ratio")
    return float(v) if isinstance(v, (int, float)) else None
