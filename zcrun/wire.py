"""run.py on real wires (issue "Leave the lab"): the suite's RX transports run
one after another on an interface the user named, fed by an external source
(``--iface eth1 --source external``: an FPGA, a switch mirror, trafgen on
another host) or by our own generator out of a second, cabled port of the same
host (``--wire eth1:eth2``: generator out of eth1, sink on eth2). Repetitions
are interleaved (A B C A B C ...) as in the lab, so drift hits every transport
alike. Every trial is one ``zcbench sink`` (and, with --wire, one concurrent
``zcbench send``) whose record, the harness's own, is appended unchanged but
for the sender's record merged in (raw.send, derived.send) — never
recomputed here: rates, bit rates and the link share come from the harness.

Standard library only."""

import json
import os
import subprocess
import sys
import time

# The sink transports a wire run takes from a suite: socket and packet sinks,
# and the XDP sinks where they see all the traffic. `zcbench sink --iface`
# runs af_xdp and xdp_drop (their program attached through a BPF link) with
# one XSK on queue 0 — one sink thread, one queue — so on an interface with
# more RX queues the other queues' traffic would read as lost: there they are
# left out, and run.json (context.options.wire_left_out) and the report say
# so, one line each. The rest never run on a wire: the capture peers need a
# generator of ours to bound them, xdp_bench is a lab tool.
WIRE_RX_ONE_QUEUE = ("xdp_drop", "af_xdp")
WIRE_RX_EXCLUDED = ("xdp_bench", "tcpdump", "netsniff_ng")
WIRE_RX_EXCLUDED_WHY = "a capture peer or lab tool that needs the lab's own generator to bound it"


class WireUsageError(ValueError):
    """Bad --iface/--wire input: one line naming the fix (run.py exit 2)."""


def parse_wire_pair(text):
    """'eth1:eth2' -> ('eth1', 'eth2'): generator port, sink port."""
    parts = text.split(":") if text else []
    if len(parts) != 2 or not all(parts):
        raise WireUsageError(f"--wire '{text}' is not GEN_PORT:SINK_PORT (two ports of this host cabled "
                             "together, e.g. --wire eth1:eth2)")
    if parts[0] == parts[1]:
        raise WireUsageError(f"--wire {text} names the same port twice; give two ports cabled together, "
                             f"e.g. --wire {parts[0]}:eth2")
    return parts[0], parts[1]


def add_arguments(parser):
    """The wire options of ./run.py (kept here so run.py's hunk is one call)."""
    group = parser.add_argument_group("named interfaces (README 'Point your FPGA at zcbench')")
    group.add_argument("--iface", metavar="IF", help="run the suite's sinks on this interface (with --source external)")
    group.add_argument("--wire", metavar="GEN:SINK", help="two cabled ports of this host: our generator out of GEN, "
                       "the sinks on SINK")
    group.add_argument("--source", choices=("external", "generator"), default=None,
                       help="external: traffic from a generator not ours (required with --iface)")
    group.add_argument("--seq", metavar="DESC", help="where the external source keeps its counter, e.g. "
                       "offset=4,width=8,endian=big (passed to zcbench sink --seq)")
    group.add_argument("--wire-duration", type=float, default=10.0, metavar="S",
                       help="each sink's window on the wire (default 10 s)")
    group.add_argument("--wire-silence", type=float, default=2.0, metavar="S",
                       help="a sink ends after S seconds without packets (default 2)")
    group.add_argument("--wire-rate", metavar="PPS", help="--wire: our generator's rate (default max); "
                       "--iface: the rate the external source is declared to send")
    group.add_argument("--hw-timestamps", action="store_true",
                       help="the sinks take the NIC's hardware RX stamps (zcbench sink --hw-timestamps; a NIC "
                       "or sink that cannot is a skip with the reason)")
    group.add_argument("--allow-host-interface", action="store_true",
                       help="allow an interface that carries the default route or this SSH session")


def wire_requested(args):
    return bool(getattr(args, "iface", None) or getattr(args, "wire", None))


def validate(args):
    """Raises WireUsageError for contradictory wire options."""
    if args.iface and args.wire:
        raise WireUsageError("--iface and --wire exclude each other: --iface IF for an external source, "
                             "--wire GEN:SINK for our generator through two cabled ports")
    if args.wire:
        parse_wire_pair(args.wire)
        if args.source == "external":
            raise WireUsageError("--wire sends with our generator; drop --source external (or use --iface)")
    if args.iface and args.source != "external":
        raise WireUsageError("--iface IF needs --source external (the sink measures what arrives from a generator "
                             "not ours); for our generator over two cabled ports use --wire GEN:SINK")
    if getattr(args, "hw_timestamps", False) and not (args.iface or args.wire):
        raise WireUsageError("--hw-timestamps stamps on a named interface's NIC: give --iface IF or --wire GEN:SINK")
    if not args.wire_duration > 0:
        raise WireUsageError(f"--wire-duration {args.wire_duration} is not accepted; give seconds > 0")


def rx_queue_count(iface, sys_class_net="/sys/class/net"):
    """The interface's RX queues as the kernel lists them (rx-0, rx-1, ...
    under /sys/class/net/IF/queues); None when that cannot be read."""
    try:
        return sum(1 for q in os.listdir(os.path.join(sys_class_net, iface, "queues")) if q.startswith("rx-"))
    except OSError:
        return None


def plan_rx(suite, rx_queues):
    """(sink specs to run, [{"rx", "reason"}] left out) for a suite on an
    interface with `rx_queues` RX queues (None: unknown). Distinct specs in
    the suite's order."""
    run, left, seen = [], [], set()
    for trial in suite.get("trials") or []:
        rx = trial.get("rx", "recvmmsg")
        for spec in rx if isinstance(rx, list) else [rx]:
            if spec in seen:
                continue
            seen.add(spec)
            name = spec.split(":", 1)[0]
            if name in WIRE_RX_EXCLUDED:
                left.append({"rx": spec, "reason": f"{name}: {WIRE_RX_EXCLUDED_WHY}"})
            elif name in WIRE_RX_ONE_QUEUE and rx_queues != 1:
                have = "an unknown number of" if rx_queues is None else str(rx_queues)
                left.append({"rx": spec, "reason": f"{name}: binds one XSK on RX queue 0 and the interface has "
                             f"{have} RX queues; the other queues' traffic would read as lost"})
            else:
                run.append(spec)
    return run, left


def rx_flags(spec):
    """'tpacket_v3:block_size=1M,accounting=count' -> zcbench flags."""
    name, _, opts = spec.partition(":")
    flags = ["--rx", name]
    for opt in filter(None, opts.split(",")):
        flags += ["--rx-opt", opt]
    return flags


def sink_command(zcbench, args, iface, rx_spec, repetition, suite_name):
    cmd = [str(zcbench), "sink", "--iface", iface, *rx_flags(rx_spec),
           "--source", "external" if args.iface else "generator",
           "--duration", str(args.wire_duration), "--silence", str(args.wire_silence),
           "--repetition", str(repetition), "--json"]
    if args.seq:
        cmd += ["--seq", args.seq]
    if args.iface and args.wire_rate:
        cmd += ["--rate", str(args.wire_rate)]
    if getattr(args, "size", None):
        cmd += ["--size", str(args.size[0])]
    if getattr(args, "hw_timestamps", False):
        cmd.append("--hw-timestamps")
    if args.allow_host_interface:
        cmd.append("--allow-host-interface")
    return cmd


def send_command(zcbench, args, gen_iface, dst_ip, dst_mac, repetition):
    cmd = [str(zcbench), "send", "--iface", gen_iface, "--dst", dst_ip, "--dst-mac", dst_mac,
           # tx_ring writes whole frames with the sink port's MAC, so they
           # leave by the cable rather than by the host's local route.
           "--tx", "tx_ring", "--rate", str(args.wire_rate or "max"),
           "--duration", str(args.wire_duration), "--warmup", "0", "--repetition", str(repetition), "--json"]
    if getattr(args, "size", None):
        cmd += ["--size", str(args.size[0])]
    if args.allow_host_interface:
        cmd.append("--allow-host-interface")
    return cmd


def first_record(stdout, what):
    try:
        doc = json.loads(stdout)
        return doc["records"][0]
    except (ValueError, KeyError, IndexError):
        raise RuntimeError(f"{what} printed no run.json document") from None


def iface_facts(iface):
    """IPv4 address and MAC of a local interface, from `ip -j` (iproute2)."""
    out = subprocess.run(["ip", "-j", "addr", "show", "dev", iface], capture_output=True, text=True)
    if out.returncode != 0:
        raise WireUsageError(f"interface '{iface}' does not exist here: {out.stderr.strip()}")
    info = json.loads(out.stdout or "[]")
    if not info:
        raise WireUsageError(f"interface '{iface}' does not exist here")
    ipv4 = [a["local"] for a in info[0].get("addr_info", []) if a.get("family") == "inet"]
    if not ipv4:
        raise WireUsageError(f"interface '{iface}' has no IPv4 address; give it one in 198.18.0.0/15")
    return ipv4[0], info[0].get("address", "")


def merge_send(sink_record, send_record):
    """The sink's record with the sender's own counters beside it: the wire's
    `sent` is what our send counted, not inferred from what arrived."""
    rec = dict(sink_record)
    rec["raw"] = dict(rec.get("raw", {}))
    rec["raw"]["send"] = send_record.get("raw", {})
    rec["derived"] = dict(rec.get("derived", {}))
    rec["derived"]["send"] = send_record.get("derived", {})
    rec["params"] = dict(rec.get("params", {}))
    rec["params"]["send"] = {k: send_record.get("params", {}).get(k)
                             for k in ("iface", "tx", "offered_pps", "dst", "dst_mac", "wire")}
    rec["command_send"] = send_record.get("command")
    return rec


def run_wire_suite(args, suite, records_path, zcbench, warn=print, left_out=None):
    """Runs the suite's sinks on the wire; appends one record per trial to
    records_path. The transports left out are appended to `left_out`
    ({"suite", "rx", "reason"}: run.json's context.options.wire_left_out) and
    named on stderr. Returns 0, or 1 when a trial failed its checks."""
    validate(args)
    repetitions = args.repetitions or suite.get("repetitions") or 1
    name = suite.get("name") or "?"
    sink_iface = args.iface or parse_wire_pair(args.wire)[1]
    rx_list, left = plan_rx(suite, rx_queue_count(sink_iface))
    for item in left:
        print(f"      wire: left out {item['reason']}", file=sys.stderr, flush=True)
        if left_out is not None:
            left_out.append({"suite": name, **item})
    gen_iface = parse_wire_pair(args.wire)[0] if args.wire else None
    dst_ip = dst_mac = None
    if gen_iface:
        dst_ip, dst_mac = iface_facts(sink_iface)
    outcome = 0
    for rep in range(repetitions):
        for rx in rx_list:
            cmd = sink_command(zcbench, args, sink_iface, rx, rep, name)
            print(f"      wire {rx} on {sink_iface} #{rep}", file=sys.stderr, flush=True)
            sink = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
            send_rec = None
            if gen_iface:
                time.sleep(0.5)  # the sink is open before the first packet
                send = subprocess.run(send_command(zcbench, args, gen_iface, dst_ip, dst_mac, rep),
                                      capture_output=True, text=True)
                if send.returncode not in (0, 1):
                    sink.terminate()
                    sink.wait()
                    raise RuntimeError(f"zcbench send exited {send.returncode}: {send.stderr.strip()[-300:]}")
                send_rec = first_record(send.stdout, "zcbench send")
            out, _ = sink.communicate()
            if sink.returncode not in (0, 1, 3):
                raise RuntimeError(f"zcbench sink exited {sink.returncode}; see its message above")
            rec = first_record(out, "zcbench sink")
            rec["suite"] = name
            if send_rec is not None:
                rec = merge_send(rec, send_rec)
            if rec.get("status") in ("fail", "error"):
                outcome = 1
            with open(records_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec) + "\n")
    return outcome

