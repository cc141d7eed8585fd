#include "session/upstream_signature.h"

#include <algorithm>
#include <vector>

namespace sessiond {

namespace {

constexpr char kLowerHex[] = "0123456789abcdef";
// A request carries a handful of X-Session-* headers (sessiond adds them;
// the client's are stripped); more than this many are sorted in a heap copy.
constexpr size_t kInlineHeaders = 16;

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// Bytewise order of lower-cased names.
bool NameLess(std::string_view a, std::string_view b) {
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = static_cast<unsigned char>(Lower(a[i]));
    const unsigned char y = static_cast<unsigned char>(Lower(b[i]));
    if (x != y) return x < y;
  }
  return a.size() < b.size();
}

void AppendDecimal(std::string* out, int64_t v) {
  char buf[24];
  size_t n = 0;
  const bool negative = v < 0;
  uint64_t u = negative ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  do {
    buf[n++] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u != 0);
  if (negative) out->push_back('-');
  while (n > 0) out->push_back(buf[--n]);
}

}  // namespace

Result<std::unique_ptr<UpstreamSigner>> UpstreamSigner::Create(std::string_view key) {
  if (key.empty()) return Status::Invalid("upstream signature key is empty");
  Result<crypto::HmacKey> k = crypto::HmacKey::Create(key);
  if (!k.ok()) return k.status();
  return std::unique_ptr<UpstreamSigner>(new UpstreamSigner(std::move(*k)));
}

void UpstreamSigner::AppendCanonical(std::string* out, int64_t t, std::string_view method,
                                     std::string_view target, const HeaderList& headers) {
  out->append("sessiond-signature-v1\n");
  AppendDecimal(out, t);
  out->push_back('\n');
  out->append(method);
  out->push_back('\n');
  out->append(target);
  out->push_back('\n');
  const Header* inline_fields[kInlineHeaders];
  std::vector<const Header*> heap;
  const Header** fields = inline_fields;
  size_t count = 0;
  for (const Header& h : headers.fields()) {
    if (h.id != HeaderId::kSessionAny || EqualsIgnoreCase(h.name, kHeaderSignature)) continue;
    if (count == kInlineHeaders && heap.empty()) heap.assign(inline_fields, inline_fields + count);
    if (!heap.empty()) {
      heap.push_back(&h);
      fields = heap.data();
    } else {
      inline_fields[count] = &h;
    }
    ++count;
  }
  // Insertion sort: stable, allocates nothing, and the list is a handful of
  // headers sessiond added itself (the client's were stripped).
  for (size_t i = 1; i < count; ++i) {
    const Header* h = fields[i];
    size_t j = i;
    for (; j > 0 && NameLess(h->name, fields[j - 1]->name); --j) fields[j] = fields[j - 1];
    fields[j] = h;
  }
  for (size_t i = 0; i < count; ++i) {
    for (char c : fields[i]->name) out->push_back(Lower(c));
    out->push_back(':');
    out->append(fields[i]->value);
    out->push_back('\n');
  }
}

bool UpstreamSigner::Sign(int64_t t, std::string_view method, std::string_view target, const HeaderList& headers,
                          std::string* scratch, std::string* value) const {
  scratch->clear();
  AppendCanonical(scratch, t, method, target, headers);
  crypto::Sha256Digest mac;
  if (!key_.Sign(*scratch, &mac)) return false;
  value->clear();
  value->append("t=");
  AppendDecimal(value, t);
  value->append(",v1=");
  for (unsigned char b : mac) {
    value->push_back(kLowerHex[b >> 4]);
    value->push_back(kLowerHex[b & 0xF]);
  }
  return true;
}

}  // namespace sessiond
