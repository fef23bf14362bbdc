// XDP on an interface zcbench did not create, attached through a BPF link
// (BPF_LINK_CREATE, attach type BPF_XDP) instead of netlink: the kernel
// detaches a link's program when the last fd of the link closes, so it
// vanishes with the process, SIGKILL included, whereas a netlink attach
// (attach_xdp in harness/xdp_prog.h, the lab's, whose devices die with its
// namespaces) outlives it (README "Named interfaces").
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "harness/xdp_prog.h"

namespace zc {

class XdpLink {
 public:
  // Attaches prog_fd in native (driver) mode. An interface that already has
  // an XDP program, in any mode, is refused (UsageError): it is someone
  // else's and is never replaced. Throws EnvError with the kernel's reason.
  XdpLink(int ifindex, const std::string& ifname, int prog_fd);
  ~XdpLink();  // closes the link: the kernel detaches the program
  XdpLink(const XdpLink&) = delete;
  XdpLink& operator=(const XdpLink&) = delete;

  // Swaps the program atomically (BPF_LINK_UPDATE with BPF_F_REPLACE: fails
  // unless old_prog_fd's program is the one attached).
  void replace(int new_prog_fd, int old_prog_fd);
  int ifindex() const { return ifindex_; }
  // {attach: "bpf_link", link_id, prog_id, attach_mode}, for the record.
  nlohmann::json describe() const;

 private:
  int ifindex_;
  std::string ifname_;
  BpfFd link_;
};

// The link this process holds on ifindex, nullptr if none. One per interface.
XdpLink* held_xdp_link(int ifindex);

// Replaces the native XDP program old_prog_fd on ifindex by prog_fd: through
// the link this process holds there (a named interface), else through
// netlink (attach_xdp with XDP_FLAGS_REPLACE: the lab's own devices).
void replace_xdp(int ifindex, const std::string& ifname, int prog_fd, int old_prog_fd);

// What af_xdp and xdp_drop expect on their device, as the xdp lab mode sets
// it up (harness/lab_xdp.cc): the XSK-redirect program with its XSKMAP, here
// attached through a link. Lives as long as the sink.
struct LinkedXskRedirect {
  BpfFd map, prog;
  std::unique_ptr<XdpLink> link;
};
LinkedXskRedirect attach_xsk_redirect_by_link(int ifindex, const std::string& ifname);

}  // namespace zc
