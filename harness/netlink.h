// Just enough rtnetlink (via libmnl) to build the lab: veth pairs, link
// state, IPv4 addresses, static neighbours, link attributes and IFLA_STATS64.
//
// A netlink socket acts on the network namespace it was *created* in, so a
// Socket made on a thread that has entered a lab namespace keeps working on
// that namespace whichever thread uses it afterwards.
#pragma once
#include <netinet/in.h>

#include <string>

#include "harness/lab.h"

struct mnl_socket;
struct nlmsghdr;

namespace zc::netlink {

// What RTM_GETLINK tells about one device.
struct LinkInfo {
  std::string name;
  int index = 0;
  int mtu = 0;
  unsigned flags = 0;  // IFF_*
  MacAddr mac{};
  LinkCounters stats;  // IFLA_STATS64
  std::string qdisc;   // IFLA_QDISC: "noop" until linkwatch activates the device
};

class Socket {
 public:
  // Opens a NETLINK_ROUTE socket in the calling thread's network namespace.
  // Throws EnvError when it cannot.
  Socket();
  ~Socket();
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // Creates veth `name` in this socket's namespace with its peer `peer_name`
  // created directly in the namespace held by `peer_netns_fd`, both with
  // `mtu` and `queues` TX and RX queues each (IFLA_NUM_TX_QUEUES /
  // IFLA_NUM_RX_QUEUES). Neither end ever exists in any other namespace.
  void create_veth_pair(const std::string& name, const std::string& peer_name, int peer_netns_fd,
                        int mtu, int queues = 1);

  // RTM_GETLINK by name; throws EnvError (ENODEV) naming the device if absent.
  LinkInfo get_link(const std::string& name);
  LinkInfo get_link(int ifindex, const std::string& name_for_errors);

  // Sets IFF_UP and, when mtu > 0, the MTU in one request.
  void set_link_up(const LinkInfo& link, int mtu = 0);
  // Adds addr/prefix_len (IFA_LOCAL and IFA_ADDRESS) on the device.
  void add_ipv4_address(const LinkInfo& link, in_addr addr, int prefix_len);
  // Adds or replaces a NUD_PERMANENT neighbour entry addr -> mac.
  void add_permanent_neighbour(const LinkInfo& link, in_addr addr, const MacAddr& mac);

 private:
  // Sends one request carrying NLM_F_ACK and reads until the kernel's ack,
  // passing every other message of the answer to `on_reply`. A negative ack
  // becomes an EnvError naming `what`, with the kernel's extended-ack text.
  template <class OnReply>
  void transact(nlmsghdr* req, const std::string& what, OnReply&& on_reply);
  void transact(nlmsghdr* req, const std::string& what);

  mnl_socket* sock_ = nullptr;
  unsigned portid_ = 0;
  unsigned seq_ = 0;
};

}  // namespace zc::netlink
