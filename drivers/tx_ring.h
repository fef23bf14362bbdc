// A PACKET_TX_RING (packet_mmap.rst "TX ring"): one AF_PACKET socket, one
// mmap'ed ring of fixed-size frames that user space fills and marks
// TP_STATUS_SEND_REQUEST, and the kernel sends on send() and hands back
// TP_STATUS_AVAILABLE. Shared by the `tx_ring` transport and its conformance
// checks, which drive the frames one by one.
#pragma once
#include <linux/if_packet.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "drivers/udp_socket.h"

namespace zc {

struct TxRingConfig {
  int version = 2;           // TPACKET_V2 or TPACKET_V3
  size_t frame_size = 2048;  // multiple of TPACKET_ALIGNMENT (16)
  size_t frame_count = 256;  // rounded down to whole blocks
  size_t block_size = 0;     // 0: smallest page multiple holding one frame
  bool qdisc_bypass = false;
  bool packet_loss = false;
  bool tx_has_off = false;   // PACKET_TX_HAS_OFF: data at tp_mac instead of the fixed offset
  int64_t sndbuf = 0;        // SO_SNDBUFFORCE; 0 keeps the default
  int ifindex = 0;
  // V3 only: values the kernel must refuse for a TX ring (CONFORMANCE 17).
  unsigned v3_retire_tov = 0, v3_sizeof_priv = 0, v3_feature_word = 0;
};

class PacketTxRing {
 public:
  // Socket (protocol 0: it receives nothing), options, ring, mmap, bind to
  // cfg.ifindex. Throws EnvError with the kernel's reason, naming the step.
  explicit PacketTxRing(const TxRingConfig& cfg);
  PacketTxRing(PacketTxRing&&) noexcept;
  PacketTxRing& operator=(PacketTxRing&&) = delete;
  ~PacketTxRing();

  int fd() const { return fd_.get(); }
  size_t frame_count() const { return frame_count_; }
  size_t frame_size() const { return cfg_.frame_size; }
  size_t block_size() const { return block_size_; }
  int version() const { return cfg_.version; }
  // Where the kernel reads a frame's data without PACKET_TX_HAS_OFF:
  // TPACKET_ALIGN(sizeof(tpacketN_hdr)) (32 for V2, 48 for V3).
  size_t data_offset() const { return data_offset_; }
  // Largest frame the ring can carry: frame_size - data_offset.
  size_t max_frame_bytes() const { return cfg_.frame_size - data_offset_; }

  // Frames never straddle blocks: a block ends with a gap when its size is
  // not a multiple of the frame size (packet_lookup_frame).
  uint8_t* frame(size_t i) const {
    return base_ + (i / frames_per_block_) * block_size_ + (i % frames_per_block_) * cfg_.frame_size;
  }
  uint8_t* data(size_t i) const { return frame(i) + data_offset_; }
  uint32_t status(size_t i) const;       // acquire load of tp_status
  void set_status(size_t i, uint32_t s);  // release store
  // tp_len (and for V3 tp_next_offset = 0); with tx_has_off also tp_mac
  // (SOCK_RAW reads the frame there), an offset from the frame start.
  void set_length(size_t i, uint32_t len, uint32_t mac_offset = 0);

  // send(fd, NULL, 0, flags): the kick. Returns the result, errno kept.
  long kick(int flags);

 private:
  TxRingConfig cfg_;
  Fd fd_;
  uint8_t* base_ = nullptr;
  size_t map_bytes_ = 0;
  size_t frame_count_ = 0;
  size_t block_size_ = 0;
  size_t frames_per_block_ = 1;
  size_t data_offset_ = 0;
};

const char* tp_status_name(uint32_t status);

}  // namespace zc
