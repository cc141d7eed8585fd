#include "server/libevent_memory.h"

#include <event2/event.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

namespace sessiond {

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
namespace {

// Every pointer handed to libevent is preceded by a 16-byte header whose
// first byte says where it came from, so free and realloc need no lookup and
// any thread may free what another allocated.
constexpr size_t kHeader = 16;
constexpr size_t kSmall = 32;                   // payloads up to this size get a slot
constexpr size_t kSlot = kHeader + kSmall;      // 48 bytes, 16-byte aligned
constexpr size_t kBlockSlots = 1024;            // 48 KiB per block
enum : uint8_t { kFromMalloc = 0, kFromSlab = 1 };

struct FreeSlot {
  FreeSlot* next;
};

// Blocks are kept for the life of the process (they hold one slot per fd
// number ever used) and stay reachable from here, so leak checkers see no
// leak.
std::mutex g_blocks_mu;
std::vector<char*>* g_blocks = nullptr;

thread_local FreeSlot* t_free = nullptr;
thread_local char* t_block = nullptr;
thread_local size_t t_used = kBlockSlots;

char* NewSlot() {
  if (t_free) {
    FreeSlot* s = t_free;
    t_free = s->next;
    return reinterpret_cast<char*>(s);
  }
  if (t_used == kBlockSlots) {
    char* block = static_cast<char*>(aligned_alloc(16, kSlot * kBlockSlots));
    if (!block) return nullptr;
    {
      std::lock_guard<std::mutex> lock(g_blocks_mu);
      if (!g_blocks) g_blocks = new std::vector<char*>();
      g_blocks->push_back(block);
    }
    t_block = block;
    t_used = 0;
  }
  return t_block + kSlot * t_used++;
}

void* Allocate(size_t n) {
  char* base;
  if (n <= kSmall) {
    base = NewSlot();
    if (!base) return nullptr;
    base[0] = kFromSlab;
  } else {
    base = static_cast<char*>(malloc(n + kHeader));
    if (!base) return nullptr;
    base[0] = kFromMalloc;
  }
  return base + kHeader;
}

void Free(void* p) {
  if (!p) return;
  char* base = static_cast<char*>(p) - kHeader;
  if (base[0] == kFromSlab) {
    auto* s = reinterpret_cast<FreeSlot*>(base);
    s->next = t_free;
    t_free = s;
  } else {
    free(base);
  }
}

void* Reallocate(void* p, size_t n) {
  if (!p) return Allocate(n);
  char* base = static_cast<char*>(p) - kHeader;
  if (base[0] == kFromMalloc) {  // stays a malloc block, whatever the new size
    char* resized = static_cast<char*>(realloc(base, n + kHeader));
    return resized ? resized + kHeader : nullptr;
  }
  if (n <= kSmall) return p;  // a slot already holds kSmall bytes
  void* q = Allocate(n);
  if (!q) return nullptr;
  memcpy(q, p, kSmall);
  Free(p);
  return q;
}

}  // namespace

void InstallLibeventAllocator() { event_set_mem_functions(Allocate, Reallocate, Free); }
#else
void InstallLibeventAllocator() {}  // sanitizers keep seeing every allocation
#endif

}  // namespace sessiond
