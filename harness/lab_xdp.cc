#include "harness/lab_xdp.h"

#include <dirent.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <string>

#include "harness/errors.h"
#include "harness/netns.h"
#include "harness/xdp_prog.h"

namespace zc {
namespace {

using nlohmann::json;

// The netdev generic-netlink family (include/uapi/linux/netdev.h, kernel
// >= 6.8 for NAPI pids). Debian 12's headers predate it, hence the numbers;
// every answer is cross-checked against the kthread's name below, so a
// mismatch cannot pin a wrong thread.
constexpr uint8_t kNetdevCmdNapiGet = 11;
constexpr uint16_t kNetdevANapiIfindex = 1;
constexpr uint16_t kNetdevANapiId = 2;
constexpr uint16_t kNetdevANapiPid = 4;
constexpr uint8_t kNetdevCmdQueueGet = 10;
constexpr uint16_t kNetdevAQueueId = 1;
constexpr uint16_t kNetdevAQueueIfindex = 2;
constexpr uint16_t kNetdevAQueueType = 3;
constexpr uint16_t kNetdevAQueueNapiId = 4;
constexpr uint32_t kNetdevQueueTypeRx = 0;

struct NapiThread {
  uint32_t id = 0;
  int pid = 0;
};

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string thread_comm(int pid) {
  try {
    return trim(read_file("/proc/" + std::to_string(pid) + "/comm"));
  } catch (const EnvError&) {
    return "";
  }
}

// One genl request/dump; `on_msg` sees every reply message. Runs in the
// calling thread's network namespace.
template <class F>
void genl_request(mnl_socket* nl, uint16_t family, uint8_t cmd, uint16_t flags, F&& add_attrs,
                  mnl_cb_t on_msg, void* data, const std::string& what) {
  char buf[MNL_SOCKET_BUFFER_SIZE];
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = family;
  nlh->nlmsg_flags = NLM_F_REQUEST | flags;
  nlh->nlmsg_seq = 1;
  auto* g = static_cast<genlmsghdr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(genlmsghdr)));
  g->cmd = cmd;
  g->version = 1;
  add_attrs(nlh);
  if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) throw EnvError(errno_text(what + " (send)", errno), errno);
  const unsigned portid = mnl_socket_get_portid(nl);
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof buf);
    if (n < 0) throw EnvError(errno_text(what + " (recv)", errno), errno);
    int rc = mnl_cb_run(buf, size_t(n), 1, portid, on_msg, data);
    if (rc < 0) throw EnvError(errno_text(what, errno), errno);
    if (rc == MNL_CB_STOP) return;
  }
}

// The top-level attributes of a genl message.
std::vector<const nlattr*> genl_attrs(const nlmsghdr* nlh) {
  std::vector<const nlattr*> out;
  const char* tail = static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh));
  auto* a = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, sizeof(genlmsghdr)));
  while (mnl_attr_ok(a, int(tail - reinterpret_cast<const char*>(a)))) {
    out.push_back(a);
    a = mnl_attr_next(a);
  }
  return out;
}

int family_id_cb(const nlmsghdr* nlh, void* data) {
  for (const nlattr* a : genl_attrs(nlh)) {
    if (mnl_attr_get_type(a) == CTRL_ATTR_FAMILY_ID) *static_cast<uint16_t*>(data) = mnl_attr_get_u16(a);
  }
  return MNL_CB_OK;
}

int napi_cb(const nlmsghdr* nlh, void* data) {
  NapiThread t;
  for (const nlattr* a : genl_attrs(nlh)) {
    if (mnl_attr_get_type(a) == kNetdevANapiId) t.id = mnl_attr_get_u32(a);
    if (mnl_attr_get_type(a) == kNetdevANapiPid) t.pid = int(mnl_attr_get_u32(a));
  }
  if (t.id) static_cast<std::vector<NapiThread>*>(data)->push_back(t);
  return MNL_CB_OK;
}

struct QueueNapi {
  uint32_t queue = 0, type = 0, napi_id = 0;
  bool has_napi = false;
};

int queue_cb(const nlmsghdr* nlh, void* data) {
  QueueNapi q;
  for (const nlattr* a : genl_attrs(nlh)) {
    if (mnl_attr_get_type(a) == kNetdevAQueueId) q.queue = mnl_attr_get_u32(a);
    if (mnl_attr_get_type(a) == kNetdevAQueueType) q.type = mnl_attr_get_u32(a);
    if (mnl_attr_get_type(a) == kNetdevAQueueNapiId) {
      q.napi_id = mnl_attr_get_u32(a);
      q.has_napi = true;
    }
  }
  static_cast<std::vector<QueueNapi>*>(data)->push_back(q);
  return MNL_CB_OK;
}

// NAPI instances of a device with their kthread pids, asked of the kernel in
// the calling thread's namespace (names alone are ambiguous: every lab's sink
// device is zcs0, and labs may run side by side).
std::vector<NapiThread> query_napi(int ifindex, std::vector<QueueNapi>* queues) {
  mnl_socket* nl = mnl_socket_open(NETLINK_GENERIC);
  if (!nl) throw EnvError(errno_text("socket(NETLINK_GENERIC)", errno), errno);
  std::vector<NapiThread> out;
  try {
    if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) throw EnvError(errno_text("bind NETLINK_GENERIC", errno), errno);
    uint16_t family = 0;
    genl_request(
        nl, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, NLM_F_ACK,
        [](nlmsghdr* nlh) { mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, "netdev"); }, family_id_cb, &family,
        "genl family 'netdev'");
    if (!family) throw EnvError("genl family 'netdev' has no id");
    genl_request(
        nl, family, kNetdevCmdNapiGet, NLM_F_DUMP,
        [&](nlmsghdr* nlh) { mnl_attr_put_u32(nlh, kNetdevANapiIfindex, uint32_t(ifindex)); }, napi_cb, &out,
        "netdev napi-get");
    // Which NAPI serves which RX queue (queue-get, kernel >= 6.8, if the
    // driver calls netif_queue_set_napi). Optional: without it the order of
    // NAPI ids (veth enables queue 0's first) is used, and recorded as such.
    try {
      genl_request(
          nl, family, kNetdevCmdQueueGet, NLM_F_DUMP,
          [&](nlmsghdr* nlh) { mnl_attr_put_u32(nlh, kNetdevAQueueIfindex, uint32_t(ifindex)); }, queue_cb, queues,
          "netdev queue-get");
    } catch (const EnvError&) {
      queues->clear();
    }
  } catch (...) {
    mnl_socket_close(nl);
    throw;
  }
  mnl_socket_close(nl);
  return out;
}

// Kernel threads named napi/<dev>-<id>: the fallback when the genl family is
// missing; used only when exactly one matches.
std::vector<int> napi_threads_by_name(const std::string& dev) {
  std::vector<int> pids;
  DIR* d = opendir("/proc");
  if (!d) return pids;
  const std::string prefix = "napi/" + dev + "-";
  while (const dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    int pid = std::atoi(e->d_name);
    if (thread_comm(pid).rfind(prefix, 0) == 0) pids.push_back(pid);
  }
  closedir(d);
  return pids;
}

json cpus_allowed(int pid) {
  cpu_set_t set;
  CPU_ZERO(&set);
  json cpus = json::array();
  if (sched_getaffinity(pid, sizeof set, &set) < 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

// Moves one NAPI kthread to the sink CPU; its record says what happened.
json pin_napi_thread(int pid, uint32_t id, const std::string& dev, int sink_cpu, int queue) {
  json j{{"pid", pid}, {"napi_id", id}, {"queue", queue}, {"thread", thread_comm(pid)},
         {"cpus_before", cpus_allowed(pid)}};
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(sink_cpu, &set);
  if (sched_setaffinity(pid, sizeof set, &set) < 0)
    throw EnvError(errno_text("sched_setaffinity of NAPI thread " + std::to_string(pid) + " of " + dev +
                                  " to CPU " + std::to_string(sink_cpu),
                              errno),
                   errno);
  j["cpus_allowed"] = cpus_allowed(pid);
  return j;
}

// The RX queue each NAPI instance serves: from queue-get where the kernel
// tells, else by ascending NAPI id. Returns how it was decided.
std::string assign_queues(std::vector<NapiThread>& napis, const std::vector<QueueNapi>& queues,
                          std::vector<int>& queue_of) {
  queue_of.assign(napis.size(), -1);
  bool told = false;
  for (size_t i = 0; i < napis.size(); ++i)
    for (const auto& q : queues)
      if (q.type == kNetdevQueueTypeRx && q.has_napi && q.napi_id == napis[i].id) {
        queue_of[i] = int(q.queue);
        told = true;
      }
  if (told) return "netdev genl queue-get";
  std::vector<size_t> order(napis.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return napis[a].id < napis[b].id; });
  for (size_t k = 0; k < order.size(); ++k) queue_of[order[k]] = int(k);
  return "ascending NAPI id (queue-get names no NAPI for veth queues)";
}

}  // namespace

json setup_xdp_lab(const Netns& gen_ns, const Netns& sink_ns, const std::vector<LabPort>& ports,
                   const LabOptions& opts) {
  const int sink_cpu = opts.sink_cpu;
  json out_ports = json::array();
  for (const auto& p : ports) {
    json pj{{"sink_ifname", p.sink_ifname}, {"gen_ifname", p.gen_ifname}};
    sink_ns.run([&] {
      BpfFd map = create_map(BPF_MAP_TYPE_XSKMAP, "zc_xsks", 4, 4, kLabXskmapEntries);
      BpfFd prog = load_xsk_redirect_program(map.get());
      attach_xdp(p.sink_ifindex, p.sink_ifname, prog.get());
      pj["sink_xdp"] = {{"program", "zc_xsk_redirect"},
                        {"prog_id", attached_xdp_prog_id(p.sink_ifindex, p.sink_ifname)},
                        {"attach_mode", "native"},
                        {"action", "redirect to XSKMAP[rx_queue_index] if a socket is registered, else XDP_PASS"},
                        {"xskmap_entries", kLabXskmapEntries}};
    });
    gen_ns.run([&] {
      BpfFd prog = load_xdp_pass_program();
      attach_xdp(p.gen_ifindex, p.gen_ifname, prog.get());
      pj["gen_xdp"] = {{"program", "zc_xdp_pass"},
                       {"prog_id", attached_xdp_prog_id(p.gen_ifindex, p.gen_ifname)},
                       {"attach_mode", "native"},
                       {"why", "veth runs NAPI on a device only with XDP (or GRO) on it; XDP_TX and redirects "
                               "into the generator veth need it (CONFORMANCE 41). AF_XDP TX in copy mode "
                               "transmits through the stack's xmit and does not."}};
    });
    run_with_netns_sysfs(sink_ns, [&] {
      const std::string path = "/sys/class/net/" + p.sink_ifname + "/threaded";
      write_file(path, "1");
      pj["sink_threaded_napi"] = trim(read_file(path));
    });

    std::vector<NapiThread> napis;
    std::vector<QueueNapi> queues;
    std::string how;
    try {
      sink_ns.run([&] { napis = query_napi(p.sink_ifindex, &queues); });
      how = "netdev genl napi-get";
      // The cross-check: the kernel names the thread napi/<dev>-<napi id>.
      for (const auto& n : napis)
        if (n.pid && thread_comm(n.pid) != "napi/" + p.sink_ifname + "-" + std::to_string(n.id))
          throw EnvError("netdev genl answered pid " + std::to_string(n.pid) + " for NAPI " + std::to_string(n.id) +
                         " but that thread is '" + thread_comm(n.pid) + "'");
    } catch (const EnvError& e) {
      napis.clear();
      std::vector<int> pids = napi_threads_by_name(p.sink_ifname);
      how = std::string("thread name (genl failed: ") + e.what() + ")";
      if (pids.size() == 1 && opts.queues == 1) napis.push_back({0, pids[0]});
      else
        pj["napi_pin_error"] = std::to_string(pids.size()) + " kernel threads named napi/" + p.sink_ifname +
                               "-*: cannot tell ours";
    }
    std::vector<int> queue_of;
    pj["napi_queue_by"] = queues.empty() && napis.size() <= 1 ? std::string("one queue")
                                                               : assign_queues(napis, queues, queue_of);
    if (queue_of.empty()) queue_of.assign(napis.size(), 0);
    json threads = json::array();
    for (size_t i = 0; i < napis.size(); ++i)
      if (napis[i].pid)
        threads.push_back(pin_napi_thread(napis[i].pid, napis[i].id, p.sink_ifname,
                                          lab_sink_cpu_for_queue(opts, queue_of[i]), queue_of[i]));
    if (!pj.contains("napi_pin_error") && int(threads.size()) != opts.queues)
      throw EnvError("threaded NAPI on " + p.sink_ifname + ": " + std::to_string(threads.size()) +
                     " NAPI kthreads found for " + std::to_string(opts.queues) + " RX queues (" + how + ")");
    if (threads.empty() && !pj.contains("napi_pin_error"))
      throw EnvError("threaded NAPI is on for " + p.sink_ifname + " but no NAPI kthread was found (" + how + ")");
    pj["napi_threads"] = threads;
    pj["napi_found_by"] = how;
    out_ports.push_back(pj);
  }
  return {{"ports", out_ports}, {"sink_cpu", sink_cpu},
          {"loader", "own BPF instructions via libbpf; AF_XDP sockets created with "
                     "XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD (libxdp 1.3.1 finds no bpffs)"}};
}

}  // namespace zc
