// ConfigReader and Section: typed, validated access to the YAML tree of a
// config file, with ${NAME} expansion and errors positioned as
// "FILE:LINE:COL: message".
//
// The reader collects EVERY error of a file (docs/CONFIGURATION.md, Errors),
// so an operator fixes a file in one round instead of one error per run. Each
// accessor checks its own key and leaves the default in place on error; the
// schema in config.cc reads as a flat list of keys and the caller checks
// failed() once at the end. Checks that combine several keys ask
// Section::failed(), which counts only that section's errors, so a bad value
// never produces a second, derived complaint. A Section is one YAML mapping:
// opening it reports unknown and duplicate keys (with a suggestion: the
// nearest known key of the section, or the section a key belongs in), so
// every key the schema does not ask for is an error by construction.
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

// The keys of one mapping of the schema; path "" is the top level.
struct SchemaSection {
  std::string path;
  std::vector<std::string> keys;
};

// How a duration key reads a bare whole number.
enum class BareNumber {
  kError,    // a unit is required (every key but session_expiration_time)
  kMinutes,  // minutes (session.session_expiration_time)
};

class ConfigReader;

class Section {
 public:
  // The dotted name of `key` inside this section, for messages.
  std::string PathOf(const std::string& key) const;
  // Where this mapping starts; used for "X is required" errors.
  const YAML::Mark& mark() const { return mark_; }
  bool Has(const char* key) const { return Find(key) != nullptr; }
  // Present with no value (`key:` or `key: ~`): for a section, "all defaults".
  bool IsNull(const char* key) const {
    const Entry* e = Find(key);
    return e != nullptr && e->value.IsNull();
  }
  // True when an unknown key of this mapping was answered "did you mean
  // `key`?": a "key is required" error would only repeat that.
  bool Misspelled(const char* key) const;
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
  // A byte count, bare or with KB, MB, KiB, MiB (ParseSize), within [min, max].
  void Size(const char* key, uint64_t min, uint64_t max, uint64_t* out);
  // Rejects zero: every duration key of sessiond is a timeout or a lifetime.
  void PositiveDuration(const char* key, BareNumber bare, Millis* out);
  // A positive duration, or ~ (null) for "off", which leaves *out at zero.
  void OptionalDuration(const char* key, Millis* out);
  void String(const char* key, bool allow_empty, std::string* out);
  template <class E>
  void Enum(const char* key, EnumNames<E> names, bool ignore_case, E* out);

  // A list of strings; null counts as an empty list. Each element is
  // expanded; nullopt when absent or on error.
  std::optional<std::vector<ScalarValue>> StringList(const char* key);

  // The nested mapping under `key`, restricted to `keys`. Absent or null
  // gives an empty section (every default applies).
  Section Child(const char* key, std::initializer_list<const char*> keys);

  // What the value of `key` is, for keys that take more than one shape (a
  // word or a list, a number or a mapping).
  enum class Kind { kAbsent, kNull, kScalar, kList, kMapping };
  Kind KindOf(const char* key) const;

  // The list of mappings under `key` (routes, rate_limits), each item a
  // Section restricted to `keys` and named "key[i]"; null is an empty list.
  // nullopt when absent, or when the value is not a list (an error). An item
  // that is not a mapping is reported and comes back as an empty section
  // whose failed() is true.
  std::optional<std::vector<Section>> MappingList(const char* key, std::initializer_list<const char*> keys);

  void Fail(const YAML::Mark& mark, const std::string& message);
  // True when this section (its keys or its own checks) recorded an error.
  bool failed() const { return failures_ > 0; }

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
  std::vector<std::string> suggested_;  // keys offered by "did you mean"
  int failures_ = 0;
};

class ConfigReader {
 public:
  // `text` is the file's text: quote and tab checks look at it as written.
  ConfigReader(std::string filename, const std::string& text, const EnvLookup& env)
      : filename_(std::move(filename)), text_(text), env_(env) {}
  ConfigReader(const ConfigReader&) = delete;
  ConfigReader& operator=(const ConfigReader&) = delete;

  // Every mapping of the schema, so an unknown key can be pointed to the
  // section it belongs in ("it belongs under 'session:'").
  void SetSchema(std::vector<SchemaSection> schema) { schema_ = std::move(schema); }

  // The top-level mapping; `doc` must be a mapping (checked by the caller).
  Section Root(const YAML::Node& doc, std::initializer_list<const char*> keys);

  // Records an error (the first kMaxConfigErrors; an identical line once).
  void Fail(const YAML::Mark& mark, const std::string& message);
  bool failed() const { return !errors_.empty(); }
  // Every recorded error, one line each in file order; OK when there is none.
  Status status() const;

  // "FILE:LINE:COL: message", or "FILE: message" for a null mark.
  std::string Locate(const YAML::Mark& mark, const std::string& message) const;

  // Syntax checks yaml-cpp does not make, on the parsed document: a quoted
  // scalar must close on the line it opens on (an unclosed quote otherwise
  // swallows the following lines, keys included, into one value and yields
  // a misleading error about that value, or none). Records an error per
  // offending scalar; true when all is well.
  bool CheckQuotes(const YAML::Node& doc);
  // After a YAML syntax error at `error_line` (0-based): records a "tab in
  // the indentation" error for every line up to it whose indentation holds a
  // tab, the usual cause of such errors. True when it found any.
  bool ReportIndentTabs(int error_line);

 private:
  friend class Section;
  struct Error {
    YAML::Mark mark;
    std::string line;
  };
  Section Open(const YAML::Node& node, const YAML::Mark& mark, std::string path,
               std::initializer_list<const char*> keys);
  // " (did you mean 'x'?)", " (it belongs under 'session:')" or ""; the
  // key offered by "did you mean" goes to *suggested.
  std::string UnknownKeyHint(const std::string& path, const std::string& name,
                             std::initializer_list<const char*> keys, std::string* suggested) const;
  // Replaces each ${NAME}; records an error and returns nullopt for an unset
  // variable or a malformed reference.
  std::optional<std::string> Expand(const std::string& raw, const YAML::Mark& mark,
                                    const std::string& path, bool* expanded);

  std::string filename_;
  const std::string& text_;
  const EnvLookup& env_;
  std::vector<SchemaSection> schema_;
  std::vector<Error> errors_;
  size_t dropped_ = 0;  // errors beyond kMaxConfigErrors
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
