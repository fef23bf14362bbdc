#include "harness/netlink.h"

#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "harness/errors.h"

namespace zc::netlink {
namespace {

// Room for one link dump entry with IFLA_STATS64, IFLA_AF_SPEC and friends.
constexpr size_t kRecvBuffer = 32768;
constexpr size_t kSendBuffer = 4096;

// mnl_attr_for_each() assigns from void*, which C++ refuses; same walk, typed.
template <class Fn>
void for_each_attr(const nlmsghdr* nlh, size_t offset, Fn&& fn) {
  const auto* attr = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, offset));
  const auto* tail = static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh));
  while (mnl_attr_ok(attr, static_cast<int>(tail - reinterpret_cast<const char*>(attr)))) {
    fn(attr);
    attr = mnl_attr_next(attr);
  }
}

[[noreturn]] void throw_netlink(const std::string& what, int e, const std::string& kernel_msg) {
  std::string msg = errno_text(what, e);
  if (!kernel_msg.empty()) msg += " (kernel: " + kernel_msg + ")";
  throw EnvError(msg, e);
}

// The NLMSGERR_ATTR_MSG string of an extended ack, or "" when absent.
std::string extack_message(const nlmsghdr* nlh) {
  if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS)) return "";
  const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
  // The TLVs follow the echoed request, which is only its header when capped.
  size_t offset = sizeof(nlmsgerr);
  if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) offset += err->msg.nlmsg_len - sizeof(nlmsghdr);
  if (offset >= mnl_nlmsg_get_payload_len(nlh)) return "";
  std::string text;
  for_each_attr(nlh, offset, [&](const nlattr* attr) {
    if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG && mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
      text = mnl_attr_get_str(attr);
  });
  return text;
}

std::string link_what(const char* op, const std::string& dev) { return std::string(op) + " " + dev; }

// Both ends get the same count: veth_xmit delivers TX queue q of one end to
// RX queue q of the other (a queue beyond the peer's count falls back to the
// non-NAPI path), so equal counts keep "queue q" one path end to end. rtnetlink
// applies these at creation only (rtnl_create_link); 1 is the kernel default.
void put_queue_counts(nlmsghdr* nlh, int queues) {
  if (queues <= 1) return;
  mnl_attr_put_u32(nlh, IFLA_NUM_TX_QUEUES, static_cast<uint32_t>(queues));
  mnl_attr_put_u32(nlh, IFLA_NUM_RX_QUEUES, static_cast<uint32_t>(queues));
}

LinkInfo parse_link(const nlmsghdr* nlh) {
  LinkInfo info;
  const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  info.index = ifi->ifi_index;
  info.flags = ifi->ifi_flags;
  for_each_attr(nlh, sizeof(ifinfomsg), [&](const nlattr* attr) {
    switch (mnl_attr_get_type(attr)) {
      case IFLA_IFNAME:
        if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0) info.name = mnl_attr_get_str(attr);
        break;
      case IFLA_QDISC:
        if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0) info.qdisc = mnl_attr_get_str(attr);
        break;
      case IFLA_MTU:
        if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0) info.mtu = static_cast<int>(mnl_attr_get_u32(attr));
        break;
      case IFLA_ADDRESS:
        if (mnl_attr_get_payload_len(attr) == info.mac.size())
          std::memcpy(info.mac.data(), mnl_attr_get_payload(attr), info.mac.size());
        break;
      case IFLA_STATS64: {
        // Older kernels send a shorter struct; copy what is there.
        rtnl_link_stats64 s{};
        std::memcpy(&s, mnl_attr_get_payload(attr), std::min<size_t>(sizeof s, mnl_attr_get_payload_len(attr)));
        info.stats.rx_packets = s.rx_packets;
        info.stats.tx_packets = s.tx_packets;
        info.stats.rx_bytes = s.rx_bytes;
        info.stats.tx_bytes = s.tx_bytes;
        info.stats.rx_dropped = s.rx_dropped;
        info.stats.tx_dropped = s.tx_dropped;
        info.stats.rx_errors = s.rx_errors;
        info.stats.tx_errors = s.tx_errors;
        break;
      }
      default:
        break;
    }
  });
  return info;
}

}  // namespace

Socket::Socket() {
  sock_ = mnl_socket_open(NETLINK_ROUTE);
  if (!sock_) check_sys(-1, "netlink socket (NETLINK_ROUTE)");
  // Extended acks carry the kernel's own sentence ("MTU greater than device
  // maximum"); older kernels refuse the option, which only costs that text.
  int one = 1;
  mnl_socket_setsockopt(sock_, NETLINK_EXT_ACK, &one, sizeof one);
  mnl_socket_setsockopt(sock_, NETLINK_CAP_ACK, &one, sizeof one);
  if (mnl_socket_bind(sock_, 0, MNL_SOCKET_AUTOPID) < 0) {
    const int e = errno;
    mnl_socket_close(sock_);
    sock_ = nullptr;
    throw EnvError(errno_text("netlink bind", e), e);
  }
  portid_ = mnl_socket_get_portid(sock_);
  seq_ = static_cast<unsigned>(time(nullptr));
}

Socket::~Socket() {
  if (sock_) mnl_socket_close(sock_);
}

template <class OnReply>
void Socket::transact(nlmsghdr* req, const std::string& what, OnReply&& on_reply) {
  req->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
  req->nlmsg_seq = ++seq_;
  if (mnl_socket_sendto(sock_, req, req->nlmsg_len) < 0) check_sys(-1, what + " (netlink send)");

  std::vector<char> buf(kRecvBuffer);
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(sock_, buf.data(), buf.size());
    if (n < 0) check_sys(-1, what + " (netlink receive)");
    int len = static_cast<int>(n);
    for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(nlh, len);
         nlh = mnl_nlmsg_next(nlh, &len)) {
      // Skip leftovers of an earlier request (e.g. after an exception).
      if (nlh->nlmsg_seq != req->nlmsg_seq || nlh->nlmsg_pid != portid_) continue;
      if (nlh->nlmsg_type == NLMSG_ERROR) {
        const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
        if (err->error == 0) return;  // the ack
        throw_netlink(what, -err->error, extack_message(nlh));
      }
      if (nlh->nlmsg_type == NLMSG_DONE) return;
      on_reply(nlh);
    }
  }
}

void Socket::transact(nlmsghdr* req, const std::string& what) {
  transact(req, what, [](const nlmsghdr*) {});
}

void Socket::create_veth_pair(const std::string& name, const std::string& peer_name, int peer_netns_fd,
                              int mtu, int queues) {
  char buf[kSendBuffer];
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_NEWLINK;
  // NLM_F_EXCL: a name clash means someone else's device; never adopt it.
  nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
  mnl_attr_put_u32(nlh, IFLA_MTU, static_cast<uint32_t>(mtu));
  put_queue_counts(nlh, queues);

  nlattr* linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
  nlattr* data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
  nlattr* peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
  // The peer's attributes follow its own ifinfomsg inside VETH_INFO_PEER.
  auto* peer_ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  peer_ifi->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, peer_name.c_str());
  mnl_attr_put_u32(nlh, IFLA_MTU, static_cast<uint32_t>(mtu));
  mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, static_cast<uint32_t>(peer_netns_fd));
  put_queue_counts(nlh, queues);
  mnl_attr_nest_end(nlh, peer);
  mnl_attr_nest_end(nlh, data);
  mnl_attr_nest_end(nlh, linkinfo);

  transact(nlh, "create veth " + name + " <-> " + peer_name + " (mtu " + std::to_string(mtu) + ", " +
                    std::to_string(queues) + " queues)");
}

LinkInfo Socket::get_link(const std::string& name) {
  char buf[kSendBuffer];
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_GETLINK;
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
  LinkInfo info;
  transact(nlh, link_what("get link", name), [&](const nlmsghdr* m) {
    if (m->nlmsg_type == RTM_NEWLINK) info = parse_link(m);
  });
  if (info.index == 0) throw EnvError(errno_text(link_what("get link", name), ENODEV), ENODEV);
  return info;
}

LinkInfo Socket::get_link(int ifindex, const std::string& name_for_errors) {
  char buf[kSendBuffer];
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_GETLINK;
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
  LinkInfo info;
  const std::string what = link_what("get link", name_for_errors) + " (ifindex " + std::to_string(ifindex) + ")";
  transact(nlh, what, [&](const nlmsghdr* m) {
    if (m->nlmsg_type == RTM_NEWLINK) info = parse_link(m);
  });
  if (info.index == 0) throw EnvError(errno_text(what, ENODEV), ENODEV);
  return info;
}

void Socket::set_link_up(const LinkInfo& link, int mtu) {
  char buf[kSendBuffer];
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_NEWLINK;
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = link.index;
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
  if (mtu > 0) mnl_attr_put_u32(nlh, IFLA_MTU, static_cast<uint32_t>(mtu));
  std::string what = link_what("set link up", link.name);
  if (mtu > 0) what += " mtu " + std::to_string(mtu);
  transact(nlh, what);
}

void Socket::add_ipv4_address(const LinkInfo& link, in_addr addr, int prefix_len) {
  char buf[kSendBuffer];
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_NEWADDR;
  nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE;
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = static_cast<unsigned char>(prefix_len);
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = static_cast<unsigned>(link.index);
  // IFA_LOCAL is the address itself; IFA_ADDRESS the peer/prefix address,
  // equal to it on a broadcast link (what `ip addr add` sends).
  mnl_attr_put(nlh, IFA_LOCAL, sizeof addr, &addr);
  mnl_attr_put(nlh, IFA_ADDRESS, sizeof addr, &addr);
  transact(nlh, link_what("add address", link.name) + " " + ipv4_to_string(addr) + "/" + std::to_string(prefix_len));
}

void Socket::add_permanent_neighbour(const LinkInfo& link, in_addr addr, const MacAddr& mac) {
  char buf[kSendBuffer];
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_NEWNEIGH;
  nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE;
  auto* ndm = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ndmsg)));
  ndm->ndm_family = AF_INET;
  ndm->ndm_ifindex = link.index;
  ndm->ndm_state = NUD_PERMANENT;
  mnl_attr_put(nlh, NDA_DST, sizeof addr, &addr);
  mnl_attr_put(nlh, NDA_LLADDR, mac.size(), mac.data());
  transact(nlh, link_what("add neighbour", link.name) + " " + ipv4_to_string(addr) + " lladdr " + mac_to_string(mac));
}

}  // namespace zc::netlink
