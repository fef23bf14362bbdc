// The rows of the parameter table (harness/params.h): one block per
// parameter, in --help order. Defaults are a default-constructed TrialSpec's.
#include <algorithm>
#include <tuple>
#include <type_traits>

#include "harness/generator.h"
#include "harness/lab_xdp.h"
#include "harness/params.h"

namespace zc {
namespace {

using nlohmann::json;
using Texts = std::vector<std::string>;

Texts one(std::string v) { return Texts{std::move(v)}; }

// ---- binding a row to its TrialSpec field ---------------------------------
// `field` returns a reference to the member; the getters call it on a const
// spec through const_cast only to read.

template <class Field>
void bind_integer(Param& p, Field field) {
  p.set = [field](TrialSpec& s, const std::string& v) {
    auto& x = field(s);
    x = static_cast<std::remove_reference_t<decltype(x)>>(std::stoll(v));
  };
  p.get = [field](const TrialSpec& s) { return one(std::to_string(field(const_cast<TrialSpec&>(s)))); };
}

template <class Field>
void bind_number(Param& p, Field field) {
  p.set = [field](TrialSpec& s, const std::string& v) { field(s) = std::stod(v); };
  p.get = [field](const TrialSpec& s) { return one(format_number(field(const_cast<TrialSpec&>(s)))); };
}

template <class Field>
void bind_text(Param& p, Field field) {
  p.set = [field](TrialSpec& s, const std::string& v) { field(s) = v; };
  p.get = [field](const TrialSpec& s) {
    const std::string& v = field(const_cast<TrialSpec&>(s));
    return v.empty() ? Texts{} : one(v);
  };
}

template <class Field>
void bind_flag(Param& p, Field field) {
  p.set = [field](TrialSpec& s, const std::string& v) { field(s) = v == "on"; };
  p.get = [field](const TrialSpec& s) { return field(const_cast<TrialSpec&>(s)) ? one("on") : Texts{}; };
}

template <class Field>
void bind_cpu_list(Param& p, Field field) {
  p.set = [field](TrialSpec& s, const std::string& v) { field(s) = parse_cpu_list("", v); };
  p.get = [field](const TrialSpec& s) {
    const auto& v = field(const_cast<TrialSpec&>(s));
    return v.empty() ? Texts{} : one(cpu_list_to_string(v));
  };
}

// A transport or generator: the name here, its options through `opts_flag`.
template <class Field>
void bind_driver(Param& p, Field field) {
  p.set = [field](TrialSpec& s, const std::string& v) { field(s) = parse_driver_spec(v); };
  p.get = [field](const TrialSpec& s) { return one(field(const_cast<TrialSpec&>(s)).name); };
}

template <class Field>
void bind_options(Param& p, Field field) {
  p.set = [field](TrialSpec& s, const std::string& v) {
    auto kv = parse_key_value("", v);
    field(s).options[kv.first] = kv.second;
  };
  p.get = [field](const TrialSpec& s) {
    Texts out;
    for (const auto& [k, v] : field(const_cast<TrialSpec&>(s)).options) out.push_back(k + "=" + v);
    return out;
  };
}

}  // namespace

std::vector<Param> build_param_table() {
  std::vector<Param> t;
  auto add = [&](std::string flag, std::string suite_key, std::string record_key, ParamType type, std::string metavar,
                 unsigned commands, std::string help) -> Param& {
    Param p;
    p.flag = std::move(flag);
    p.suite_key = std::move(suite_key);
    p.record_key = std::move(record_key);
    p.type = type;
    p.metavar = std::move(metavar);
    p.commands = commands;
    p.help = std::move(help);
    t.push_back(std::move(p));
    return t.back();
  };
  auto range = [](Param& p, std::string label, double min, double max, std::string unit = "") {
    p.label = std::move(label);
    p.min = min;
    p.max = max;
    p.unit = std::move(unit);
  };

  // Transports.
  {
    Param& p = add("--tx", "tx", "tx", ParamType::driver, "NAME", kRun | kSend,
                   "transmit transport (options: NAME:KEY=VALUE,... or --tx-opt)");
    p.always_in_command = true;
    bind_driver(p, [](TrialSpec& s) -> DriverSpec& { return s.tx; });
    p.record = [](const TrialSpec& s, const RecordContext& c, json& j) {
      j["tx"] = c.external ? json(nullptr) : json(s.tx.name);
      j["tx_opts"] = c.external ? json::object() : c.tx_opts.to_json();
    };
  }
  {
    Param& p = add("--tx-opt", "", "", ParamType::key_value, "KEY=VALUE", kRun | kSend,
                   "option of the transmit transport (repeatable)");
    bind_options(p, [](TrialSpec& s) -> DriverSpec& { return s.tx; });
  }
  {
    Param& p = add("--rx", "rx", "rx", ParamType::driver, "NAME", kRun | kSink,
                   "receive transport (options: NAME:KEY=VALUE,... or --rx-opt)");
    p.always_in_command = true;
    bind_driver(p, [](TrialSpec& s) -> DriverSpec& { return s.rx; });
    p.record = [](const TrialSpec& s, const RecordContext& c, json& j) {
      j["rx"] = s.rx.name;
      j["rx_opts"] = c.rx_opts.to_json();
    };
  }
  {
    Param& p = add("--rx-opt", "", "", ParamType::key_value, "KEY=VALUE", kRun | kSink,
                   "option of the receive transport (repeatable)");
    bind_options(p, [](TrialSpec& s) -> DriverSpec& { return s.rx; });
  }
  {
    Param& p = add("--rcvbuf", "", "", ParamType::text, "SIZE", kRun | kSink, "shorthand for --rx-opt rcvbuf=SIZE");
    p.in_command = false;  // trial_command prints it as the --rx-opt it is
    p.set = [](TrialSpec& s, const std::string& v) { s.rx.options["rcvbuf"] = v; };
    p.get = [](const TrialSpec&) { return Texts{}; };
  }
  // The packets.
  {
    Param& p = add("--size", "payload_bytes", "payload_bytes", ParamType::size, "BYTES|MIX", kRun | kSend | kSink,
                   "UDP payload, 18 .. MTU-28; or a frame-size mix FRAME:WEIGHT,... (frame bytes with Ethernet "
                   "header and FCS, e.g. 64:7,576:4,1518:1), cycled deterministically");
    p.label = "payload size";
    p.always_in_command = true;
    p.set = [](TrialSpec& s, const std::string& v) {
      if (v.find(':') == std::string::npos) {
        s.payload_bytes = size_t(std::stoull(v));
        s.size_mix.clear();
        return;
      }
      // Buffers are sized by payload_bytes: the largest frame of the mix.
      size_t largest = 0;
      for (const auto& e : parse_size_mix("", v)) largest = std::max(largest, e.frame_bytes);
      s.payload_bytes = largest - kEthernetOverhead;
      s.size_mix = v;
    };
    p.get = [](const TrialSpec& s) { return one(s.size_mix.empty() ? std::to_string(s.payload_bytes) : s.size_mix); };
    p.record = [](const TrialSpec& s, const RecordContext&, json& j) {
      j["payload_bytes"] = s.payload_bytes;
      j["frame_bytes"] = s.payload_bytes + kEthernetOverhead;
      j["size_mix"] = s.size_mix.empty() ? json(nullptr) : json(s.size_mix);
    };
  }
  {
    Param& p = add("--rate", "rate_pps", "offered_pps", ParamType::rate, "PPS|max", kRun | kSend | kSink,
                   "offered rate in packets/s (sink: the rate the source is declared to send)");
    range(p, "rate", 0, 1e8);
    p.min_exclusive = true;
    p.always_in_command = true;
    p.set = [](TrialSpec& s, const std::string& v) { s.rate_pps = v == "max" ? 0 : std::stod(v); };
    p.get = [](const TrialSpec& s) { return one(s.rate_pps == 0 ? "max" : format_number(s.rate_pps)); };
    p.record = [](const TrialSpec& s, const RecordContext&, json& j) {
      j["rate_mode"] = s.rate_pps > 0 ? "fixed" : "max";
      j["offered_pps"] = s.rate_pps > 0 ? json(s.rate_pps) : json(nullptr);
    };
  }
  {
    Param& p = add("--duration", "duration_s", "duration_s", ParamType::number, "S", kRun | kSend | kSink,
                   "measurement window in seconds");
    range(p, "duration", 0, 3600, " s");
    p.min_exclusive = true;
    p.always_in_command = true;
    bind_number(p, [](TrialSpec& s) -> double& { return s.duration_s; });
  }
  {
    Param& p = add("--warmup", "warmup_s", "warmup_s", ParamType::number, "S", kRun | kSend | kSink, "warm-up before the window");
    range(p, "warm-up", 0, 600, " s");
    p.always_in_command = true;
    bind_number(p, [](TrialSpec& s) -> double& { return s.warmup_s; });
  }
  {
    Param& p = add("--count", "count", "count", ParamType::integer, "N", kRun | kSend | kSink, "stop after N packets (sink: after N arrived)");
    range(p, "count", 0, 1e15);
    p.default_note = "bounded by time only";
    bind_integer(p, [](TrialSpec& s) -> uint64_t& { return s.count; });
  }
  {
    Param& p = add("--burst", "burst", "burst", ParamType::integer, "N", kRun | kSend,
                   "packets back-to-back per pacing step");
    range(p, "burst", 1, 65536);
    bind_integer(p, [](TrialSpec& s) -> uint32_t& { return s.burst; });
  }
  {
    Param& p = add("--flows", "flows", "flows", ParamType::integer, "N", kRun | kSend | kSink,
                   "flows (UDP source ports), round-robin");
    range(p, "flows", 1, 1024);
    bind_integer(p, [](TrialSpec& s) -> int& { return s.flows; });
  }
  // The lab.
  {
    Param& p = add("--lab-mode", "lab_mode", "lab_mode", ParamType::choice, "MODE", kRun,
                   "where the receive softirq runs: sender-softirq | rps | xdp");
    p.label = "lab mode";
    p.choices = lab_mode_names();
    p.always_in_command = true;
    p.set = [](TrialSpec& s, const std::string& v) { s.lab.mode = parse_lab_mode(v); };
    p.get = [](const TrialSpec& s) { return one(lab_mode_name(s.lab.mode)); };
  }
  {
    Param& p = add("--mtu", "mtu", "mtu", ParamType::integer, "BYTES", kRun | kSink, "lab MTU");
    range(p, "MTU", 68, 65535);
    p.always_in_command = true;
    bind_integer(p, [](TrialSpec& s) -> int& { return s.lab.mtu; });
  }
  {
    Param& p = add("--queues", "queues", "queues", ParamType::integer, "N", kRun,
                   "TX and RX queues per lab veth (IFLA_NUM_TX_QUEUES / IFLA_NUM_RX_QUEUES)");
    range(p, "queues", 1, kLabXskmapEntries);  // one XSKMAP slot per queue (harness/lab_xdp.h)
    bind_integer(p, [](TrialSpec& s) -> int& { return s.lab.queues; });
  }
  {
    Param& p = add("--ports", "ports", "ports", ParamType::integer, "N", kRun,
                   "lab port pairs (veth pairs); flow f uses port f % N");
    range(p, "ports", 1, 16);
    bind_integer(p, [](TrialSpec& s) -> int& { return s.lab.port_pairs; });
  }
  {
    Param& p = add("--gen-cpu", "gen_cpu", "gen_cpu", ParamType::cpu, "N", kRun | kSend, "generator CPU");
    p.always_in_command = true;
    bind_integer(p, [](TrialSpec& s) -> int& { return s.lab.gen_cpu; });
  }
  {
    Param& p = add("--sink-cpu", "sink_cpu", "sink_cpu", ParamType::cpu, "N", kRun | kSink, "sink CPU");
    p.always_in_command = true;
    bind_integer(p, [](TrialSpec& s) -> int& { return s.lab.sink_cpu; });
  }
  // Workers.
  {
    Param& p = add("--gen-threads", "gen_threads", "gen_threads", ParamType::integer, "N", kRun,
                   "generator workers; flows are partitioned across them");
    range(p, "generator threads", 1, 1024);
    bind_integer(p, [](TrialSpec& s) -> int& { return s.gen_threads; });
  }
  {
    Param& p = add("--gen-cpus", "gen_cpus", "gen_cpus", ParamType::cpu_list, "LIST", kRun,
                   "CPUs of the generator workers, e.g. 0,2-3");
    p.label = "generator CPUs";
    p.default_note = "--gen-cpu, then the next CPUs";
    bind_cpu_list(p, [](TrialSpec& s) -> std::vector<int>& { return s.gen_cpus; });
  }
  {
    Param& p = add("--sink-threads", "sink_threads", "sink_threads", ParamType::integer, "N", kRun | kSink,
                   "sink workers (a reuseport group, a fanout group, one XSK per queue)");
    range(p, "sink threads", 1, 1024);
    bind_integer(p, [](TrialSpec& s) -> int& { return s.sink_threads; });
  }
  {
    Param& p = add("--sink-cpus", "sink_cpus", "sink_cpus", ParamType::cpu_list, "LIST", kRun | kSink,
                   "CPUs of the sink workers, e.g. 1,3");
    p.label = "sink CPUs";
    p.default_note = "--sink-cpu, then the next CPUs";
    bind_cpu_list(p, [](TrialSpec& s) -> std::vector<int>& { return s.sink_cpus; });
  }
  {
    Param& p = add("--gro", "gro", "gro", ParamType::flag, "", kRun | kSend | kSink, "enable GRO on the sink veth");
    bind_flag(p, [](TrialSpec& s) -> bool& { return s.lab.gro; });
  }
  {
    Param& p = add("--traffic", "traffic", "traffic", ParamType::choice, "MODE", kRun,
                   "auto (the sink's default) | tap (foreign destination MAC, as on a monitoring port) | "
                   "host-addressed");
    p.label = "traffic";
    p.choices = {"auto", "tap", "host-addressed"};
    bind_text(p, [](TrialSpec& s) -> std::string& { return s.traffic; });
    p.record = [](const TrialSpec&, const RecordContext& c, json& j) { j["traffic"] = c.tap_traffic ? "tap" : "host-addressed"; };
  }
  // Generators.
  {
    Param& p = add("--generator", "generator", "generator", ParamType::driver, "NAME", kRun,
                   "flood (through --tx) | pktgen | trafgen | ... (see list)");
    bind_driver(p, [](TrialSpec& s) -> DriverSpec& { return s.generator; });
    p.record = [](const TrialSpec& s, const RecordContext& c, json& j) {
      j["generator"] = s.generator.name;
      j["gen_opts"] = c.external ? c.gen_opts.to_json() : json::object();
    };
  }
  {
    Param& p = add("--gen-opt", "gen_opts", "", ParamType::key_value, "KEY=VALUE", kRun,
                   "option of an external generator (repeatable; in suites an object)");
    bind_options(p, [](TrialSpec& s) -> DriverSpec& { return s.generator; });
  }
  {
    Param& p = add("--artifacts", "", "", ParamType::text, "DIR", kRun,
                   "where generators leave replayable scripts (default: none)");
    p.in_command = false;  // where files go, not what was measured
    bind_text(p, [](TrialSpec& s) -> std::string& { return s.artifacts_dir; });
  }
  {
    Param& p = add("--perf-events", "", "", ParamType::list, "LIST", kRun,
                   "comma-separated perf events (default: software + cycles, instructions, cache-misses where a PMU "
                   "exists)");
    p.set = [](TrialSpec& s, const std::string& v) { s.perf_events = v.empty() ? Texts{} : split_list(v, ','); };
    p.get = [](const TrialSpec& s) { return s.perf_events.empty() ? Texts{} : one(join_list(s.perf_events, ",")); };
  }
  {
    Param& p = add("--repetition", "", "repetition", ParamType::integer, "N", kRun | kSend | kSink,
                   "repetition index recorded in the result");
    range(p, "repetition", 0, 1e9);
    p.in_command = false;  // bookkeeping: every repetition reproduces with the same command
    bind_integer(p, [](TrialSpec& s) -> int& { return s.repetition; });
  }
  // Named interfaces (send / sink).
  {
    Param& p = add("--iface", "", "iface", ParamType::text, "IF", kSend | kSink,
                   "the interface to use (required; only the one named is touched)");
    bind_text(p, [](TrialSpec& s) -> std::string& { return s.iface; });
  }
  {
    Param& p = add("--dst", "", "dst", ParamType::ipv4, "IP", kSend, "destination IPv4, in 198.18.0.0/15 (required)");
    bind_text(p, [](TrialSpec& s) -> std::string& { return s.dst; });
  }
  {
    Param& p = add("--dst-mac", "", "dst_mac", ParamType::mac, "MAC", kSend,
                   "destination MAC aa:bb:cc:dd:ee:ff (default: the kernel's neighbour entry for --dst)");
    bind_text(p, [](TrialSpec& s) -> std::string& { return s.dst_mac; });
  }
  {
    Param& p = add("--allow-any-destination", "", "allow_any_destination", ParamType::flag, "", kSend,
                   "allow a --dst outside 198.18.0.0/15");
    bind_flag(p, [](TrialSpec& s) -> bool& { return s.allow_any_destination; });
  }
  {
    Param& p = add("--allow-host-interface", "", "allow_host_interface", ParamType::flag, "", kSend | kSink,
                   "allow an interface carrying the default route or the SSH session");
    bind_flag(p, [](TrialSpec& s) -> bool& { return s.allow_host_interface; });
  }
  {
    Param& p = add("--promisc", "", "promisc", ParamType::flag, "", kSink,
                   "promiscuous mode for the trial (restored after)");
    bind_flag(p, [](TrialSpec& s) -> bool& { return s.promisc; });
  }
  {
    // AF_XDP TX needs no XDP program, only a socket bound to one TX queue
    // (harness/wire_send.cc); the other transports leave the queue to XPS.
    Param& p = add("--tx-queue", "", "tx_queue", ParamType::integer, "N", kSend,
                   "send --tx af_xdp: the TX queue of --iface its XSK binds (default 0; recorded in params.wire.xsk)");
    range(p, "tx queue", 0, 1 << 20);
    p.set = [](TrialSpec& s, const std::string& v) { s.extra_params["tx_queue"] = v; };
    p.get = [](const TrialSpec& s) {
      return s.extra_params.contains("tx_queue") ? one(s.extra_params["tx_queue"].get<std::string>()) : Texts{};
    };
    p.record = [](const TrialSpec&, const RecordContext&, json&) {};  // params.wire.xsk has it
  }
  {
    // Refused before anything changes where the NIC cannot stamp every
    // packet in hardware (veth cannot): docs/results-format.md "Hardware stamps".
    Param& p = add("--hw-timestamps", "", "hw_timestamps", ParamType::flag, "", kSink,
                   "NIC hardware RX stamps (SIOCSHWTSTAMP rx_filter ALL for the trial, restored after): "
                   "nic->kernel latency split and hardware inter-arrival; recv, recvmmsg, tpacket_v1/v2/v3");
    bind_flag(p, [](TrialSpec& s) -> bool& { return s.hw_timestamps; });
  }
  // What a wire trial may change on the named interface for its duration,
  // each through the wire trial's InterfaceGuard (harness/iface_guard.h:
  // recorded first, restored after, listed in params.wire.changed). Kept in
  // extra_params under the record key: they exist for send/sink only.
  for (auto [flag, key, type, metavar, cmds, help] :
       {std::tuple{"--rps-cpus", "rps_cpus", ParamType::cpu_list, "LIST", kSink,
                   "rps_cpus of every RX queue of --iface for the trial, e.g. 1 (restored after)"},
        std::tuple{"--xps-cpus", "xps_cpus", ParamType::cpu_list, "LIST", kSend,
                   "xps_cpus of every TX queue of --iface for the trial (restored after)"},
        std::tuple{"--threaded-napi", "threaded_napi", ParamType::flag, "", kSink,
                   "threaded NAPI on --iface for the trial (restored after)"},
        std::tuple{"--rx-ring", "rx_ring", ParamType::integer, "N", kSink,
                   "RX ring entries of --iface for the trial (ETHTOOL_SRINGPARAM; restored after)"},
        std::tuple{"--tx-ring", "tx_ring", ParamType::integer, "N", kSend,
                   "TX ring entries of --iface for the trial (ETHTOOL_SRINGPARAM; restored after)"}}) {
    Param& p = add(flag, "", key, type, metavar, cmds, help);
    if (type == ParamType::integer) range(p, key, 1, 1 << 20);
    p.set = [key = std::string(key)](TrialSpec& s, const std::string& v) { s.extra_params[key] = v; };
    p.get = [key = std::string(key)](const TrialSpec& s) {
      return s.extra_params.contains(key) ? one(s.extra_params[key].get<std::string>()) : Texts{};
    };
    p.record = [](const TrialSpec&, const RecordContext&, json&) {};  // params.wire.changed has them
  }
  {
    Param& p = add("--source", "", "source", ParamType::choice, "KIND", kSink,
                   "generator (our flood) | external (a generator not ours: count, --seq)");
    p.label = "source";
    p.choices = {"generator", "external"};
    bind_text(p, [](TrialSpec& s) -> std::string& { return s.source; });
  }
  {
    Param& p = add("--seq", "", "seq", ParamType::text, "DESC", kSink,
                   "sequence number of external packets: offset=N,width=4|8,endian=big|little[,flow=OFF:W]");
    bind_text(p, [](TrialSpec& s) -> std::string& { return s.seq; });
  }
  {
    Param& p = add("--silence", "", "silence_s", ParamType::number, "S", kSink,
                   "end after this long without packets (0: off)");
    range(p, "silence", 0, 3600, " s");
    bind_number(p, [](TrialSpec& s) -> double& { return s.silence_s; });
  }
  // Suite-only bookkeeping, copied into the record's params as given.
  for (const char* key : {"claim", "label", "series"}) {
    Param& p = add("", key, key, ParamType::extra, "", kRun, "");
    p.help = std::string(key) == "claim"   ? "the DESIGN.md claim a trial re-measures"
             : std::string(key) == "label" ? "a label the report groups by (e.g. ceiling)"
                                           : "the report series the trial belongs to";
    p.in_command = false;
    p.set = [key = std::string(key)](TrialSpec& s, const std::string& v) { s.extra_params[key] = json::parse(v); };
    p.get = [key = std::string(key)](const TrialSpec& s) {
      return s.extra_params.contains(key) ? one(s.extra_params[key].dump()) : Texts{};
    };
    p.record = [](const TrialSpec&, const RecordContext&, json&) {};  // trial_params_json copies extra_params
  }
  return t;
}

}  // namespace zc
