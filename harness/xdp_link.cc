#include "harness/xdp_link.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include <cerrno>
#include <map>
#include <mutex>

#include "harness/errors.h"
#include "harness/lab_xdp.h"

namespace zc {
namespace {

using nlohmann::json;

// ifindex -> the link this process holds there. The drivers find it here
// (replace_xdp) rather than through RxContext, so the lab path is unchanged.
std::mutex g_mu;
std::map<int, XdpLink*> g_links;

const char* mode_name(uint8_t m) {
  switch (m) {
    case XDP_ATTACHED_DRV: return "native";
    case XDP_ATTACHED_SKB: return "generic";
    case XDP_ATTACHED_HW: return "offload";
    case XDP_ATTACHED_MULTI: return "multi";
    default: return "none";
  }
}

}  // namespace

XdpLink::XdpLink(int ifindex, const std::string& ifname, int prog_fd) : ifindex_(ifindex), ifname_(ifname) {
  LIBBPF_OPTS(bpf_xdp_query_opts, q);
  int rc = bpf_xdp_query(ifindex, 0, &q);
  if (rc < 0) throw EnvError(errno_text("query XDP programs of " + ifname, -rc), -rc);
  if (q.attach_mode != XDP_ATTACHED_NONE) {
    uint32_t id = q.prog_id ? q.prog_id : q.drv_prog_id ? q.drv_prog_id : q.skb_prog_id ? q.skb_prog_id : q.hw_prog_id;
    throw UsageError("interface '" + ifname + "' already has an XDP program (id " + std::to_string(id) + ", " +
                     mode_name(q.attach_mode) + " mode) that zcbench did not attach and will not replace; "
                     "use a socket or packet transport (recvmmsg, tpacket_v3) or another interface");
  }
  {
    std::lock_guard<std::mutex> l(g_mu);
    if (g_links.count(ifindex)) throw InternalError("a second XDP link on " + ifname);
  }
  LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = XDP_FLAGS_DRV_MODE);
  int fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts);
  if (fd < 0) throw EnvError(errno_text("bpf(BPF_LINK_CREATE) of an XDP program (native mode) on " + ifname, errno), errno);
  link_ = BpfFd(fd);
  std::lock_guard<std::mutex> l(g_mu);
  g_links[ifindex] = this;
}

XdpLink::~XdpLink() {
  std::lock_guard<std::mutex> l(g_mu);
  g_links.erase(ifindex_);
}  // link_ closes after: the kernel detaches the program

void XdpLink::replace(int new_prog_fd, int old_prog_fd) {
  LIBBPF_OPTS(bpf_link_update_opts, opts, .flags = BPF_F_REPLACE, .old_prog_fd = uint32_t(old_prog_fd));
  if (bpf_link_update(link_.get(), new_prog_fd, &opts) < 0)
    throw EnvError(errno_text("bpf(BPF_LINK_UPDATE) of the XDP link on " + ifname_, errno), errno);
}

json XdpLink::describe() const {
  bpf_link_info info{};
  uint32_t len = sizeof info;
  json j{{"attach", "bpf_link"}, {"attach_mode", "native"}};
  if (bpf_obj_get_info_by_fd(link_.get(), &info, &len) == 0) {
    j["link_id"] = info.id;
    j["prog_id"] = info.prog_id;
  }
  return j;
}

XdpLink* held_xdp_link(int ifindex) {
  std::lock_guard<std::mutex> l(g_mu);
  auto it = g_links.find(ifindex);
  return it == g_links.end() ? nullptr : it->second;
}

void replace_xdp(int ifindex, const std::string& ifname, int prog_fd, int old_prog_fd) {
  if (XdpLink* link = held_xdp_link(ifindex)) link->replace(prog_fd, old_prog_fd);
  else attach_xdp(ifindex, ifname, prog_fd, old_prog_fd);
}

LinkedXskRedirect attach_xsk_redirect_by_link(int ifindex, const std::string& ifname) {
  LinkedXskRedirect r;
  r.map = create_map(BPF_MAP_TYPE_XSKMAP, "zc_xsks", 4, 4, kLabXskmapEntries);
  r.prog = load_xsk_redirect_program(r.map.get());
  r.link = std::make_unique<XdpLink>(ifindex, ifname, r.prog.get());
  return r;
}

}  // namespace zc
