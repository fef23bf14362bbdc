// The lab's XDP programs, written as BPF instructions here rather than as C
// compiled by clang at build time.
//
// Why instructions: each program is 2 to 30 instructions, so a tiny
// assembler keeps them readable next to their comments; the build needs no
// BPF toolchain, no CMake custom command and no object file to find at run
// time; and libbpf's bpf_prog_load() gives the verifier's log verbatim when
// the kernel refuses one. Loading goes straight through libbpf (no bpffs,
// no libxdp dispatcher): libxdp 1.3.1 finds no bpffs at /sys/fs/bpf here,
// so AF_XDP sockets are created with XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD and
// registered in our own XSKMAP.
#pragma once
#include <linux/bpf.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace zc {

// An owned bpf object fd (program or map).
class BpfFd {
 public:
  BpfFd() = default;
  explicit BpfFd(int fd) : fd_(fd) {}
  BpfFd(BpfFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  BpfFd& operator=(BpfFd&& o) noexcept;
  BpfFd(const BpfFd&) = delete;
  BpfFd& operator=(const BpfFd&) = delete;
  ~BpfFd();
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// A minimal BPF assembler: instructions plus forward jumps to named labels.
class BpfAsm {
 public:
  enum Reg : uint8_t { r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10 };
  void mov_imm(Reg dst, int32_t imm);
  void mov_reg(Reg dst, Reg src);
  void add_imm(Reg dst, int32_t imm);
  void add_reg(Reg dst, Reg src);
  void and_imm(Reg dst, int32_t imm);
  // dst = *(size *)(src + off); size is BPF_B, BPF_H, BPF_W or BPF_DW.
  void load(uint8_t size, Reg dst, Reg src, int16_t off);
  void store(uint8_t size, Reg dst, int16_t off, Reg src);
  void store_imm(uint8_t size, Reg dst, int16_t off, int32_t imm);
  void be16(Reg dst);  // network to host order of the low 16 bits
  void load_map_fd(Reg dst, int map_fd);  // the 2-instruction BPF_LD_IMM64 with BPF_PSEUDO_MAP_FD
  void call(int32_t helper);
  // if (dst op imm) goto label / if (dst op src) goto label; op is BPF_JEQ, BPF_JNE, BPF_JGT, ...
  void jump_imm(uint8_t op, Reg dst, int32_t imm, const std::string& label);
  void jump_reg(uint8_t op, Reg dst, Reg src, const std::string& label);
  void label(const std::string& name);
  void exit_with(int32_t action);  // r0 = action; exit
  void exit();                     // returns r0 as it is
  // The program with every jump resolved; throws InternalError on an unknown label.
  std::vector<bpf_insn> finish() const;

 private:
  void emit(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm);
  std::vector<bpf_insn> code_;
  std::vector<std::pair<size_t, std::string>> jumps_;
  std::vector<std::pair<std::string, size_t>> labels_;
};

// Loads an XDP program; on refusal throws EnvError with the kernel's errno
// and the verifier's last lines.
BpfFd load_xdp_program(const std::string& name, const std::vector<bpf_insn>& insns);

// Creates a map; throws EnvError naming it.
BpfFd create_map(bpf_map_type type, const std::string& name, uint32_t key_size, uint32_t value_size,
                 uint32_t max_entries);

// The three programs of the xdp lab and the xdp_drop sink.
// Sink veth: a frame for a queue with a registered AF_XDP socket goes to that
// socket, everything else to the stack (bpf_redirect_map's default action,
// kernel >= 5.3, so no lookup of our own).
BpfFd load_xsk_redirect_program(int xskmap_fd);
// Generator veth: XDP_PASS, only so that veth enables NAPI on it (what a
// native XDP_TX/redirect *into* the generator side needs, CONFORMANCE 41).
BpfFd load_xdp_pass_program();
// xdp_drop: IPv4/UDP frames to `udp_port` (IHL 5, not a fragment, total
// length within the frame and >= 28) are counted in a per-CPU array map
// (key 0: {packets, UDP payload bytes}) and dropped; the rest pass, so the
// stack sees (and counts) anything malformed. suites/unit/bpf_prog_test.cc
// runs each case through BPF_PROG_TEST_RUN.
BpfFd load_count_and_drop_program(int counter_map_fd, uint16_t udp_port);

// XDP attach in driver (native) mode through netlink, in the calling thread's
// network namespace. `expected_fd` >= 0 makes it an atomic replace of that
// program (XDP_FLAGS_REPLACE). Throws EnvError with the kernel's reason.
void attach_xdp(int ifindex, const std::string& ifname, int prog_fd, int expected_fd = -1);
// Id of the native XDP program on the device (0 = none).
uint32_t attached_xdp_prog_id(int ifindex, const std::string& ifname);
// The program's fd and its XSKMAP's fd, found by asking the kernel which maps
// the attached program uses; map invalid when it has none.
struct AttachedXdp {
  uint32_t prog_id = 0;
  std::string prog_name;
  BpfFd prog;
  BpfFd xskmap;
};
AttachedXdp find_attached_xdp(int ifindex, const std::string& ifname);

}  // namespace zc
