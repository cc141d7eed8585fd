#include "config/yaml_reader.h"

#include <strings.h>

#include <algorithm>
#include <cctype>

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

std::string Lower(const std::string& s) {
  std::string out = s;
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Optimal string alignment distance: insertions, deletions, substitutions and
// swaps of two neighbours ("idel" -> "idle" is one edit) each cost 1. Keys are
// short and the caller bounds the name's length, so the table stays small.
size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// Names longer than any key plus this many edits cannot be a typo of one.
constexpr size_t kMaxHintedNameBytes = 64;

// How many edits still count as a typo of `key`: one for short keys, where
// two edits reach unrelated words, more for long ones.
size_t TypoBudget(const std::string& key) {
  if (key.size() <= 4) return 1;
  if (key.size() <= 10) return 2;
  return 3;
}

}  // namespace

// ---- ConfigReader ----------------------------------------------------------

Section ConfigReader::Root(const YAML::Node& doc, std::initializer_list<const char*> keys) {
  return Open(doc, doc.Mark(), "", keys);
}

void ConfigReader::Fail(const YAML::Mark& mark, const std::string& message) {
  std::string line = Locate(mark, message);
  for (const Error& e : errors_) {
    if (e.line == line) return;
  }
  if (errors_.size() >= kMaxConfigErrors) {
    ++dropped_;
    return;
  }
  errors_.push_back({mark, std::move(line)});
}

Status ConfigReader::status() const {
  if (errors_.empty()) return Status::OK();
  // File order, as a compiler lists them; errors without a position (null
  // mark: line -1) first. Stable: two errors at one spot keep their order.
  std::vector<const Error*> sorted;
  for (const Error& e : errors_) sorted.push_back(&e);
  std::stable_sort(sorted.begin(), sorted.end(), [](const Error* a, const Error* b) {
    return std::make_pair(a->mark.line, a->mark.column) < std::make_pair(b->mark.line, b->mark.column);
  });
  std::string text;
  for (const Error* e : sorted) {
    if (!text.empty()) text += '\n';
    text += e->line;
  }
  if (dropped_ > 0) {
    text += '\n' + Locate(YAML::Mark::null_mark(),
                          std::to_string(dropped_) + " more error(s) not shown; fix these first");
  }
  return Status::Invalid(text);
}

std::string ConfigReader::Locate(const YAML::Mark& mark, const std::string& message) const {
  std::string line = filename_;
  if (!mark.is_null()) {
    line += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }
  line += ": " + message;
  // The contract is one line per error: a path or name with a control
  // character in it must not break that.
  for (char& c : line) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return line;
}

bool ConfigReader::CheckQuotes(const YAML::Node& doc) {
  bool ok = true;
  // An explicit stack: the document's depth is whatever the file says.
  std::vector<YAML::Node> pending{doc};
  while (!pending.empty()) {
    YAML::Node node = pending.back();
    pending.pop_back();
    if (node.IsMap()) {
      for (const auto& pair : node) {
        pending.push_back(pair.first);
        pending.push_back(pair.second);
      }
      continue;
    }
    if (node.IsSequence()) {
      for (const auto& item : node) pending.push_back(item);
      continue;
    }
    if (!node.IsScalar() || node.Mark().is_null() || node.Mark().pos < 0) continue;
    const size_t open = static_cast<size_t>(node.Mark().pos);
    if (open >= text_.size() || (text_[open] != '"' && text_[open] != '\'')) continue;
    const char quote = text_[open];
    size_t i = open + 1;
    while (i < text_.size() && text_[i] != '\n') {
      if (quote == '"' && text_[i] == '\\') {
        i += 2;
      } else if (quote == '\'' && text_[i] == '\'' && i + 1 < text_.size() && text_[i + 1] == '\'') {
        i += 2;  // '' is a quote inside a single-quoted value
      } else if (text_[i] == quote) {
        break;
      } else {
        ++i;
      }
    }
    if (i < text_.size() && text_[i] == quote) continue;  // closed on its line
    // Where does it close, if anywhere? yaml-cpp accepted the document, so
    // the closing quote (if any) is the next unescaped one.
    size_t close = text_.find(quote, std::min(i, text_.size()));
    std::string where;
    if (close == std::string::npos) {
      where = "runs to the end of the file";
    } else {
      const size_t line = static_cast<size_t>(std::count(text_.begin(), text_.begin() + close, '\n')) + 1;
      where = "runs on to line " + std::to_string(line);
    }
    Fail(node.Mark(), std::string("YAML syntax error: unclosed quote: the value quoted with ") + quote +
                          " here " + where + "; close it on this line");
    ok = false;
  }
  return ok;
}

bool ConfigReader::ReportIndentTabs(int error_line) {
  bool found = false;
  int line = 0;
  size_t start = 0;
  while (start < text_.size() && line <= error_line) {
    size_t end = text_.find('\n', start);
    if (end == std::string::npos) end = text_.size();
    for (size_t i = start; i < end && (text_[i] == ' ' || text_[i] == '\t'); ++i) {
      if (text_[i] == '\t') {
        YAML::Mark mark = YAML::Mark::null_mark();
        mark.pos = static_cast<int>(i);
        mark.line = line;
        mark.column = static_cast<int>(i - start);
        Fail(mark, "YAML syntax error: a tab in the indentation; YAML indents with spaces only");
        found = true;
        break;
      }
    }
    start = end + 1;
    ++line;
  }
  return found;
}

std::string ConfigReader::UnknownKeyHint(const std::string& path, const std::string& name,
                                         std::initializer_list<const char*> keys,
                                         std::string* suggested) const {
  if (name.size() > kMaxHintedNameBytes) return "";
  const std::string lower = Lower(name);
  const char* nearest = nullptr;
  size_t nearest_distance = 0;
  for (const char* k : keys) {
    const size_t d = EditDistance(lower, Lower(k));
    if (d <= TypoBudget(k) && (nearest == nullptr || d < nearest_distance)) {
      nearest = k;
      nearest_distance = d;
    }
  }
  if (nearest != nullptr && nearest_distance <= 1) {
    *suggested = nearest;
    return std::string(" (did you mean '") + nearest + "'?)";
  }
  // A key of another mapping, written in the wrong place: most often a
  // session key at the top level.
  for (const SchemaSection& s : schema_) {
    if (s.path == path) continue;
    if (std::find(s.keys.begin(), s.keys.end(), name) != s.keys.end()) {
      return s.path.empty() ? " (it belongs at the top level, not under '" + path + ":')"
                            : " (it belongs under '" + s.path + ":')";
    }
  }
  if (nearest != nullptr) {
    *suggested = nearest;
    return std::string(" (did you mean '") + nearest + "'?)";
  }
  return "";
}

Section ConfigReader::Open(const YAML::Node& node, const YAML::Mark& mark, std::string path,
                           std::initializer_list<const char*> keys) {
  Section section(this, std::move(path), mark);
  if (!node.IsDefined() || node.IsNull()) return section;
  const std::string where = section.path_.empty() ? "the top level" : section.path_;
  if (!node.IsMap()) {
    section.Fail(mark, where + ": expected a mapping of keys, not " + KindName(node));
    return section;
  }
  for (const auto& pair : node) {
    const YAML::Node key = pair.first;
    if (!key.IsScalar()) {
      section.Fail(key.Mark(), where + ": keys must be plain names, not " + KindName(key));
      continue;
    }
    const std::string& name = key.Scalar();
    bool known = false;
    for (const char* k : keys) known = known || name == k;
    if (!known) {
      std::string suggested;
      section.Fail(key.Mark(), "unknown key '" + section.PathOf(name) + "'" +
                                   UnknownKeyHint(section.path_, name, keys, &suggested));
      if (!suggested.empty()) section.suggested_.push_back(suggested);
      continue;
    }
    if (section.Find(name.c_str()) != nullptr) {
      section.Fail(key.Mark(), "duplicate key '" + section.PathOf(name) + "'");
      continue;
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
      // For a secret, say how to make one (docs/CONFIGURATION.md, `secret_key`).
      const bool secret = path == "secret_key" || path.rfind("secret_key_fallbacks[", 0) == 0;
      Fail(mark, path + ": environment variable " + name + " is not set" +
                     (secret ? "; run 'sessiond gen-secret' for a key: export " + name +
                                   "=$(sessiond gen-secret)"
                             : ""));
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

bool Section::Misspelled(const char* key) const {
  return std::find(suggested_.begin(), suggested_.end(), key) != suggested_.end();
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
  ++failures_;
  reader_->Fail(mark, message);
}

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
  if (!e) return std::nullopt;
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
  bool expanded = false;
  std::optional<std::string> text = reader_->Expand(e->value.Scalar(), v.mark, PathOf(key), &expanded);
  v.raw = e->value.Scalar();
  if (!text) {
    ++failures_;
    return std::nullopt;
  }
  v.text = std::move(*text);
  v.expanded = expanded;
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

void Section::Size(const char* key, uint64_t min, uint64_t max, uint64_t* out) {
  std::optional<ScalarValue> v = Required(key);
  if (!v) return;
  std::optional<uint64_t> n = ParseSize(v->text);
  if (!n) {
    Fail(v->mark, PathOf(key) + ": expected a size: a byte count, or a whole number with KB, MB "
                                "(1000-based), KiB or MiB (1024-based), such as 16384, 512KB or "
                                "10MiB" +
                      Got(*v));
    return;
  }
  if (*n < min || *n > max) {
    Fail(v->mark, PathOf(key) + ": must be from " + std::to_string(min) + " to " +
                      std::to_string(max) + " bytes" + Got(*v));
    return;
  }
  *out = *n;
}

void Section::PositiveDuration(const char* key, BareNumber bare, Millis* out) {
  std::optional<ScalarValue> v = Required(key);
  if (!v) return;
  std::optional<uint64_t> number = ParseDecimal(v->text);
  if (number && bare == BareNumber::kError) {
    // The example repeats the number as written, unless it came from the
    // environment (never quoted, whatever it is).
    Fail(v->mark, PathOf(key) + ": add a unit, e.g. " + (v->expanded ? "5" : v->text) +
                      "s (a bare number is not a duration here; units: ms s m h d)");
    return;
  }
  std::optional<Millis> d =
      bare == BareNumber::kMinutes ? ParseMinutesOrDuration(v->text) : ParseDuration(v->text);
  if (!d) {
    Fail(v->mark, PathOf(key) + ": expected a duration such as 250ms, 90s, 30m, 12h, 7d or 1h30m" +
                      (bare == BareNumber::kMinutes ? ", or a whole number of minutes" : "") +
                      ", at most 100 years" + Got(*v));
    return;
  }
  if (d->count() == 0) {
    Fail(v->mark, PathOf(key) + ": must be greater than zero");
    return;
  }
  *out = *d;
}

void Section::OptionalDuration(const char* key, Millis* out) {
  std::optional<ScalarValue> v = Scalar(key);
  if (!v) return;
  if (v->null) {
    *out = Millis(0);
    return;
  }
  PositiveDuration(key, BareNumber::kError, out);
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
  if (!e) return std::nullopt;
  std::vector<ScalarValue> items;
  if (e->value.IsNull()) return items;
  if (!e->value.IsSequence()) {
    Fail(ValueMark(key), PathOf(key) + ": expected a list, not " + KindName(e->value));
    return std::nullopt;
  }
  bool ok = true;
  for (size_t i = 0; i < e->value.size(); ++i) {
    const YAML::Node item = e->value[i];
    const std::string path = PathOf(key) + "[" + std::to_string(i) + "]";
    if (!item.IsScalar()) {
      Fail(item.Mark(), path + ": expected a string, not " +
                            (item.IsNull() ? std::string("null") : KindName(item)));
      ok = false;
      continue;
    }
    ScalarValue v;
    v.mark = item.Mark();
    std::optional<std::string> text = reader_->Expand(item.Scalar(), v.mark, path, &v.expanded);
    if (!text) {
      ++failures_;
      ok = false;
      continue;
    }
    v.text = std::move(*text);
    v.raw = item.Scalar();
    items.push_back(std::move(v));
  }
  if (!ok) return std::nullopt;
  return items;
}

Section::Kind Section::KindOf(const char* key) const {
  const Entry* e = Find(key);
  if (!e) return Kind::kAbsent;
  if (e->value.IsNull()) return Kind::kNull;
  if (e->value.IsSequence()) return Kind::kList;
  if (e->value.IsMap()) return Kind::kMapping;
  return Kind::kScalar;
}

std::optional<std::vector<Section>> Section::MappingList(const char* key, std::initializer_list<const char*> keys) {
  const Entry* e = Find(key);
  if (!e) return std::nullopt;
  std::vector<Section> items;
  if (e->value.IsNull()) return items;
  if (!e->value.IsSequence()) {
    Fail(ValueMark(key), PathOf(key) + ": expected a list, not " + KindName(e->value));
    return std::nullopt;
  }
  for (size_t i = 0; i < e->value.size(); ++i) {
    const YAML::Node item = e->value[i];
    Section section = reader_->Open(item, item.Mark(), PathOf(key) + "[" + std::to_string(i) + "]", keys);
    if (!item.IsMap()) {
      if (item.IsNull()) section.Fail(item.Mark(), section.path_ + ": expected a mapping of keys, not null");
      failures_ += 1;
    }
    items.push_back(std::move(section));
  }
  return items;
}

Section Section::Child(const char* key, std::initializer_list<const char*> keys) {
  const Entry* e = Find(key);
  if (!e) return Section(reader_, PathOf(key), mark_);
  return reader_->Open(e->value, ValueMark(key), PathOf(key), keys);
}

}  // namespace config_internal
}  // namespace sessiond
