// ConfigReader and Section: typed, validated access to the YAML tree of a
// config file, with ${NAME} expansion and errors positioned as
// "FILE:LINE:COL: message".
//
// The reader keeps the FIRST error and turns every later call into a no-op, so
// the schema in config.cc reads as a flat list of keys instead of a ladder of
// early returns; the caller checks failed() once at the end. A Section is one
// YAML mapping: opening it rejects unknown and duplicate keys, so every key the
// schema does not ask for is an error by construction.
//
// Error messages name the key path ("session.session_cookie_samesite") and may
// quote the offending value, but never a value that came from the environment
// (it might be a secret); the schema never quotes the value of a secret key.
// Internal to src/config/.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "base/status.h"

namespace sessiond {
namespace config_internal {

// One scalar value after ${NAME} expansion.
struct ScalarValue {
  std::string text;
  std::string raw;        // as written, before expansion: safe to quote
  YAML::Mark mark;        // the value's position (the key's, when the value is empty)
  bool null = false;      // ~, null, or nothing after the colon
  bool expanded = false;  // text contains environment values: never quote it
};

// A spelling and the enum value it stands for.
template <class E>
using EnumNames = std::initializer_list<std::pair<const char*, E>>;

class ConfigReader;

class Section {
 public:
  // The dotted name of `key` inside this section, for messages.
  std::string PathOf(const std::string& key) const;
  // Where this mapping starts; used for "X is required" errors.
  const YAML::Mark& mark() const { return mark_; }
  bool Has(const char* key) const { return Find(key) != nullptr; }
  YAML::Mark KeyMark(const char* key) const;
  YAML::Mark ValueMark(const char* key) const;

  // The value of `key` as one scalar; nullopt when absent or on error (a
  // mapping or list where a single value belongs is an error).
  std::optional<ScalarValue> Scalar(const char* key);
  // As Scalar, but null is an error too.
  std::optional<ScalarValue> Required(const char* key);

  // Each of these leaves *out untouched when the key is absent, and records
  // an error for a null or malformed value.
  void Bool(const char* key, bool* out);
  void UInt(const char* key, uint64_t min, uint64_t max, uint64_t* out);
  // Rejects zero: every duration key of sessiond is a timeout or a lifetime.
  void PositiveDuration(const char* key, Millis* out);
  void String(const char* key, bool allow_empty, std::string* out);
  template <class E>
  void Enum(const char* key, EnumNames<E> names, bool ignore_case, E* out);

  // A list of strings; null counts as an empty list. Each element is
  // expanded; nullopt when absent or on error.
  std::optional<std::vector<ScalarValue>> StringList(const char* key);

  // The nested mapping under `key`, restricted to `keys`. Absent or null
  // gives an empty section (every default applies).
  Section Child(const char* key, std::initializer_list<const char*> keys);

  void Fail(const YAML::Mark& mark, const std::string& message);
  bool failed() const;

  // " (got "x")" for messages: printable ASCII, shortened; "" when the value
  // came from the environment and so must not be echoed.
  static std::string Got(const ScalarValue& v);

 private:
  friend class ConfigReader;
  struct Entry {
    std::string name;
    YAML::Node key;
    YAML::Node value;
  };
  Section(ConfigReader* reader, std::string path, const YAML::Mark& mark)
      : reader_(reader), path_(std::move(path)), mark_(mark) {}
  const Entry* Find(const char* key) const;
  bool MatchEnum(const std::string& text, const char* name, bool ignore_case) const;

  ConfigReader* reader_;
  std::string path_;  // "" for the top level
  YAML::Mark mark_;
  std::vector<Entry> entries_;
};

class ConfigReader {
 public:
  ConfigReader(std::string filename, const EnvLookup& env)
      : filename_(std::move(filename)), env_(env) {}
  ConfigReader(const ConfigReader&) = delete;
  ConfigReader& operator=(const ConfigReader&) = delete;

  // The top-level mapping; `doc` must be a mapping (checked by the caller).
  Section Root(const YAML::Node& doc, std::initializer_list<const char*> keys);

  // Records an error unless one is already recorded.
  void Fail(const YAML::Mark& mark, const std::string& message);
  bool failed() const { return !status_.ok(); }
  const Status& status() const { return status_; }

  // "FILE:LINE:COL: message", or "FILE: message" for a null mark.
  std::string Locate(const YAML::Mark& mark, const std::string& message) const;

 private:
  friend class Section;
  Section Open(const YAML::Node& node, const YAML::Mark& mark, std::string path,
               std::initializer_list<const char*> keys);
  // Replaces each ${NAME}; records an error and returns nullopt for an unset
  // variable or a malformed reference.
  std::optional<std::string> Expand(const std::string& raw, const YAML::Mark& mark,
                                    const std::string& path, bool* expanded);

  std::string filename_;
  const EnvLookup& env_;
  Status status_;
};

// Template definitions.

template <class E>
void Section::Enum(const char* key, EnumNames<E> names, bool ignore_case, E* out) {
  std::optional<ScalarValue> v = Required(key);
  if (!v) return;
  std::string choices;
  for (const auto& [name, value] : names) {
    if (MatchEnum(v->text, name, ignore_case)) {
      *out = value;
      return;
    }
    if (!choices.empty()) choices += " | ";
    choices += name;
  }
  Fail(v->mark, PathOf(key) + ": expected one of " + choices + Got(*v));
}

}  // namespace config_internal
}  // namespace sessiond
