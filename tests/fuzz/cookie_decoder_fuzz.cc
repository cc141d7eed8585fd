// libFuzzer target: CookieCodec verification of arbitrary cookie values. See
// cookie_decoder_check.h for the input modes and what is checked.
//
// With SESSIOND_FUZZ_WRITE_SEEDS=DIR set, LLVMFuzzerInitialize writes the seed
// corpus (values produced by the codec itself, plus minting-mode inputs) into
// DIR and exits; see tests/fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cookie_decoder_check.h"

namespace {

using sessiond::CookieCodec;
using sessiond::SessionData;
using sessiond::StoreKind;
namespace fz = sessiond::fuzz;

bool WriteFile(const std::string& path, const std::string& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  return std::fclose(f) == 0 && ok;
}

std::string BigEndian64(uint64_t v) {
  std::string out;
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xFF));
  return out;
}

int WriteSeeds(const std::string& dir) {
  const fz::FuzzCodecs& c = fz::Codecs();
  auto old = CookieCodec::Create(fz::CodecConfig(StoreKind::kRedis, fz::kFuzzCookieName, fz::kFuzzFallback, ""));
  auto old_sealed =
      CookieCodec::Create(fz::CodecConfig(StoreKind::kCookie, fz::kFuzzCookieName, fz::kFuzzFallback, ""));
  if (!c.ok || !old.ok() || !old_sealed.ok()) return 1;
  const std::string id(CookieCodec::kIdSize, 'i');
  const SessionData data = {{"user", "\"ada\""}, {"cart", "[1,2]"}, {"caf\xc3\xa9", "{\"n\":null}"}};
  const int64_t live = 2000000000, dead = 1600000000;
  struct Seed {
    const char* name;
    std::string bytes;
  };
  const Seed seeds[] = {
      {"token_valid", *c.token->EncodeToken(id, live)},
      {"token_expired", *c.token->EncodeToken(id, dead)},
      {"token_fallback_key", *(*old)->EncodeToken(id, live)},
      {"sealed_valid", *c.sealed->Seal(id, live, data)},
      {"sealed_empty", *c.sealed->Seal(id, live, SessionData())},
      {"sealed_expired", *c.sealed->Seal(id, dead, data)},
      {"sealed_fallback_key", *(*old_sealed)->Seal(id, live, data)},
      {"mint_token", std::string("T\0", 2) + id + "2000000000"},
      {"mint_token_fallback_leading_zero", std::string("T\1", 2) + id + "02000000000"},
      {"mint_sealed", std::string("R\0", 2) + BigEndian64(live) + id + "{\"a\":\"b\",\"k\\u00e9y\":[1,{\"x\":2}]}"},
      {"mint_sealed_bad_json", std::string("R\1", 2) + BigEndian64(live) + id + "{\"a\":}"},
      {"mint_sealed_zero_expiry", std::string("R\0", 2) + BigEndian64(0) + id + "{}"},
      {"garbage_prefixes", "1.2."},
  };
  for (const Seed& s : seeds) {
    if (!WriteFile(dir + "/" + s.name, s.bytes)) return 1;
  }
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("SESSIOND_FUZZ_WRITE_SEEDS")) std::exit(WriteSeeds(dir));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fz::CheckCookieInput(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
