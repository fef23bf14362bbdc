#include "harness/xdp_prog.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>

#include "harness/errors.h"

namespace zc {

BpfFd& BpfFd::operator=(BpfFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

BpfFd::~BpfFd() {
  if (fd_ >= 0) close(fd_);
}

// ---- assembler ---------------------------------------------------------------

void BpfAsm::emit(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  code_.push_back(i);
}

void BpfAsm::mov_imm(Reg dst, int32_t imm) { emit(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm); }
void BpfAsm::mov_reg(Reg dst, Reg src) { emit(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0); }
void BpfAsm::add_imm(Reg dst, int32_t imm) { emit(BPF_ALU64 | BPF_ADD | BPF_K, dst, 0, 0, imm); }
void BpfAsm::add_reg(Reg dst, Reg src) { emit(BPF_ALU64 | BPF_ADD | BPF_X, dst, src, 0, 0); }
void BpfAsm::and_imm(Reg dst, int32_t imm) { emit(BPF_ALU64 | BPF_AND | BPF_K, dst, 0, 0, imm); }
void BpfAsm::load(uint8_t size, Reg dst, Reg src, int16_t off) { emit(BPF_LDX | size | BPF_MEM, dst, src, off, 0); }
void BpfAsm::store(uint8_t size, Reg dst, int16_t off, Reg src) { emit(BPF_STX | size | BPF_MEM, dst, src, off, 0); }
void BpfAsm::store_imm(uint8_t size, Reg dst, int16_t off, int32_t imm) {
  emit(BPF_ST | size | BPF_MEM, dst, 0, off, imm);
}
void BpfAsm::be16(Reg dst) { emit(BPF_ALU | BPF_END | BPF_TO_BE, dst, 0, 0, 16); }
void BpfAsm::load_map_fd(Reg dst, int map_fd) {
  emit(BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, 0, map_fd);
  emit(0, 0, 0, 0, 0);
}
void BpfAsm::call(int32_t helper) { emit(BPF_JMP | BPF_CALL, 0, 0, 0, helper); }
void BpfAsm::jump_imm(uint8_t op, Reg dst, int32_t imm, const std::string& label) {
  jumps_.emplace_back(code_.size(), label);
  emit(BPF_JMP | op | BPF_K, dst, 0, 0, imm);
}
void BpfAsm::jump_reg(uint8_t op, Reg dst, Reg src, const std::string& label) {
  jumps_.emplace_back(code_.size(), label);
  emit(BPF_JMP | op | BPF_X, dst, src, 0, 0);
}
void BpfAsm::label(const std::string& name) { labels_.emplace_back(name, code_.size()); }
void BpfAsm::exit_with(int32_t action) {
  mov_imm(r0, action);
  exit();
}
void BpfAsm::exit() { emit(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

std::vector<bpf_insn> BpfAsm::finish() const {
  std::vector<bpf_insn> out = code_;
  for (const auto& [at, name] : jumps_) {
    bool found = false;
    for (const auto& [lname, pos] : labels_)
      if (lname == name) {
        out[at].off = int16_t(int64_t(pos) - int64_t(at) - 1);
        found = true;
      }
    if (!found) throw InternalError("BPF program jumps to unknown label '" + name + "'");
  }
  return out;
}

// ---- loading -----------------------------------------------------------------

BpfFd load_xdp_program(const std::string& name, const std::vector<bpf_insn>& insns) {
  static thread_local char log[16384];
  log[0] = 0;
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .log_level = 1, .log_size = sizeof log, .log_buf = log);
  int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, name.c_str(), "GPL", insns.data(), insns.size(), &opts);
  if (fd < 0) {
    const int e = errno;
    std::string tail(log);
    if (tail.size() > 400) tail = "..." + tail.substr(tail.size() - 400);
    for (auto& c : tail)
      if (c == '\n') c = ' ';
    throw EnvError(errno_text("bpf(BPF_PROG_LOAD) of XDP program " + name, e) + (tail.empty() ? "" : "; verifier: " + tail), e);
  }
  return BpfFd(fd);
}

BpfFd create_map(bpf_map_type type, const std::string& name, uint32_t key_size, uint32_t value_size,
                 uint32_t max_entries) {
  int fd = bpf_map_create(type, name.c_str(), key_size, value_size, max_entries, nullptr);
  if (fd < 0) throw EnvError(errno_text("bpf(BPF_MAP_CREATE) " + name, errno), errno);
  return BpfFd(fd);
}

BpfFd load_xsk_redirect_program(int xskmap_fd) {
  BpfAsm a;
  a.load(BPF_W, BpfAsm::r2, BpfAsm::r1, int16_t(offsetof(xdp_md, rx_queue_index)));
  a.load_map_fd(BpfAsm::r1, xskmap_fd);
  a.mov_imm(BpfAsm::r3, XDP_PASS);  // action when no socket sits at that index
  a.call(BPF_FUNC_redirect_map);
  a.exit();
  return load_xdp_program("zc_xsk_redirect", a.finish());
}

BpfFd load_xdp_pass_program() {
  BpfAsm a;
  a.exit_with(XDP_PASS);
  return load_xdp_program("zc_xdp_pass", a.finish());
}

BpfFd load_count_and_drop_program(int counter_map_fd, uint16_t udp_port) {
  using R = BpfAsm;
  BpfAsm a;
  // Packet offsets: Ethernet type 12, IPv4 version/IHL 14, total length 16,
  // flags/fragment offset 20, protocol 23, UDP destination port 36; 42 bytes
  // of headers in all.
  a.load(BPF_W, R::r2, R::r1, int16_t(offsetof(xdp_md, data)));
  a.load(BPF_W, R::r3, R::r1, int16_t(offsetof(xdp_md, data_end)));
  a.mov_reg(R::r4, R::r2);
  a.add_imm(R::r4, 42);
  a.jump_reg(BPF_JGT, R::r4, R::r3, "pass");
  a.load(BPF_H, R::r5, R::r2, 12);
  a.jump_imm(BPF_JNE, R::r5, htons(0x0800), "pass");  // loaded as stored: compare in network order
  a.load(BPF_B, R::r5, R::r2, 14);
  a.jump_imm(BPF_JNE, R::r5, 0x45, "pass");
  a.load(BPF_B, R::r5, R::r2, 23);
  a.jump_imm(BPF_JNE, R::r5, 17, "pass");
  // A fragment (MF set or a fragment offset): a later one carries no UDP
  // header, so offset 36 is payload that may match the port by chance.
  a.load(BPF_H, R::r5, R::r2, 20);
  a.and_imm(R::r5, htons(0x3fff));
  a.jump_imm(BPF_JNE, R::r5, 0, "pass");
  a.load(BPF_H, R::r5, R::r2, 36);
  a.jump_imm(BPF_JNE, R::r5, htons(udp_port), "pass");
  a.load(BPF_H, R::r7, R::r2, 16);
  a.be16(R::r7);
  // The byte count comes from the header, so the header must be sane: a total
  // length under 28 made the byte count go backwards, and
  // one past the frame's end counted bytes never received. The stack drops
  // both (ip_rcv_core); passing them lets it count them.
  a.jump_imm(BPF_JLT, R::r7, 28, "pass");
  a.jump_imm(BPF_JGT, R::r7, 0xffff, "pass");  // never taken: bounds r7 for the verifier
  a.mov_reg(R::r4, R::r2);
  a.add_imm(R::r4, 14);
  a.add_reg(R::r4, R::r7);
  a.jump_reg(BPF_JGT, R::r4, R::r3, "pass");
  a.add_imm(R::r7, -28);  // UDP payload bytes = IPv4 total length - 20 - 8
  a.store_imm(BPF_W, R::r10, -4, 0);
  a.mov_reg(R::r2, R::r10);
  a.add_imm(R::r2, -4);
  a.load_map_fd(R::r1, counter_map_fd);
  a.call(BPF_FUNC_map_lookup_elem);
  a.jump_imm(BPF_JEQ, R::r0, 0, "drop");
  // Per-CPU slot: this CPU's NAPI is its only writer, so no atomics needed.
  a.load(BPF_DW, R::r1, R::r0, 0);
  a.add_imm(R::r1, 1);
  a.store(BPF_DW, R::r0, 0, R::r1);
  a.load(BPF_DW, R::r1, R::r0, 8);
  a.add_reg(R::r1, R::r7);
  a.store(BPF_DW, R::r0, 8, R::r1);
  a.label("drop");
  a.exit_with(XDP_DROP);
  a.label("pass");
  a.exit_with(XDP_PASS);
  return load_xdp_program("zc_count_drop", a.finish());
}

// ---- attach and query --------------------------------------------------------

void attach_xdp(int ifindex, const std::string& ifname, int prog_fd, int expected_fd) {
  LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = expected_fd);
  uint32_t flags = XDP_FLAGS_DRV_MODE | (expected_fd >= 0 ? XDP_FLAGS_REPLACE : 0);
  int rc = bpf_xdp_attach(ifindex, prog_fd, flags, expected_fd >= 0 ? &opts : nullptr);
  if (rc < 0)
    throw EnvError(errno_text("attach XDP program (native mode) to " + ifname, -rc), -rc);
}

uint32_t attached_xdp_prog_id(int ifindex, const std::string& ifname) {
  uint32_t id = 0;
  int rc = bpf_xdp_query_id(ifindex, XDP_FLAGS_DRV_MODE, &id);
  if (rc < 0) throw EnvError(errno_text("query XDP program of " + ifname, -rc), -rc);
  return id;
}

AttachedXdp find_attached_xdp(int ifindex, const std::string& ifname) {
  AttachedXdp out;
  out.prog_id = attached_xdp_prog_id(ifindex, ifname);
  if (!out.prog_id) return out;
  out.prog = BpfFd(bpf_prog_get_fd_by_id(out.prog_id));
  if (!out.prog.valid())
    throw EnvError(errno_text("bpf(BPF_PROG_GET_FD_BY_ID) " + std::to_string(out.prog_id), errno), errno);
  uint32_t map_ids[8] = {};
  bpf_prog_info info{};
  info.nr_map_ids = 8;
  info.map_ids = reinterpret_cast<uint64_t>(map_ids);
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(out.prog.get(), &info, &len) < 0)
    throw EnvError(errno_text("bpf(BPF_OBJ_GET_INFO_BY_FD) of XDP program on " + ifname, errno), errno);
  out.prog_name = info.name;
  for (uint32_t i = 0; i < std::min<uint32_t>(info.nr_map_ids, 8); ++i) {
    BpfFd m(bpf_map_get_fd_by_id(map_ids[i]));
    if (!m.valid()) continue;
    bpf_map_info mi{};
    uint32_t mlen = sizeof mi;
    if (bpf_obj_get_info_by_fd(m.get(), &mi, &mlen) == 0 && mi.type == BPF_MAP_TYPE_XSKMAP) {
      out.xskmap = std::move(m);
      break;
    }
  }
  return out;
}

}  // namespace zc
