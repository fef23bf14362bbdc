"""The command line: the subcommand table, argument parsing and main()."""

import argparse
import sys
from pathlib import Path

from .common import (CI_SUITE, DEFAULT_LAB_MODE, DEFAULT_SUITE, EXIT_INTERRUPTED, EXIT_OK,
                     EXIT_USAGE, LAB_MODES, REPO_ROOT, ZcbenchError, tool_version, warn)
from .ndr import (NDR_DEFAULTS)
from . import wire
from .commands import (command_ci, command_compare, command_list, command_remote, command_report,
                       command_run, command_test, guest_kernels)
from .calibrate import CALIBRATION_SUITE, DEFAULT_RUNS, command_calibrate


class Parser(argparse.ArgumentParser):
    """Argument errors as one "zcbench: ..." line, exit 2."""

    def error(self, message):
        raise ZcbenchError(f"{message}; see {self.prog} --help", EXIT_USAGE)


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number >= 1")
    return value


def absolute_path(text):
    # Children run from the repo root, so paths given relative to the caller's cwd are fixed now.
    return Path(text).absolute()


def add_setup_options(parser):
    parser.add_argument("--no-install", action="store_true",
                        help="do not install Debian packages: fail naming the missing ones this "
                        "command needs (a missing peer only makes its trials skip)")
    parser.add_argument("--no-build", action="store_true",
                        help="use the existing build instead of running CMake")
    parser.add_argument("--build-dir", type=absolute_path, default=REPO_ROOT / "build",
                        metavar="DIR",
                        help="CMake build folder (default: build)")


def add_run_options(parser, default_suite=DEFAULT_SUITE):
    parser.add_argument("--suite", action="append", metavar="NAME",
                        help=f"suite to run, repeatable (default: {default_suite}); "
                             "definitions live in suites/definitions/NAME.json")
    parser.add_argument("--lab-mode", choices=LAB_MODES, default=None,
                        help=f"where receive work runs, for every trial (default: each trial's own, "
                             f"else {DEFAULT_LAB_MODE}; af_xdp and xdp_drop trials need xdp)")
    parser.add_argument("--kernel", choices=guest_kernels(), default=None,
                        help="also run the conformance suite and pktgen trials inside that kernel "
                             "under qemu (vm/zcvm.py; records marked emulated)")
    parser.add_argument("--repetitions", type=positive_int, metavar="N",
                        help="repetitions per trial (default: the suite's own)")
    parser.add_argument("--results-dir", type=absolute_path, default=REPO_ROOT / "results",
                        metavar="DIR",
                        help="where results/<run-id>/ goes (default: results)")
    parser.add_argument("--run-id", metavar="ID",
                        help="name of the run folder (default: UTC time and suites, "
                             "e.g. 20261125T183000Z-quick)")
    parser.add_argument("--no-retrial", action="store_true",
                        help="keep contaminated trials (lab CPUs lost to other work) as they "
                             "are instead of re-running them")
    add_setup_options(parser)
    add_ndr_options(parser)
    wire.add_arguments(parser)
    if default_suite == DEFAULT_SUITE:
        add_baseline_option(parser)


def rate_or_max(text):
    if text == "max":
        return text
    try:
        value = int(float(text))
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a rate in pps >= 1 or 'max'")
    return value


def ratio(text):
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a loss ratio in [0, 1) "
                                         "(0 = NDR, 0.001 = PDR at 0.1 %)")
    return value


def seconds(text):
    try:
        value = float(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a positive number of seconds")
    return value


def size_list(text):
    sizes = []
    for item in text.split(","):
        try:
            sizes.append(int(item))
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{item}' is not a payload size in bytes "
                                             "(18 .. MTU-28)") from None
        if sizes[-1] < 18:
            raise argparse.ArgumentTypeError(f"payload {item} is below 18 bytes (the flood "
                                             "header)")
    return sizes


def add_ndr_options(parser):
    group = parser.add_argument_group(
        "NDR/PDR search (RFC 2544 style, by binary search; every step is a trial record)")
    group.add_argument("--ndr", action="store_true",
                       help="search the highest offered rate each sink takes within the loss "
                            "threshold (alone, or besides --suite)")
    group.add_argument("--ndr-rx", default=",".join(NDR_DEFAULTS["rx"]), metavar="LIST",
                       type=lambda t: [x for x in t.split(";" if ":" in t else ",") if x],
                       help="sinks to search, comma-separated (';' when options are given: "
                            "'recvmmsg:batch=64;recv'); default recv,recvmmsg")
    group.add_argument("--ndr-tx", default=NDR_DEFAULTS["tx"], metavar="TX",
                       help=f"generator transport (default {NDR_DEFAULTS['tx']})")
    group.add_argument("--size", type=size_list, metavar="BYTES[,BYTES]",
                       help="UDP payload sizes to search (default 272)")
    group.add_argument("--rfc2544-sizes", action="store_true",
                       help="RFC 2544 frames 64,128,256,512,1024,1280,1518 "
                            "(payload = frame - 46)")
    group.add_argument("--ndr-loss", type=ratio, default=0.0, metavar="RATIO",
                       help="loss threshold: 0 = NDR (default), e.g. 0.001 = PDR at 0.1 %%")
    group.add_argument("--ndr-resolution", default=NDR_DEFAULTS["resolution"], metavar="R",
                       help="stop when the bounds are this close: N%% of the upper rate or "
                            "a rate in pps (default 2%%)")
    group.add_argument("--ndr-duration", type=seconds, default=NDR_DEFAULTS["duration_s"],
                       metavar="S", help="measurement window per step (default 1 s; RFC "
                                         "2544 says 60 s)")
    group.add_argument("--ndr-warmup", type=float, default=NDR_DEFAULTS["warmup_s"],
                       metavar="S", help="warm-up before each step's window (default 0.3 s)")
    group.add_argument("--ndr-max-rate", type=rate_or_max, default="max", metavar="PPS",
                       help="upper bound of the search (default: what the generator reaches "
                            "flat out)")
    group.add_argument("--ndr-time-budget", type=seconds,
                       default=NDR_DEFAULTS["time_budget_s"], metavar="S",
                       help="stop bisecting a search after this long (default 60 s)")


def add_baseline_option(parser, required=False):
    parser.add_argument("--baseline", metavar="RUN", required=required,
                        help="compare with this run (results/<run-id> or its run.json): "
                             "compare.html beside the report, exit 1 on a regression")
    add_calibration_option(parser)


def add_calibration_option(parser):
    parser.add_argument("--calibration", metavar="FILE", type=absolute_path,
                        help="widen each metric's threshold to the A/A noise measured by "
                             "./run.py calibrate (e.g. results/calibration.json)")


def add_ci_options(parser):
    add_run_options(parser, default_suite=CI_SUITE)
    add_baseline_option(parser)


def add_compare_options(parser):
    parser.add_argument("base", metavar="BASELINE", help="baseline run folder or run.json")
    parser.add_argument("current", metavar="CURRENT", help="current run folder or run.json")
    parser.add_argument("-o", "--output", metavar="HTML",
                        help="comparison page (default: compare.html beside CURRENT's run.json)")
    parser.add_argument("--json", action="store_true",
                        help="also write the verdicts as JSON beside the page")
    add_calibration_option(parser)


def add_calibrate_options(parser):
    parser.add_argument("--suite", default=CALIBRATION_SUITE, metavar="NAME",
                        help=f"the suite run again and again (default {CALIBRATION_SUITE}: "
                             "suites/definitions/aa.json)")
    parser.add_argument("--runs", type=positive_int, default=DEFAULT_RUNS, metavar="N",
                        help=f"A/A runs, compared pairwise (default {DEFAULT_RUNS}; >= 4 for a "
                             "cross-validated false-alarm rate)")
    parser.add_argument("--repetitions", type=positive_int, metavar="N",
                        help="repetitions per trial (default: the suite's own)")
    parser.add_argument("--lab-mode", choices=LAB_MODES, default=None,
                        help="where receive work runs, for every trial (default: each trial's own)")
    parser.add_argument("--results-dir", type=absolute_path, default=REPO_ROOT / "results",
                        metavar="DIR", help="where the runs go (default: results)")
    parser.add_argument("--run-id", metavar="ID", help="name of the calibration's run folder")
    parser.add_argument("-o", "--output", metavar="JSON",
                        help="the calibration document (default: RESULTS/calibration.json)")
    parser.add_argument("--no-retrial", action="store_true",
                        help="keep contaminated trials instead of re-running them")
    add_setup_options(parser)


def add_test_options(parser):
    add_setup_options(parser)


def add_list_options(parser):
    parser.add_argument("--json", action="store_true", help="machine-readable listing")
    add_setup_options(parser)


def add_report_options(parser):
    parser.add_argument("run", metavar="RUN_JSON_OR_DIR",
                        help="a run folder (results/<run-id>, results/latest) or its run.json")
    parser.add_argument("-o", "--output", metavar="HTML",
                        help="where to write the report (default: report.html beside run.json)")


class Command:
    def __init__(self, summary, add_options, handler, passthrough=False):
        self.summary = summary
        self.add_options = add_options
        self.handler = handler
        self.passthrough = passthrough  # accepts arguments after `--` for the tool it wraps


def add_remote_options(parser):
    from . import remote
    parser.add_argument("--results-dir", type=absolute_path, default=REPO_ROOT / "results",
                        metavar="DIR", help="where results/<run-id>/ goes (default: results)")
    parser.add_argument("--run-id", metavar="ID", help="name of the run folder")
    add_setup_options(parser)
    remote.add_options(parser)


# The command table: a new subcommand (compare, ci, ...) is one entry here.
COMMANDS = {
    "run": Command("install, build, run suites, write results/<run-id>/ and the report "
                   "(the default)", add_run_options, command_run),
    "test": Command("install, build, then ctest without the bench and vm labels; "
                    "arguments after -- go to ctest", add_test_options, command_test,
                    passthrough=True),
    "list": Command("install, build, then list transports and generators usable here",
                    add_list_options, command_list, passthrough=True),
    "report": Command("re-render report.html from a saved run.json", add_report_options,
                      command_report),
    "compare": Command("compare two saved runs (Mann-Whitney U per configuration): "
                       "compare.html, exit 1 on a regression; runs nothing",
                       add_compare_options, command_compare),
    "calibrate": Command("A/A experiment: run a small suite N times, compare every pair, "
                         "store per-metric noise (results/calibration.json) for compare "
                         "--calibration; reports the false-alarm rate", add_calibrate_options,
                         command_calibrate),
    "remote": Command("one trial with its generator or sink on another host over SSH "
                      "(./run.py --remote USER@HOST ...)", add_remote_options, command_remote),
    "ci": Command(f"run the CI suite ({CI_SUITE}), compare with --baseline, write junit.xml; "
                  "exit 1 on a regression or a conformance failure", add_ci_options,
                  command_ci),
}

DESCRIPTION = """\
zcbench measures Linux packet I/O paths (recv, recvmmsg, PACKET_MMAP, AF_XDP, ...)
inside private network namespaces and checks them against the kernel's documented
behaviour. Without a command it installs missing Debian packages, builds with CMake,
runs the suites, writes results/<run-id>/run.json and renders report.html, whose path
is the last line on stdout."""

EXAMPLES = """\
commands:
{commands}

examples:
  sudo ./run.py              run the quick suite and open the report it prints
  sudo ./run.py test         build and run the unit and conformance tests (CTest)
  ./run.py --suite capture --suite generate --repetitions 5
  ./run.py test -- -R tpacket_v3
  ./run.py report results/latest
  ./run.py --ndr --ndr-rx recv,recvmmsg --size 272            zero-loss rate per sink
  ./run.py --suite smoke --baseline results/<run-id>          compare with an earlier run
  ./run.py compare results/<old-run> results/<new-run>        comparison page, exit 1 on regression
  ./run.py ci --baseline results/<run-id>                     CI gate with junit.xml
  ./run.py calibrate --runs 6                                 A/A noise and false-alarm rate
  ./run.py compare A B --calibration results/calibration.json verdicts beyond the A/A noise

exit codes: 0 ok, 1 a check failed, 2 usage, 3 environment, 4 internal, 130 interrupted"""


def make_parser(name):
    command = COMMANDS[name]
    if name == "run":
        width = max(len(n) for n in COMMANDS)
        listing = "\n".join(f"  {n:<{width}}  {c.summary}" for n, c in COMMANDS.items())
        parser = Parser(prog="./run.py", description=DESCRIPTION,
                        epilog=EXAMPLES.format(commands=listing),
                        formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("--version", action="version",
                            version=f"zcbench run.py {tool_version()}")
    else:
        parser = Parser(prog=f"./run.py {name}", description=command.summary)
    command.add_options(parser)
    return parser


def parse_args(argv):
    """argv without the program name; returns (command name, namespace)."""
    argv = list(argv)
    passthrough = []
    if "--" in argv:
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1:]
    name = "run"
    if any(a == "--remote" or a.startswith("--remote=") for a in argv):
        name = "remote"  # ./run.py --remote USER@HOST ...: a trial across two hosts
    if argv and argv[0] in COMMANDS:
        name, argv = argv[0], argv[1:]
    elif argv and not argv[0].startswith("-"):
        raise ZcbenchError(f"unknown command '{argv[0]}'; commands: {', '.join(COMMANDS)}; "
                           "see ./run.py --help", EXIT_USAGE)
    if passthrough and not COMMANDS[name].passthrough:
        raise ZcbenchError(f"'{name}' takes no arguments after --; see ./run.py --help",
                           EXIT_USAGE)
    args = make_parser(name).parse_args(argv)
    args.passthrough = passthrough
    args.command = name
    if name == "run" and not args.suite:
        args.suite = [] if args.ndr else [DEFAULT_SUITE]
    if name in ("run", "ci"):
        args.junit = name == "ci"
        args.suite = args.suite or []
    return name, args


def main(argv=None):
    argv = sys.argv if argv is None else argv
    try:
        name, args = parse_args(argv[1:])
        args.argv = list(argv)
        return COMMANDS[name].handler(args)
    except ZcbenchError as err:
        if err.details:
            sys.stderr.write(err.details)
        warn(str(err))
        return err.exit_code
    except KeyboardInterrupt:
        print(file=sys.stderr)
        warn("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
