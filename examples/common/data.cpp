#include "common/data.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <utility>

namespace unroll::examples {

// ---- char_lm ------------------------------------------------------------------------------

std::string read_text_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw DataError(fmt::format("cannot open text file '{}'", path));
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) throw DataError(fmt::format("cannot read text file '{}'", path));
  if (s.empty()) throw DataError(fmt::format("text file '{}' is empty", path));
  return s;
}

CharVocab::CharVocab(std::vector<unsigned char> cs) : chars(std::move(cs)) {
  id.fill(-1);
  for (size_t i = 0; i < chars.size(); ++i) id[chars[i]] = static_cast<int64_t>(i);
}

CharVocab CharVocab::of_text(const std::string& text) {
  std::vector<unsigned char> cs(text.begin(), text.end());
  std::sort(cs.begin(), cs.end());
  cs.erase(std::unique(cs.begin(), cs.end()), cs.end());
  return CharVocab(std::move(cs));
}

std::string CharVocab::to_metadata() const {
  std::string s;
  for (size_t i = 0; i < chars.size(); ++i) s += fmt::format("{}{}", i ? "," : "", int(chars[i]));
  return s;
}

CharVocab CharVocab::from_metadata(const std::string& s, const std::string& path) {
  std::vector<unsigned char> cs;
  std::istringstream in(s);
  for (std::string tok; std::getline(in, tok, ',');) {
    char* end = nullptr;
    const long v = std::strtol(tok.c_str(), &end, 10);
    if (tok.empty() || *end || v < 0 || v > 255 || (!cs.empty() && v <= cs.back()))
      throw DataError(fmt::format("checkpoint '{}': metadata \"vocab\" is not a sorted list of byte codes", path));
    cs.push_back(static_cast<unsigned char>(v));
  }
  if (cs.empty()) throw DataError(fmt::format("checkpoint '{}': metadata \"vocab\" is empty", path));
  return CharVocab(std::move(cs));
}

std::vector<int64_t> CharVocab::encode(const std::string& s, const std::string& what) const {
  std::vector<int64_t> out;
  out.reserve(s.size());
  std::string missing;
  for (unsigned char c : s) {
    if (id[c] >= 0) out.push_back(id[c]);
    else if (const std::string pc = printable(c); missing.size() < 60 && missing.find(pc) == std::string::npos)
      missing.append(1, ' ').append(pc);
  }
  if (!missing.empty())
    throw DataError(fmt::format("vocabulary mismatch: {} has characters that are not in the model's vocabulary of "
                                "{}:{}",
                                what, size(), missing));
  return out;
}

std::string CharVocab::printable(unsigned char c) {
  if (c >= 0x20 && c < 0x7f) return fmt::format("'{}'", char(c));
  return fmt::format("0x{:02x}", int(c));
}

CharLmMetadata parse_char_lm_metadata(const Metadata& metadata, const std::string& path) {
  auto get = [&](const char* key) -> const std::string& {
    auto it = metadata.find(key);
    if (it == metadata.end())
      throw DataError(fmt::format("checkpoint '{}' has no metadata \"{}\": not written by char_lm", path, key));
    return it->second;
  };
  if (get("format") != "unroll-char-lm-1")
    throw DataError(fmt::format("checkpoint '{}': unknown format '{}'", path, get("format")));
  auto number = [&](const char* key) {
    const std::string& s = get(key);
    char* end = nullptr;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end || v < 0)
      throw DataError(fmt::format("checkpoint '{}': metadata \"{}\" = '{}' is not a count", path, key, s));
    return static_cast<int64_t>(v);
  };
  CharLmMetadata m;
  m.cell = get("cell");
  m.embed = number("embed");
  m.hidden = number("hidden");
  m.layers = number("layers");
  if (m.cell != "lstm" && m.cell != "gru" && m.cell != "rnn")
    throw DataError(fmt::format("checkpoint '{}': unknown cell '{}'", path, m.cell));
  m.vocab = CharVocab::from_metadata(get("vocab"), path);
  m.steps = number("steps");
  m.train_loss = std::strtod(get("train_loss").c_str(), nullptr);
  auto optional_number = [&](const char* key) { return metadata.count(key) ? number(key) : int64_t{-1}; };
  m.data_pos = optional_number("data_pos");
  m.batch = optional_number("batch");
  m.seq = optional_number("seq");
  m.train_chars = optional_number("train_chars");
  return m;
}

// ---- classify -----------------------------------------------------------------------------

std::vector<TextExample> parse_text_examples(std::istream& in, const std::string& path, const std::string& format) {
  const std::string sep = format == "sst" ? " ||| " : "\t";
  std::vector<TextExample> out;
  int64_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const size_t at = line.find(sep);
    UNROLL_CHECK(at != std::string::npos && at > 0, "classify: {}:{}: expected 'label{}text', got '{}'", path, line_no,
                 format == "sst" ? " ||| " : "<TAB>", line.substr(0, 80));
    out.push_back({line.substr(0, at), line.substr(at + sep.size())});
  }
  UNROLL_CHECK(!out.empty(), "classify: '{}' holds no examples", path);
  return out;
}

std::vector<TextExample> read_text_examples(const std::string& path, const std::string& format) {
  std::ifstream f(path);
  UNROLL_CHECK(f.good(), "classify: cannot open '{}'", path);
  return parse_text_examples(f, path, format);
}

// ---- digits -------------------------------------------------------------------------------

DigitsSplit parse_digits(std::istream& in, const std::string& path) {
  DigitsSplit out;
  int64_t line_no = 0, image = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::array<int, 65> field{};
    size_t n = 0, at = 0;
    while (true) {
      const size_t comma = line.find(',', at);
      const std::string f = line.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
      if (n >= field.size()) throw DataError(fmt::format("digits: {}:{}: more than 65 fields", path, line_no));
      const bool digits_only = !f.empty() && f.size() <= 3 &&
                               std::all_of(f.begin(), f.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (!digits_only)
        throw DataError(fmt::format("digits: {}:{}: field {} is '{}', not a small non-negative integer", path,
                                    line_no, n + 1, f.substr(0, 20)));
      field[n++] = std::stoi(f);
      if (comma == std::string::npos) break;
      at = comma + 1;
    }
    if (n != field.size())
      throw DataError(fmt::format("digits: {}:{}: {} fields, expected 65 (64 pixels and a label)", path, line_no, n));
    for (size_t i = 0; i < 64; ++i)
      if (field[i] > 16)
        throw DataError(fmt::format("digits: {}:{}: pixel {} is {}, outside 0..16", path, line_no, i, field[i]));
    if (field[64] > 9) throw DataError(fmt::format("digits: {}:{}: label {} is outside 0..9", path, line_no, field[64]));
    DigitsSet& set = image % 5 == 4 ? out.test : out.train;
    for (size_t i = 0; i < 64; ++i) set.pixels.push_back(static_cast<float>(field[i]) / 16.0f);
    set.labels.push_back(field[64]);
    ++image;
  }
  if (image == 0) throw DataError(fmt::format("digits: '{}' holds no images", path));
  return out;
}

DigitsSplit read_digits(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f.good()) throw DataError(fmt::format("digits: cannot open '{}'", path));
  return parse_digits(f, path);
}

std::string find_shared_data(const std::string& relative) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<fs::path> starts;
  if (fs::path cwd = fs::current_path(ec); !ec) starts.push_back(cwd);
#ifdef UNROLL_SOURCE_DIR
  starts.emplace_back(UNROLL_SOURCE_DIR);
#endif
  for (const fs::path& start : starts) {
    for (fs::path dir = start; !dir.empty(); dir = dir.parent_path()) {
      const fs::path candidate = dir / "shared" / "data" / relative;
      if (fs::is_regular_file(candidate, ec)) return candidate.lexically_normal().string();
      if (dir == dir.parent_path()) break;
    }
  }
  return "";
}

}  // namespace unroll::examples
