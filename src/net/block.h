// Blocks: the memory that connection buffers are made of.
//
// A Block is a fixed-size, reference-counted piece of memory with a header in
// front of its bytes. Buffers hold blocks through slices (a block and a byte
// range in it); moving body bytes from one buffer to another moves or shares
// the reference, never the bytes (docs/ARCHITECTURE.md, "Backpressure").
//
// Who may write: a block has one writer at a time, the buffer that took it
// from the pool to append into. The writer appends only at the fill mark,
// beyond every byte already handed out, so bytes that any slice or BlockRef
// covers never change. That is what lets an exchange pin the bytes of a
// parsed head (a BlockRef) while the same block keeps receiving the body.
//
// BlockPool hands out blocks for one event-loop thread: no locks. Released
// blocks of the standard size go to a bounded free list (LIFO, so the warmest
// block is reused first), so a loop in steady state allocates nothing. The
// owner sizes the bound to the load (set_max_free, e.g. from the number of
// connections), so when a burst of connections ends its blocks go back to
// malloc at once, in time for the process's heap trim; Trim() (from the
// loop's once-a-second tick) also frees the blocks that sat unused in the
// free list for a whole interval.
// A block larger than the standard size (only for a head that needs more) is
// freed as soon as it is released.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sessiond {
namespace net {

class BlockPool;

struct Block {
  BlockPool* pool;
  Block* next_free;   // the pool's free list link while the block is free
  uint32_t refs;
  uint32_t fill;      // bytes written so far, from data()
  uint32_t capacity;  // bytes at data()
  uint32_t reserved_;

  char* data() { return reinterpret_cast<char*>(this + 1); }
  const char* data() const { return reinterpret_cast<const char*>(this + 1); }
  uint32_t room() const { return capacity - fill; }
};

// One reference to a block, released on destruction (for pinning bytes).
class BlockRef {
 public:
  BlockRef() = default;
  // Adopts one reference the caller already holds.
  explicit BlockRef(Block* adopted) : block_(adopted) {}
  ~BlockRef() { Reset(); }
  BlockRef(BlockRef&& other) noexcept : block_(other.block_) { other.block_ = nullptr; }
  BlockRef& operator=(BlockRef&& other) noexcept;
  BlockRef(const BlockRef&) = delete;
  BlockRef& operator=(const BlockRef&) = delete;

  void Reset();
  Block* get() const { return block_; }
  explicit operator bool() const { return block_ != nullptr; }

 private:
  Block* block_ = nullptr;
};

class BlockPool {
 public:
  // 16 KiB per standard block, header included: one read of a typical head
  // or body piece, and the same size class malloc reuses.
  static constexpr size_t kBlockBytes = 16 * 1024;
  static constexpr size_t kBlockCapacity = kBlockBytes - sizeof(Block);

  // At most `max_free` released standard blocks are kept for reuse.
  explicit BlockPool(size_t max_free = 128) : max_free_(max_free) {}
  // Changes the bound; blocks over it are freed now.
  void set_max_free(size_t max_free);
  size_t max_free() const { return max_free_; }
  // Frees the free list. Every block must have been released by then (the
  // pool outlives every buffer of its loop).
  ~BlockPool();
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  // A block with at least `min_capacity` bytes (a standard block when that
  // fits), one reference held by the caller, fill 0. Never null: an
  // allocation failure ends the process, as std::bad_alloc would.
  Block* Get(size_t min_capacity = 0);

  static void Ref(Block* b) { ++b->refs; }
  // Drops one reference; the last one returns the block to its pool.
  static void Unref(Block* b) {
    if (--b->refs == 0) b->pool->Release(b);
  }

  // Frees the blocks that stayed in the free list since the previous Trim.
  void Trim();

  size_t free_count() const { return free_count_; }
  // Blocks handed out and not yet released (both sizes).
  size_t live_count() const { return live_; }
  // Blocks obtained from malloc since the pool was made.
  uint64_t allocations() const { return allocations_; }

 private:
  void Release(Block* b);

  size_t max_free_;
  Block* free_ = nullptr;
  size_t free_count_ = 0;
  size_t free_low_ = 0;  // fewest free blocks since the last Trim
  size_t live_ = 0;
  uint64_t allocations_ = 0;
};

inline BlockRef& BlockRef::operator=(BlockRef&& other) noexcept {
  if (this != &other) {
    Reset();
    block_ = other.block_;
    other.block_ = nullptr;
  }
  return *this;
}

inline void BlockRef::Reset() {
  if (block_) {
    BlockPool::Unref(block_);
    block_ = nullptr;
  }
}

}  // namespace net
}  // namespace sessiond
