#include "net/buffer.h"

#include <algorithm>
#include <cstring>

namespace sessiond {
namespace net {

void Buffer::SliceArray::Grow() {
  const uint32_t capacity = capacity_ * 2;
  Slice* data = new Slice[capacity];
  std::copy(data_, data_ + size_, data);
  if (data_ != inline_) delete[] data_;
  data_ = data;
  capacity_ = capacity;
}

void Buffer::SliceArray::erase_front(size_t n) {
  std::copy(data_ + n, data_ + size_, data_);
  size_ -= static_cast<uint32_t>(n);
}

void Buffer::SliceArray::push_front(const Slice& s) {
  if (size_ == capacity_) Grow();
  std::copy_backward(data_, data_ + size_, data_ + size_ + 1);
  data_[0] = s;
  ++size_;
}

void Buffer::PushSlice(Block* block, uint32_t begin, uint32_t end) {
  if (slice_count() > 0) {
    Slice& tail = back();
    if (tail.block == block && tail.end == begin) {  // continues the tail: one slice
      tail.end = end;
      BlockPool::Unref(block);
      return;
    }
  }
  if (first_ > 0 && slices_.size() == slices_.capacity()) {
    // Reuse the room of the consumed front before the vector grows.
    slices_.erase_front(first_);
    first_ = 0;
  }
  slices_.push_back(Slice{block, begin, end});
}

void Buffer::PopFront() {
  BlockPool::Unref(slices_[first_].block);
  if (++first_ == slices_.size()) {
    slices_.clear();
    first_ = 0;
  }
}

void Buffer::NewWriteBlock(size_t min_capacity) {
  ReleaseWriteBlock();
  write_ = pool_->Get(min_capacity);
}

void Buffer::ReleaseWriteBlock() {
  if (write_) {
    BlockPool::Unref(write_);
    write_ = nullptr;
  }
}

void Buffer::AfterShrink() {
  if (size_ == 0) ReleaseWriteBlock();
}

void Buffer::Append(const void* data, size_t n) {
  if (n == 0) return;
  char* dst = Reserve(n);
  memcpy(dst, data, n);
  Commit(n);
}

char* Buffer::Reserve(size_t n) {
  if (!write_ || write_->room() < n) NewWriteBlock(n);
  return write_->data() + write_->fill;
}

void Buffer::Commit(size_t n) {
  if (n == 0) return;
  const uint32_t begin = write_->fill;
  write_->fill += static_cast<uint32_t>(n);
  BlockPool::Ref(write_);
  PushSlice(write_, begin, write_->fill);
  size_ += n;
}

char* Buffer::ReadRoom(size_t* room) {
  if (!write_ || write_->room() < kMinReadRoom) NewWriteBlock(0);
  *room = write_->room();
  return write_->data() + write_->fill;
}

void Buffer::ReleaseIfEmpty() { AfterShrink(); }

const char* Buffer::Contiguous(size_t n) {
  if (n == 0) return nullptr;
  const Slice& s = slices_[first_];
  if (s.end - s.begin >= n) return s.block->data() + s.begin;
  // Room to grow: a head that keeps arriving then extends this block instead
  // of straddling again (a larger block doubles, so copies stay O(n) in all).
  Block* b = pool_->Get(n <= BlockPool::kBlockCapacity / 2 ? 0 : 2 * n);
  size_t copied = 0;
  while (copied < n) {
    Slice& f = slices_[first_];
    const size_t take = std::min<size_t>(f.end - f.begin, n - copied);
    memcpy(b->data() + copied, f.block->data() + f.begin, take);
    copied += take;
    f.begin += static_cast<uint32_t>(take);
    if (f.begin == f.end) PopFront();
  }
  b->fill = static_cast<uint32_t>(n);
  // The copy goes in front of what is left.
  BlockPool::Ref(b);
  const Slice head{b, 0, static_cast<uint32_t>(n)};
  if (first_ > 0) {
    slices_[--first_] = head;
  } else {
    slices_.push_front(head);
  }
  ReleaseWriteBlock();
  write_ = b;  // the reference from Get
  return b->data();
}

void Buffer::Consume(size_t n) {
  size_ -= n;
  while (n > 0) {
    Slice& f = slices_[first_];
    const size_t len = f.end - f.begin;
    if (n < len) {
      f.begin += static_cast<uint32_t>(n);
      break;
    }
    n -= len;
    PopFront();
  }
  AfterShrink();
}

void Buffer::MoveTo(Buffer& dst, size_t n) {
  size_ -= n;
  dst.size_ += n;
  while (n > 0) {
    Slice& f = slices_[first_];
    const size_t len = f.end - f.begin;
    if (n < len) {  // split: both buffers reference the block
      BlockPool::Ref(f.block);
      dst.PushSlice(f.block, f.begin, f.begin + static_cast<uint32_t>(n));
      f.begin += static_cast<uint32_t>(n);
      break;
    }
    n -= len;
    // The whole slice and its reference change hands.
    Slice whole = f;
    if (++first_ == slices_.size()) {
      slices_.clear();
      first_ = 0;
    }
    dst.PushSlice(whole.block, whole.begin, whole.end);
  }
  AfterShrink();
}

BlockRef Buffer::PinFront() const {
  Block* b = slices_[first_].block;
  BlockPool::Ref(b);
  return BlockRef(b);
}

int Buffer::Gather(iovec* iov, int max, size_t limit) const {
  int n = 0;
  for (size_t i = first_; i < slices_.size() && n < max && limit > 0; ++i) {
    const Slice& s = slices_[i];
    const size_t len = std::min<size_t>(s.end - s.begin, limit);
    iov[n].iov_base = const_cast<char*>(s.block->data() + s.begin);
    iov[n].iov_len = len;
    limit -= len;
    ++n;
  }
  return n;
}

void Buffer::Clear() {
  for (size_t i = first_; i < slices_.size(); ++i) BlockPool::Unref(slices_[i].block);
  slices_.clear();
  first_ = 0;
  size_ = 0;
  ReleaseWriteBlock();
}

}  // namespace net
}  // namespace sessiond
