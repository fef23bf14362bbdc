"""Trial parameters as the harness declares them: the `parameters` block of
`zcbench list --json` (harness/params.h, one table), read here so run.py keeps
no copy of flags, defaults or their order. Standard library only.

trial_argv() turns a suite-style dict ({"tx": ..., "payload_bytes": ...}) into
the flags of `zcbench run`, the same text the harness's trial_command prints
for the same trial (tests/test_params_py.py checks that against the binary).
"""
import json
import subprocess

# Needed before anything is built (run.py's argument checks, --rfc2544-sizes),
# so they cannot be read from the binary there; the harness owns them
# (kEthernetOverhead in harness/trial.h, the lab modes in harness/lab.cc) and
# tests/test_params_py.py fails when these differ from `zcbench list --json`.
FRAME_OVERHEAD = 46
LAB_MODES = ("sender-softirq", "rps", "xdp")


class ParamError(ValueError):
    """A parameter value or field the harness would refuse (a usage error)."""


def load_parameters(zcbench, timeout=60):
    """The `parameters` array of `<zcbench> list --json`."""
    try:
        out = subprocess.run([str(zcbench), "list", "--json"], capture_output=True, text=True,
                             timeout=timeout, check=True).stdout
        parameters = json.loads(out)["parameters"]
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError) as err:
        raise ParamError(f"cannot read the trial parameters from `{zcbench} list --json` ({err}); "
                         "rebuild zcbench (./run.py test)") from None
    if not isinstance(parameters, list):
        raise ParamError(f"`{zcbench} list --json` has no parameters array; rebuild zcbench")
    return parameters


def parse_driver_spec(text):
    """'recvmmsg:batch=64,accounting=count' -> ('recvmmsg', {'batch': '64', ...})."""
    name, _, opts = str(text).partition(":")
    options = {}
    for item in filter(None, opts.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ParamError(f"transport option '{item}' in '{text}' is not KEY=VALUE")
        options[key] = value
    if not name:
        raise ParamError(f"transport '{text}' has no name")
    return name, options


def suite_keys(parameters):
    return [p["suite_key"] for p in parameters if p.get("suite_key")]


def choices(parameters, flag):
    """The accepted values of a choice parameter (e.g. '--lab-mode')."""
    for p in parameters:
        if p.get("flag") == flag:
            return list(p.get("choices") or [])
    raise ParamError(f"the harness declares no parameter {flag}")


def frame_overhead(parameters):
    for p in parameters:
        if p.get("flag") == "--size":
            return int(p["frame_overhead_bytes"])
    raise ParamError("the harness declares no --size parameter")


def _number(value):
    """The harness's canonical text of a number: shortest, never exponent form."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParamError(f"{value!r} is not a number")
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    text = repr(float(value))
    if "e" in text:  # repr's exponent form; the harness prints fixed notation
        text = format(float(value), "f").rstrip("0").rstrip(".")
    return text


def _cpu_list(value):
    """'0,2-3' -> '0,2-3'; ranges compacted as harness/params.cc prints them."""
    cpus = []
    for item in str(value).split(","):
        lo, _, hi = item.partition("-")
        try:
            lo, hi = int(lo), int(hi or lo)
        except ValueError:
            raise ParamError(f"'{value}' is not a CPU list; give e.g. 0,2-3") from None
        cpus += range(lo, hi + 1)
    parts, i = [], 0
    while i < len(cpus):
        j = i
        while j + 1 < len(cpus) and cpus[j + 1] == cpus[j] + 1:
            j += 1
        parts.append(str(cpus[i]) + (f"-{cpus[j]}" if j > i else ""))
        i = j + 1
    return ",".join(parts)


def _text(param, value):
    kind = param["type"]
    if kind in ("int", "number", "cpu"):
        return _number(value)
    if kind == "rate":
        return "max" if value == "max" else _number(value)
    if kind == "size":
        return value.strip() if isinstance(value, str) else _number(value)
    if kind == "cpu_list":
        return _cpu_list(value)
    return str(value)


def trial_argv(parameters, spec, command="run"):
    """A suite-style dict -> the flags after `zcbench <command>`, ending with --json."""
    known = suite_keys(parameters)
    for key in spec:
        if key not in known:
            raise ParamError(f"unknown field '{key}'; accepted: " + ", ".join(known))
    pending = {}  # options flag ("--rx-opt") -> the options named with the driver
    argv = []
    for p in parameters:
        if command not in p["commands"] or not p["in_command"]:
            continue
        flag, key, kind = p["flag"], p.get("suite_key"), p["type"]
        given = key is not None and key in spec
        if kind == "key_value":
            options = dict(pending.pop(flag, {}))
            if given:
                options.update({k: v if isinstance(v, str) else json.dumps(v)
                                for k, v in spec[key].items()})
            for name in sorted(options):
                argv += [flag, f"{name}={options[name]}"]
            continue
        if kind == "flag":
            if given and spec[key]:
                argv.append(flag)
            continue
        if kind == "driver":
            name, options = parse_driver_spec(spec[key] if given else p["default"])
            pending[p["options_flag"]] = options
            text = name
        else:
            text = _text(p, spec[key]) if given else p["default"]
        if text is None or (text == p["default"] and not p["always_in_command"]):
            continue
        argv += [flag, text]
    return argv + ["--json"]
