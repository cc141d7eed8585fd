#include "config/yaml_reader.h"

#include <strings.h>

#include "config/numbers.h"

namespace sessiond {
namespace config_internal {

namespace {

bool IsEnvNameStart(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }

bool IsEnvName(const std::string& name) {
  if (name.empty() || !IsEnvNameStart(name[0])) return false;
  for (char c : name) {
    if (!IsEnvNameStart(c) && !(c >= '0' && c <= '9')) return false;
  }
  return true;
}

// YAML 1.1 booleans, the set yaml-cpp's as<bool>() accepts.
std::optional<bool> ParseYamlBool(const std::string& text) {
  static const char* const kTrue[] = {"true", "True", "TRUE", "yes", "Yes", "YES",
                                      "on",   "On",   "ON",   "y",   "Y"};
  static const char* const kFalse[] = {"false", "False", "FALSE", "no", "No", "NO",
                                       "off",   "Off",   "OFF",   "n",  "N"};
  for (const char* t : kTrue) {
    if (text == t) return true;
  }
  for (const char* f : kFalse) {
    if (text == f) return false;
  }
  return std::nullopt;
}

const char* KindName(const YAML::Node& node) {
  if (node.IsMap()) return "a mapping";
  if (node.IsSequence()) return "a list";
  if (node.IsNull()) return "null";
  return "a single value";
}

}  // namespace

// ---- ConfigReader ----------------------------------------------------------

Section ConfigReader::Root(const YAML::Node& doc, std::initializer_list<const char*> keys) {
  return Open(doc, doc.Mark(), "", keys);
}

void ConfigReader::Fail(const YAML::Mark& mark, const std::string& message) {
  if (failed()) return;
  status_ = Status::Invalid(Locate(mark, message));
}

std::string ConfigReader::Locate(const YAML::Mark& mark, const std::string& message) const {
  std::string line = filename_;
  if (!mark.is_null()) {
    line += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }
  line += ": " + message;
  // The contract is one line: a path or name with a control character in it
  // must not break that.
  for (char& c : line) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return line;
}

Section ConfigReader::Open(const YAML::Node& node, const YAML::Mark& mark, std::string path,
                           std::initializer_list<const char*> keys) {
  Section section(this, std::move(path), mark);
  if (failed() || !node.IsDefined() || node.IsNull()) return section;
  const std::string where = section.path_.empty() ? "the top level" : section.path_;
  if (!node.IsMap()) {
    Fail(mark, where + ": expected a mapping of keys, not " + KindName(node));
    return section;
  }
  for (const auto& pair : node) {
    const YAML::Node key = pair.first;
    if (!key.IsScalar()) {
      Fail(key.Mark(), where + ": keys must be plain names, not " + KindName(key));
      return section;
    }
    const std::string& name = key.Scalar();
    bool known = false;
    for (const char* k : keys) known = known || name == k;
    if (!known) {
      Fail(key.Mark(), "unknown key '" + section.PathOf(name) + "'");
      return section;
    }
    if (section.Find(name.c_str()) != nullptr) {
      Fail(key.Mark(), "duplicate key '" + section.PathOf(name) + "'");
      return section;
    }
    section.entries_.push_back({name, key, pair.second});
  }
  return section;
}

std::optional<std::string> ConfigReader::Expand(const std::string& raw, const YAML::Mark& mark,
                                                const std::string& path, bool* expanded) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t ref = raw.find("${", pos);
    if (ref == std::string::npos) {
      out.append(raw, pos, std::string::npos);
      return out;
    }
    out.append(raw, pos, ref - pos);
    size_t close = raw.find('}', ref + 2);
    std::string name =
        close == std::string::npos ? std::string() : raw.substr(ref + 2, close - ref - 2);
    if (!IsEnvName(name)) {
      // The text is not quoted: it may be part of a literal secret.
      Fail(mark, path +
                     ": malformed environment reference; write ${NAME} with NAME made of "
                     "letters, digits and _");
      return std::nullopt;
    }
    std::optional<std::string> value = env_(name);
    if (!value) {
      Fail(mark, path + ": environment variable " + name + " is not set");
      return std::nullopt;
    }
    out += *value;
    *expanded = true;
    pos = close + 1;
  }
}

// ---- Section ---------------------------------------------------------------

std::string Section::PathOf(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

const Section::Entry* Section::Find(const char* key) const {
  for (const Entry& e : entries_) {
    if (e.name == key) return &e;
  }
  return nullptr;
}

YAML::Mark Section::KeyMark(const char* key) const {
  const Entry* e = Find(key);
  return e ? e->key.Mark() : mark_;
}

YAML::Mark Section::ValueMark(const char* key) const {
  const Entry* e = Find(key);
  if (!e) return mark_;
  // An empty value ("key:" then a newline) is marked where the next token
  // starts, often on another line; the key is the clearer place to point at.
  return e->value.IsNull() ? e->key.Mark() : e->value.Mark();
}

void Section::Fail(const YAML::Mark& mark, const std::string& message) {
  reader_->Fail(mark, message);
}

bool Section::failed() const { return reader_->failed(); }

std::string Section::Got(const ScalarValue& v) {
  if (v.expanded) return "";
  constexpr size_t kMaxShown = 40;
  std::string shown;
  for (char c : v.text.substr(0, kMaxShown)) {
    unsigned char u = static_cast<unsigned char>(c);
    shown += (u < 0x20 || u >= 0x7f || c == '"') ? '?' : c;
  }
  if (v.text.size() > kMaxShown) shown += "...";
  return " (got \"" + shown + "\")";
}

bool Section::MatchEnum(const std::string& text, const char* name, bool ignore_case) const {
  return ignore_case ? strcasecmp(text.c_str(), name) == 0 && text.find('\0') == std::string::npos
                     : text == name;
}

std::optional<ScalarValue> Section::Scalar(const char* key) {
  const Entry* e = Find(key);
  if (failed() || !e) return std::nullopt;
  ScalarValue v;
  v.mark = ValueMark(key);
  if (e->value.IsNull()) {
    v.null = true;
    return v;
  }
  if (!e->value.IsScalar()) {
    Fail(v.mark, PathOf(key) + ": expected a single value, not " + KindName(e->value));
    return std::nullopt;
  }
  std::optional<std::string> text =
      reader_->Expand(e->value.Scalar(), v.mark, PathOf(key), &v.expanded);
  v.raw = e->value.Scalar();
  if (!text) return std::nullopt;
  v.text = std::move(*text);
  return v;
}

std::optional<ScalarValue> Section::Required(const char* key) {
  std::optional<ScalarValue> v = Scalar(key);
  if (v && v->null) {
    Fail(v->mark, PathOf(key) + ": a value is required here");
    return std::nullopt;
  }
  return v;
}

void Section::Bool(const char* key, bool* out) {
  std::optional<ScalarValue> v = Required(key);
  if (!v) return;
  std::optional<bool> b = ParseYamlBool(v->text);
  if (!b) {
    Fail(v->mark, PathOf(key) + ": expected true or false" + Got(*v));
    return;
  }
  *out = *b;
}

void Section::UInt(const char* key, uint64_t min, uint64_t max, uint64_t* out) {
  std::optional<ScalarValue> v = Required(key);
  if (!v) return;
  std::optional<uint64_t> n = ParseDecimal(v->text);
  if (!n || *n < min || *n > max) {
    Fail(v->mark, PathOf(key) + ": expected an integer from " + std::to_string(min) + " to " +
                      std::to_string(max) + Got(*v));
    return;
  }
  *out = *n;
}

void Section::PositiveDuration(const char* key, Millis* out) {
  std::optional<ScalarValue> v = Required(key);
  if (!v) return;
  std::optional<Millis> d = ParseDuration(v->text);
  if (!d) {
    Fail(v->mark, PathOf(key) +
                      ": expected a duration such as 250ms, 90s, 30m, 12h, 7d, or a whole number "
                      "of minutes, at most 100 years" +
                      Got(*v));
    return;
  }
  if (d->count() == 0) {
    Fail(v->mark, PathOf(key) + ": must be greater than zero");
    return;
  }
  *out = *d;
}

void Section::String(const char* key, bool allow_empty, std::string* out) {
  std::optional<ScalarValue> v = Required(key);
  if (!v) return;
  if (!allow_empty && v->text.empty()) {
    Fail(v->mark, PathOf(key) + ": must not be empty");
    return;
  }
  *out = std::move(v->text);
}

std::optional<std::vector<ScalarValue>> Section::StringList(const char* key) {
  const Entry* e = Find(key);
  if (failed() || !e) return std::nullopt;
  std::vector<ScalarValue> items;
  if (e->value.IsNull()) return items;
  if (!e->value.IsSequence()) {
    Fail(ValueMark(key), PathOf(key) + ": expected a list, not " + KindName(e->value));
    return std::nullopt;
  }
  for (size_t i = 0; i < e->value.size(); ++i) {
    const YAML::Node item = e->value[i];
    const std::string path = PathOf(key) + "[" + std::to_string(i) + "]";
    if (!item.IsScalar()) {
      Fail(item.Mark(), path + ": expected a string, not " +
                            (item.IsNull() ? std::string("null") : KindName(item)));
      return std::nullopt;
    }
    ScalarValue v;
    v.mark = item.Mark();
    std::optional<std::string> text = reader_->Expand(item.Scalar(), v.mark, path, &v.expanded);
    if (!text) return std::nullopt;
    v.text = std::move(*text);
    v.raw = item.Scalar();
    items.push_back(std::move(v));
  }
  return items;
}

Section Section::Child(const char* key, std::initializer_list<const char*> keys) {
  const Entry* e = Find(key);
  if (!e || failed()) return Section(reader_, PathOf(key), mark_);
  return reader_->Open(e->value, ValueMark(key), PathOf(key), keys);
}

}  // namespace config_internal
}  // namespace sessiond
