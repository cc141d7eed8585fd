// Buffer: the bytes waiting on one side of a connection, as a chain of slices
// of reference-counted blocks (net/block.h).
//
// - Reading appends in place: ReadRoom() is the free room of the buffer's own
//   write block, the caller reads into it and Commit()s what arrived.
// - Writing gathers: Gather() fills an iovec array for one writev().
// - Body bytes move between buffers with MoveTo(), which hands over slice
//   references (sharing a block when a slice is split) and copies nothing.
// - Small pieces (heads, chunk framing) are copied in with Append(), or
//   written in place after Reserve().
// - A parser that needs the first n bytes in one piece gets them from
//   Contiguous(n), which copies only when they straddle blocks.
//
// An empty buffer holds no block at all: the last Consume() or MoveTo() that
// empties it releases its write block too, so an idle connection costs no
// buffer memory. The buffer is the only writer of its write block (see
// net/block.h), so bytes once committed never change, wherever they moved.
// Not thread-safe: a buffer lives on its loop's thread.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <string_view>

#include "net/block.h"

namespace sessiond {
namespace net {

class Buffer {
 public:
  // Reading leaves at least this much room, or starts a new block: a read
  // into a nearly full block would cost a system call for a few bytes.
  static constexpr size_t kMinReadRoom = 2048;

  explicit Buffer(BlockPool* pool) : pool_(pool) {}
  ~Buffer() { Clear(); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  BlockPool* pool() const { return pool_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // The slices, front first (for tests and for scanning without copying).
  size_t slice_count() const { return slices_.size() - first_; }
  std::string_view slice(size_t i) const {
    const Slice& s = slices_[first_ + i];
    return std::string_view(s.block->data() + s.begin, s.end - s.begin);
  }
  // The first slice (empty when the buffer is).
  std::string_view front() const { return empty() ? std::string_view() : slice(0); }
  // True when the buffer holds a block (a write block or any slice).
  bool holds_memory() const { return write_ != nullptr || slice_count() > 0; }

  // Copies `n` bytes to the end.
  void Append(const void* data, size_t n);
  void Append(std::string_view s) { Append(s.data(), s.size()); }

  // At least `n` contiguous writable bytes at the end of the buffer, valid
  // until the next call that changes the buffer; Commit(k) then appends the
  // first k (<= n) of them. A Reserve without a Commit appends nothing.
  char* Reserve(size_t n);
  void Commit(size_t n);

  // The room a read() should fill (kMinReadRoom or more), like Reserve.
  char* ReadRoom(size_t* room);
  // Releases the write block if the buffer is empty (after a read that
  // brought nothing, so that an idle buffer holds no memory).
  void ReleaseIfEmpty();

  // The first `n` bytes (n <= size()) in one piece. Copies them into a new
  // block (which becomes the write block, so later reads extend the same
  // piece) only when they are not already contiguous. Bytes never move in
  // place: a pinned block is never written over.
  const char* Contiguous(size_t n);

  // Drops `n` bytes (n <= size()) from the front.
  void Consume(size_t n);
  // Moves the first `n` bytes (n <= size()) to the end of `dst` without
  // copying them.
  void MoveTo(Buffer& dst, size_t n);
  // A reference to the block that holds the first byte (the buffer must not
  // be empty): keeps those bytes valid after they are consumed.
  BlockRef PinFront() const;

  // Fills up to `max` iovecs with the first bytes of the buffer, at most
  // `limit` bytes in all; returns how many were filled.
  int Gather(iovec* iov, int max, size_t limit = SIZE_MAX) const;

  // Drops every byte and releases every block.
  void Clear();

 private:
  struct Slice {
    Block* block;  // one reference per slice
    uint32_t begin;
    uint32_t end;
  };

  // The slice array: room for kInlineSlices inside the buffer, so the usual
  // buffer (a head, or a head and one body slice) allocates nothing when its
  // connection is new; beyond that it moves to the heap, whose capacity is
  // kept until the buffer goes.
  class SliceArray {
   public:
    static constexpr uint32_t kInlineSlices = 2;

    SliceArray() = default;
    ~SliceArray() {
      if (data_ != inline_) delete[] data_;
    }
    SliceArray(const SliceArray&) = delete;
    SliceArray& operator=(const SliceArray&) = delete;

    size_t size() const { return size_; }
    size_t capacity() const { return capacity_; }
    Slice& operator[](size_t i) { return data_[i]; }
    const Slice& operator[](size_t i) const { return data_[i]; }
    Slice& back() { return data_[size_ - 1]; }
    void clear() { size_ = 0; }
    void push_back(const Slice& s) {
      if (size_ == capacity_) Grow();
      data_[size_++] = s;
    }
    // Drops the first n slices.
    void erase_front(size_t n);
    // Puts `s` before the first slice.
    void push_front(const Slice& s);

   private:
    void Grow();

    Slice* data_ = inline_;
    uint32_t size_ = 0;
    uint32_t capacity_ = kInlineSlices;
    Slice inline_[kInlineSlices];
  };

  Slice& back() { return slices_.back(); }
  void PushSlice(Block* block, uint32_t begin, uint32_t end);  // takes one reference
  void PopFront();
  void NewWriteBlock(size_t min_capacity);
  void ReleaseWriteBlock();
  void AfterShrink();

  BlockPool* pool_;
  SliceArray slices_;  // [first_, size) are live; capacity is kept
  size_t first_ = 0;
  size_t size_ = 0;
  Block* write_ = nullptr;  // the block this buffer appends to (one reference)
};

}  // namespace net
}  // namespace sessiond
