// Blocks and buffers (src/net/block.h, src/net/buffer.h): pool bounds and
// reuse, reference counts across moves and pins, contiguity, gathering.
#include "net/buffer.h"

#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include "new_counter.h"

using sessiond::net::Block;
using sessiond::net::BlockPool;
using sessiond::net::BlockRef;
using sessiond::net::Buffer;

namespace {

std::string Contents(const Buffer& b) {
  std::string s;
  for (size_t i = 0; i < b.slice_count(); ++i) s.append(b.slice(i));
  return s;
}

std::string Pattern(size_t n, size_t seed = 0) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + seed) % 26);
  return s;
}

}  // namespace

TEST_CASE("BlockPool reuses released blocks and bounds its free list") {
  BlockPool pool(2);
  Block* a = pool.Get();
  Block* b = pool.Get();
  Block* c = pool.Get();
  CHECK(pool.allocations() == 3);
  CHECK(pool.live_count() == 3);
  CHECK(a->capacity == BlockPool::kBlockCapacity);
  BlockPool::Unref(a);
  BlockPool::Unref(b);
  BlockPool::Unref(c);  // over the bound of 2: freed
  CHECK(pool.free_count() == 2);
  CHECK(pool.live_count() == 0);
  Block* d = pool.Get();
  CHECK(d == b);  // LIFO: the warmest block first
  CHECK(d->refs == 1);
  CHECK(d->fill == 0);
  CHECK(pool.allocations() == 3);  // no malloc
  BlockPool::Unref(d);
}

TEST_CASE("BlockPool gives a large block only when asked for more than the standard size, and never keeps it") {
  BlockPool pool(8);
  Block* big = pool.Get(BlockPool::kBlockCapacity + 1);
  CHECK(big->capacity == BlockPool::kBlockCapacity + 1);
  big->data()[big->capacity - 1] = 'x';  // all of it is usable (ASan checks)
  BlockPool::Unref(big);
  CHECK(pool.free_count() == 0);
  CHECK(pool.live_count() == 0);
}

TEST_CASE("BlockPool::Trim frees the blocks no one took since the previous Trim") {
  BlockPool pool(16);
  Block* blocks[6];
  for (Block*& b : blocks) b = pool.Get();
  for (Block* b : blocks) BlockPool::Unref(b);
  CHECK(pool.free_count() == 6);
  pool.Trim();   // starts the interval; the 6 were in use during the last one
  CHECK(pool.free_count() == 6);
  Block* x = pool.Get();
  Block* y = pool.Get();
  BlockPool::Unref(x);
  BlockPool::Unref(y);
  pool.Trim();  // 4 never left the list during this interval
  CHECK(pool.free_count() == 2);
  pool.Trim();  // the 2 sat unused for a whole interval
  CHECK(pool.free_count() == 0);
}

TEST_CASE("BlockPool::set_max_free frees what is over the new bound at once") {
  BlockPool pool(8);
  Block* blocks[6];
  for (Block*& b : blocks) b = pool.Get();
  for (Block* b : blocks) BlockPool::Unref(b);
  CHECK(pool.free_count() == 6);
  pool.set_max_free(2);  // e.g. a burst of connections ended
  CHECK(pool.free_count() == 2);
  Block* again[3];
  for (Block*& b : again) b = pool.Get();
  CHECK(pool.allocations() == 7);  // two reused, one new
  for (Block* b : again) BlockPool::Unref(b);
  CHECK(pool.free_count() == 2);  // the new bound holds for releases too
}

TEST_CASE("BlockRef keeps a block alive and releases it once") {
  BlockPool pool;
  Block* b = pool.Get();
  BlockPool::Ref(b);
  {
    BlockRef r(b);
    BlockRef moved(std::move(r));
    CHECK(!r);
    CHECK(moved.get() == b);
    CHECK(b->refs == 2);
  }
  CHECK(b->refs == 1);
  BlockPool::Unref(b);
  CHECK(pool.live_count() == 0);
}

TEST_CASE("Buffer append, consume and release: an emptied buffer holds no block") {
  BlockPool pool;
  Buffer buf(&pool);
  CHECK(!buf.holds_memory());
  buf.Append("hello ");
  buf.Append("world");
  CHECK(buf.size() == 11);
  CHECK(buf.slice_count() == 1);  // appends into one block merge
  CHECK(Contents(buf) == "hello world");
  buf.Consume(6);
  CHECK(Contents(buf) == "world");
  buf.Consume(5);
  CHECK(buf.empty());
  CHECK(!buf.holds_memory());
  CHECK(pool.live_count() == 0);
}

TEST_CASE("Buffer append larger than a block spills into a large block, bytes intact") {
  BlockPool pool;
  Buffer buf(&pool);
  const std::string big = Pattern(3 * BlockPool::kBlockCapacity);
  buf.Append("x");
  buf.Append(big);
  CHECK(buf.size() == big.size() + 1);
  CHECK(Contents(buf) == "x" + big);
  buf.Clear();
  CHECK(pool.live_count() == 0);
}

TEST_CASE("Buffer reserve/commit writes in place and commits only what was used") {
  BlockPool pool;
  Buffer buf(&pool);
  char* p = buf.Reserve(100);
  memcpy(p, "HTTP/1.1 200 OK\r\n", 17);
  buf.Commit(17);
  CHECK(buf.size() == 17);
  CHECK(Contents(buf) == "HTTP/1.1 200 OK\r\n");
  buf.Reserve(10);
  buf.Commit(0);  // nothing
  CHECK(buf.size() == 17);
}

TEST_CASE("Buffer::MoveTo moves whole slices and shares a split one, copying nothing") {
  BlockPool pool;
  Buffer src(&pool);
  Buffer dst(&pool);
  src.Append("0123456789");
  const char* where = src.front().data();
  src.MoveTo(dst, 4);
  CHECK(Contents(dst) == "0123");
  CHECK(Contents(src) == "456789");
  CHECK(dst.front().data() == where);           // the same bytes, not a copy
  CHECK(src.front().data() == where + 4);
  CHECK(pool.live_count() == 1);                 // one block, shared
  src.MoveTo(dst, 6);
  CHECK(src.empty());
  CHECK(!src.holds_memory());
  CHECK(Contents(dst) == "0123456789");
  CHECK(dst.slice_count() == 1);                 // adjacent ranges of one block merge
  dst.Clear();
  CHECK(pool.live_count() == 0);
}

TEST_CASE("Buffer::MoveTo of a split slice never lets the receiver write over the sender's bytes") {
  BlockPool pool;
  Buffer src(&pool);
  Buffer dst(&pool);
  src.Append("abcdef");
  src.MoveTo(dst, 3);
  dst.Append("XYZ");  // dst does not own src's block: a new block
  src.Append("ghi");  // src still appends after its own bytes
  CHECK(Contents(src) == "defghi");
  CHECK(Contents(dst) == "abcXYZ");
}

TEST_CASE("Buffer::Contiguous copies only when the bytes straddle blocks, and reads then extend the copy") {
  BlockPool pool;
  Buffer buf(&pool);
  buf.Append("GET / HTTP/1.1\r\n");
  const char* p = buf.Contiguous(buf.size());
  CHECK(p == buf.front().data());  // already one piece: no copy
  CHECK(pool.allocations() == 1);

  Buffer two(&pool);
  two.Append("GET / HTTP/1.1\r\n");
  two.Reserve(BlockPool::kBlockCapacity);  // force a second block
  memcpy(two.Reserve(BlockPool::kBlockCapacity), "Host: x\r\n", 9);
  two.Commit(9);
  CHECK(two.slice_count() == 2);
  const char* joined = two.Contiguous(two.size());
  CHECK(std::string(joined, two.size()) == "GET / HTTP/1.1\r\nHost: x\r\n");
  CHECK(two.slice_count() == 1);
  // The next read lands right after the copy.
  size_t room = 0;
  char* r = two.ReadRoom(&room);
  CHECK(r == joined + two.size());
  memcpy(r, "\r\n", 2);
  two.Commit(2);
  CHECK(two.slice_count() == 1);
  CHECK(std::string(two.Contiguous(two.size()), two.size()) == "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
}

TEST_CASE("Buffer::Contiguous of a prefix keeps the rest in order") {
  BlockPool pool;
  Buffer buf(&pool);
  const std::string a = Pattern(BlockPool::kBlockCapacity - 5, 1);
  buf.Append(a);
  buf.Append(Pattern(100, 2));  // straddles: 5 bytes fit, 95 go to a new block
  const std::string all = Contents(buf);
  CHECK(all.size() == a.size() + 100);
  const char* p = buf.Contiguous(a.size() + 50);
  CHECK(std::string(p, a.size() + 50) == all.substr(0, a.size() + 50));
  CHECK(Contents(buf) == all);
  buf.Append("tail");
  CHECK(Contents(buf) == all + "tail");
}

TEST_CASE("Buffer::Contiguous never writes over a pinned block") {
  BlockPool pool;
  Buffer buf(&pool);
  buf.Append("HEAD1\r\n\r\nPARTIAL");
  BlockRef pin = buf.PinFront();
  const char* head = buf.front().data();
  buf.Consume(9);
  // The rest of the next head arrives in a new block; joining copies.
  buf.Reserve(BlockPool::kBlockCapacity);
  memcpy(buf.Reserve(BlockPool::kBlockCapacity), "-REST", 5);
  buf.Commit(5);
  buf.Contiguous(buf.size());
  CHECK(std::string(head, 9) == "HEAD1\r\n\r\n");
  CHECK(Contents(buf) == "PARTIAL-REST");
  buf.Clear();
  CHECK(pool.live_count() == 1);  // the pinned block
  pin.Reset();
  CHECK(pool.live_count() == 0);
}

TEST_CASE("Buffer pinned bytes survive consumption and later reads into the same block") {
  BlockPool pool;
  Buffer buf(&pool);
  buf.Append("HEAD\r\n\r\nbody");
  BlockRef pin = buf.PinFront();
  const char* head = buf.front().data();
  buf.Consume(8);
  size_t room = 0;
  char* r = buf.ReadRoom(&room);
  memset(r, 'Z', room);
  buf.Commit(room);
  buf.Consume(buf.size());
  CHECK(!buf.holds_memory());
  CHECK(std::string(head, 8) == "HEAD\r\n\r\n");
  CHECK(pool.live_count() == 1);
}

TEST_CASE("Buffer::Gather covers the first slices in order, within the limits") {
  BlockPool pool;
  Buffer src(&pool);
  Buffer buf(&pool);
  for (int i = 0; i < 5; ++i) {
    src.Append(std::string(10, static_cast<char>('a' + i)));
    src.MoveTo(buf, 10);
    buf.Append("-");  // own block, so slices alternate
  }
  CHECK(buf.slice_count() == 10);
  iovec iov[4];
  int n = buf.Gather(iov, 4);
  CHECK(n == 4);
  CHECK(std::string(static_cast<char*>(iov[0].iov_base), iov[0].iov_len) == "aaaaaaaaaa");
  CHECK(std::string(static_cast<char*>(iov[1].iov_base), iov[1].iov_len) == "-");
  n = buf.Gather(iov, 4, 12);
  CHECK(n == 3);
  CHECK(iov[2].iov_len == 1);
  CHECK(std::string(static_cast<char*>(iov[2].iov_base), 1) == "b");
}

TEST_CASE("Buffer stays correct and small while bytes flow through it in many slices") {
  BlockPool pool;
  Buffer src(&pool);
  Buffer buf(&pool);
  std::string src_model, buf_model;
  for (int i = 0; i < 10000; ++i) {
    const std::string piece = Pattern(10, static_cast<size_t>(i));
    src.Append(piece);
    src_model += piece;
    src.MoveTo(buf, 3);  // split: a shared slice each time
    buf_model += src_model.substr(0, 3);
    src_model.erase(0, 3);
    buf.Append("x");     // and one of buf's own
    buf_model += "x";
    if (buf.size() > 8) {
      buf.Consume(4);
      buf_model.erase(0, 4);
    }
  }
  CHECK(Contents(buf) == buf_model);
  CHECK(Contents(src) == src_model);
  CHECK(buf.slice_count() < 16);
  buf.Clear();
  src.Clear();
  CHECK(pool.live_count() == 0);
}

TEST_CASE("Buffer: a new buffer holding a head and a body slice allocates nothing but blocks") {
  BlockPool pool;
  Buffer body(&pool);
  body.Append(Pattern(100));
  Block* warm = pool.Get();  // one spare block in the pool, for the head
  BlockPool::Unref(warm);
  const std::string expected = "HTTP/1.1 200 OK\r\n\r\n" + Pattern(100);
  Buffer out(&pool);
  long allocations = 0;
  {
    sessiond::testing::NewCounter news;
    out.Append("HTTP/1.1 200 OK\r\n\r\n");
    body.MoveTo(out, body.size());
    allocations = news.count();
  }
  CHECK(allocations == 0);
  CHECK(out.slice_count() == 2);
  CHECK(Contents(out) == expected);
}

TEST_CASE("Buffer: slices past the inline room spill to the heap in order, Contiguous included") {
  BlockPool pool;
  Buffer src(&pool);
  Buffer buf(&pool);
  std::string model;
  for (int i = 0; i < 9; ++i) {  // alternating blocks: 18 slices
    const std::string piece = Pattern(5, static_cast<size_t>(i));
    src.Append(piece);
    src.MoveTo(buf, 5);
    buf.Append("|");
    model += piece + "|";
  }
  CHECK(buf.slice_count() == 18);
  CHECK(Contents(buf) == model);
  buf.Consume(3);  // a consumed front, then a copy put back in front of the rest
  model.erase(0, 3);
  CHECK(std::string(buf.Contiguous(10), 10) == model.substr(0, 10));
  CHECK(Contents(buf) == model);
  buf.Clear();
  src.Clear();
  CHECK(pool.live_count() == 0);
}
