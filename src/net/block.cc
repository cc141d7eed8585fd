#include "net/block.h"

#include <cstdlib>
#include <new>

namespace sessiond {
namespace net {

static_assert(sizeof(Block) % alignof(std::max_align_t) == 0, "block data must stay aligned");

BlockPool::~BlockPool() {
  while (free_) {
    Block* b = free_;
    free_ = b->next_free;
    std::free(b);
  }
}

Block* BlockPool::Get(size_t min_capacity) {
  Block* b;
  if (min_capacity <= kBlockCapacity && free_) {
    b = free_;
    free_ = b->next_free;
    if (--free_count_ < free_low_) free_low_ = free_count_;
  } else {
    const size_t capacity = min_capacity <= kBlockCapacity ? kBlockCapacity : min_capacity;
    void* p = std::malloc(sizeof(Block) + capacity);
    if (!p) throw std::bad_alloc();
    b = static_cast<Block*>(p);
    b->pool = this;
    b->capacity = static_cast<uint32_t>(capacity);
    ++allocations_;
  }
  b->next_free = nullptr;
  b->refs = 1;
  b->fill = 0;
  ++live_;
  return b;
}

void BlockPool::Release(Block* b) {
  --live_;
  if (b->capacity != kBlockCapacity || free_count_ >= max_free_) {
    std::free(b);
    return;
  }
  b->next_free = free_;
  free_ = b;
  ++free_count_;
}

void BlockPool::set_max_free(size_t max_free) {
  max_free_ = max_free;
  while (free_count_ > max_free_) {
    Block* b = free_;
    free_ = b->next_free;
    --free_count_;
    std::free(b);
  }
  if (free_low_ > free_count_) free_low_ = free_count_;
}

void BlockPool::Trim() {
  // The free list is LIFO: the blocks below the low-water mark at its bottom
  // were not taken once since the last Trim.
  size_t excess = free_low_;
  // Walk to the block after the ones that were in use (the top of the list).
  size_t keep = free_count_ - excess;
  Block** link = &free_;
  for (size_t i = 0; i < keep; ++i) link = &(*link)->next_free;
  Block* b = *link;
  *link = nullptr;
  while (b) {
    Block* next = b->next_free;
    std::free(b);
    b = next;
  }
  free_count_ = keep;
  free_low_ = free_count_;
}

}  // namespace net
}  // namespace sessiond
