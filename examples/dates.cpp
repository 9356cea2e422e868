// Machine translation at toy scale: dates written the many ways people write them, in
// English and in Korean, translated to ISO 8601. "3rd of March 1997", "March 3, 97",
// "1997년 3월 3일", "천구백구십칠년 삼월 삼일" and "03/03/1997" all become "1997-03-03".
//
// The data is generated (seeded): every date from 1950-01-01 to 2049-12-31 in 14 formats (a
// two-digit year yy means 19yy for yy >= 50, else 20yy; "mm/dd/yyyy" is the US order,
// "dd.mm.yyyy" the European one). A set of dates is held out: the model never sees them in
// training, in any format, and is scored on them in every format.
//
// The inputs are UTF-8 characters: the source vocabulary is the code points the formats
// use, so a Korean syllable such as 년 is one token. The model is the attention
// encoder-decoder of examples/common/seq2seq_model.h (bidirectional GRU encoder, GRUCell
// decoder attending over the encoder outputs at every step), trained with teacher forcing
// and decoded greedily. The headline is EXACT-MATCH accuracy: all ten characters and the
// end token right.
//
// The attention weights show the alignment: the year's digits attend to the year ("1997",
// "97", or "천구백구십칠"), the month's to the month, the day's to the day, whatever order the
// format writes them in. The program measures it too: the mean attention mass that output
// steps of each field put on the input characters of that field.
//
//   ./dates                              # 14 formats, additive attention
//   ./dates --attention dot
//   ./dates --formats ko                 # only the Korean formats
//   ./dates --input my_dates.txt         # after training, translate each line of a file
#include <unroll.h>

#include "common/cli.h"
#include "common/data.h"
#include "common/plot.h"
#include "common/seq2seq_model.h"
#include "common/utf8.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace unroll;
using namespace unroll::examples;

// ---- calendar -------------------------------------------------------------------------------
constexpr int kFirstYear = 1950, kLastYear = 2049;

struct Date {
  int y = 0, m = 0, d = 0;
  int weekday = 0;  // 0 Monday .. 6 Sunday
};

bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int days_in_month(int y, int m) {
  static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : kDays[m - 1];
}

// Every date of the range in order; 1950-01-01 was a Sunday.
std::vector<Date> all_dates() {
  std::vector<Date> out;
  int weekday = 6;
  for (int y = kFirstYear; y <= kLastYear; ++y)
    for (int m = 1; m <= 12; ++m)
      for (int d = 1; d <= days_in_month(y, m); ++d) {
        out.push_back({y, m, d, weekday});
        weekday = (weekday + 1) % 7;
      }
  return out;
}

std::string iso(const Date& t) { return fmt::format("{:04d}-{:02d}-{:02d}", t.y, t.m, t.d); }

// ---- formats --------------------------------------------------------------------------------
// Each character of a rendered date carries the field it belongs to, so the attention on
// each field can be measured.
enum class Field { none, year, month, day, weekday };

struct Rendered {
  std::vector<std::string> chars;  // UTF-8 characters
  std::vector<Field> fields;       // per character
  void add(const std::string& text, Field f = Field::none) {
    for (std::string& c : utf8_chars(text, "dates: a format")) {
      chars.push_back(std::move(c));
      fields.push_back(f);
    }
  }
  std::string text() const {
    std::string s;
    for (const std::string& c : chars) s += c;
    return s;
  }
};

const std::array<const char*, 12> kMonths = {"January", "February", "March",     "April",   "May",      "June",
                                             "July",    "August",   "September", "October", "November", "December"};
const std::array<const char*, 7> kWeekdays = {"Monday", "Tuesday", "Wednesday", "Thursday",
                                              "Friday", "Saturday", "Sunday"};
const std::array<const char*, 7> kWeekdaysKo = {"월요일", "화요일", "수요일", "목요일", "금요일", "토요일", "일요일"};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// 1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, ..., 21st, 22nd, 23rd, ..., 31st
std::string ordinal_suffix(int n) {
  if (n % 100 >= 11 && n % 100 <= 13) return "th";
  switch (n % 10) {
    case 1: return "st";
    case 2: return "nd";
    case 3: return "rd";
    default: return "th";
  }
}

// first .. thirty-first
std::string ordinal_word(int n) {
  static const std::array<const char*, 20> kSmall = {
      "",        "first",    "second",     "third",      "fourth",     "fifth",     "sixth",
      "seventh", "eighth",   "ninth",      "tenth",      "eleventh",   "twelfth",   "thirteenth",
      "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth"};
  if (n < 20) return kSmall[static_cast<size_t>(n)];
  const char* tens = n < 30 ? "twenty" : "thirty";
  if (n % 10 == 0) return n == 20 ? "twentieth" : "thirtieth";
  return std::string(tens) + "-" + kSmall[static_cast<size_t>(n % 10)];
}

// Sino-Korean numerals, as dates are read: 1997 -> 천구백구십칠, 2005 -> 이천오, 11 -> 십일.
// A leading one before 십, 백 and 천 is not said.
std::string korean_number(int n) {
  static const std::array<const char*, 10> kDigit = {"", "일", "이", "삼", "사", "오", "육", "칠", "팔", "구"};
  static const std::array<const char*, 4> kUnit = {"", "십", "백", "천"};
  std::string s;
  for (int p = 3; p >= 0; --p) {
    const int digit = n / static_cast<int>(std::pow(10, p)) % 10;
    if (digit == 0) continue;
    if (digit != 1 || p == 0) s += kDigit[static_cast<size_t>(digit)];
    s += kUnit[static_cast<size_t>(p)];
  }
  return s;
}

// Months in words: 6 and 10 drop a sound (유월, 시월), the others are number + 월.
std::string korean_month(int m) {
  if (m == 6) return "유월";
  if (m == 10) return "시월";
  return korean_number(m) + "월";
}

struct Format {
  std::string id;    // for --formats, file names and JSON keys
  std::string lang;  // "en" or "ko"
  std::function<Rendered(const Date&)> render;
};

std::vector<Format> all_formats() {
  using F = Field;
  auto yyyy = [](const Date& t) { return std::to_string(t.y); };
  auto yy = [](const Date& t) { return fmt::format("{:02d}", t.y % 100); };
  auto month = [](const Date& t) { return std::string(kMonths[static_cast<size_t>(t.m - 1)]); };
  auto num = [](int v) { return std::to_string(v); };
  auto two = [](int v) { return fmt::format("{:02d}", v); };
  std::vector<Format> f;
  f.push_back({"en_mdy", "en", [=](const Date& t) {  // March 3, 1997
                 Rendered r;
                 r.add(month(t), F::month), r.add(" "), r.add(num(t.d), F::day), r.add(", "), r.add(yyyy(t), F::year);
                 return r;
               }});
  f.push_back({"en_mdyy", "en", [=](const Date& t) {  // March 3, 97
                 Rendered r;
                 r.add(month(t), F::month), r.add(" "), r.add(num(t.d), F::day), r.add(", "), r.add(yy(t), F::year);
                 return r;
               }});
  f.push_back({"en_dmy", "en", [=](const Date& t) {  // 3 March 1997
                 Rendered r;
                 r.add(num(t.d), F::day), r.add(" "), r.add(month(t), F::month), r.add(" "), r.add(yyyy(t), F::year);
                 return r;
               }});
  f.push_back({"en_ordinal", "en", [=](const Date& t) {  // 3rd of March 1997
                 Rendered r;
                 r.add(num(t.d) + ordinal_suffix(t.d), F::day), r.add(" of "), r.add(month(t), F::month), r.add(" ");
                 r.add(yyyy(t), F::year);
                 return r;
               }});
  f.push_back({"en_abbrev", "en", [=](const Date& t) {  // Mar 3 1997
                 Rendered r;
                 r.add(month(t).substr(0, 3), F::month), r.add(" "), r.add(num(t.d), F::day), r.add(" ");
                 r.add(yyyy(t), F::year);
                 return r;
               }});
  f.push_back({"en_weekday", "en", [=](const Date& t) {  // Monday, March 3, 1997
                 Rendered r;
                 r.add(kWeekdays[static_cast<size_t>(t.weekday)], F::weekday), r.add(", "), r.add(month(t), F::month);
                 r.add(" "), r.add(num(t.d), F::day), r.add(", "), r.add(yyyy(t), F::year);
                 return r;
               }});
  f.push_back({"en_words", "en", [=](const Date& t) {  // the third of march, 1997
                 Rendered r;
                 r.add("the "), r.add(ordinal_word(t.d), F::day), r.add(" of "), r.add(lower(month(t)), F::month);
                 r.add(", "), r.add(yyyy(t), F::year);
                 return r;
               }});
  f.push_back({"en_us_numeric", "en", [=](const Date& t) {  // 03/03/1997 (month first)
                 Rendered r;
                 r.add(two(t.m), F::month), r.add("/"), r.add(two(t.d), F::day), r.add("/"), r.add(yyyy(t), F::year);
                 return r;
               }});
  f.push_back({"en_eu_numeric", "en", [=](const Date& t) {  // 03.03.1997 (day first)
                 Rendered r;
                 r.add(two(t.d), F::day), r.add("."), r.add(two(t.m), F::month), r.add("."), r.add(yyyy(t), F::year);
                 return r;
               }});
  f.push_back({"ko_ymd", "ko", [=](const Date& t) {  // 1997년 3월 3일
                 Rendered r;
                 r.add(yyyy(t), F::year), r.add("년 "), r.add(num(t.m), F::month), r.add("월 "), r.add(num(t.d), F::day);
                 r.add("일");
                 return r;
               }});
  f.push_back({"ko_yymd", "ko", [=](const Date& t) {  // 97년 3월 3일
                 Rendered r;
                 r.add(yy(t), F::year), r.add("년 "), r.add(num(t.m), F::month), r.add("월 "), r.add(num(t.d), F::day);
                 r.add("일");
                 return r;
               }});
  f.push_back({"ko_weekday", "ko", [=](const Date& t) {  // 1997년 3월 3일 월요일
                 Rendered r;
                 r.add(yyyy(t), F::year), r.add("년 "), r.add(num(t.m), F::month), r.add("월 "), r.add(num(t.d), F::day);
                 r.add("일 "), r.add(kWeekdaysKo[static_cast<size_t>(t.weekday)], F::weekday);
                 return r;
               }});
  f.push_back({"ko_dots", "ko", [=](const Date& t) {  // 1997. 3. 3.
                 Rendered r;
                 r.add(yyyy(t), F::year), r.add(". "), r.add(num(t.m), F::month), r.add(". "), r.add(num(t.d), F::day);
                 r.add(".");
                 return r;
               }});
  f.push_back({"ko_words", "ko", [=](const Date& t) {  // 천구백구십칠년 삼월 삼일
                 Rendered r;
                 r.add(korean_number(t.y), F::year), r.add("년 "), r.add(korean_month(t.m), F::month);
                 r.add(" "), r.add(korean_number(t.d), F::day), r.add("일");
                 return r;
               }});
  return f;
}

// "all", "en", "ko" or a comma-separated list of format ids.
std::vector<Format> select_formats(const std::string& spec) {
  const std::vector<Format> all = all_formats();
  std::vector<Format> out;
  std::string ids;
  for (const Format& f : all) ids += (ids.empty() ? "" : ", ") + f.id;
  if (spec == "all") return all;
  if (spec == "en" || spec == "ko") {
    for (const Format& f : all)
      if (f.lang == spec) out.push_back(f);
    return out;
  }
  std::set<std::string> seen;
  for (size_t at = 0; at <= spec.size();) {
    const size_t comma = std::min(spec.find(',', at), spec.size());
    const std::string id = spec.substr(at, comma - at);
    auto it = std::find_if(all.begin(), all.end(), [&](const Format& f) { return f.id == id; });
    UNROLL_CHECK(it != all.end(), "dates: --formats: unknown format '{}' (all, en, ko, or a list of: {})", id, ids);
    if (seen.insert(id).second) out.push_back(*it);
    at = comma + 1;
  }
  return out;
}

// ---- vocabularies ---------------------------------------------------------------------------
// Source: every character any format writes, in code point order, ids from kSeqFirstSymbol.
// Target: the ISO characters 0-9 and '-'.
struct SourceVocab {
  std::map<std::string, int64_t> id;
  std::vector<std::string> chars;  // id - kSeqFirstSymbol -> character
  int64_t size() const { return kSeqFirstSymbol + static_cast<int64_t>(chars.size()); }
};

SourceVocab build_source_vocab(const std::vector<Format>& formats, const std::vector<Date>& dates) {
  // Every day and month of a leap year (all weekdays appear too) and January 1st of every
  // year cover every character a format can write.
  std::set<std::pair<char32_t, std::string>> seen;
  for (const Date& t : dates)
    if (t.y == 2000 || (t.m == 1 && t.d == 1))
      for (const Format& f : formats)
        for (const std::string& c : f.render(t).chars) seen.insert({utf8_code_point(c), c});
  SourceVocab v;
  for (const auto& [cp, c] : seen) {
    v.id[c] = v.size();
    v.chars.push_back(c);
  }
  return v;
}

std::vector<int64_t> encode_source(const SourceVocab& v, const std::vector<std::string>& chars) {
  std::vector<int64_t> ids;
  for (const std::string& c : chars) ids.push_back(v.id.at(c));
  return ids;
}

std::vector<int64_t> encode_target(const std::string& iso_text) {
  std::vector<int64_t> ids;
  for (char c : iso_text) ids.push_back(c == '-' ? kSeqFirstSymbol + 10 : kSeqFirstSymbol + (c - '0'));
  return ids;
}

std::string target_text(int64_t tok) {
  if (tok == kSeqEos) return "</s>";
  if (tok == kSeqPad) return "_";
  if (tok == kSeqBos) return "<s>";
  return tok == kSeqFirstSymbol + 10 ? "-" : std::string(1, static_cast<char>('0' + tok - kSeqFirstSymbol));
}

std::string target_string(const std::vector<int64_t>& toks) {
  std::string s;
  for (int64_t t : toks)
    if (t != kSeqEos) s += target_text(t);
  return s;
}

// A space is invisible as a tick label; show it as ␣ (U+2423).
std::string visible(const std::string& c) { return c == " " ? "\u2423" : c; }

// Which field output position j (of yyyy-mm-dd) belongs to.
Field output_field(size_t j) { return j < 4 ? Field::year : j == 5 || j == 6 ? Field::month : j >= 8 ? Field::day : Field::none; }

// ---- examples -------------------------------------------------------------------------------
struct Example {
  size_t format;  // index into the formats
  Date date;
  Rendered input;
  std::vector<int64_t> src, tgt;
};

Example make_example(const std::vector<Format>& formats, const SourceVocab& v, size_t format, const Date& t) {
  Example e{format, t, formats[format].render(t), {}, {}};
  e.src = encode_source(v, e.input.chars);
  e.tgt = encode_target(iso(t));
  return e;
}

Seq2SeqBatch batch_of(const std::vector<Example>& ex) {
  std::vector<std::vector<int64_t>> src, tgt;
  for (const Example& e : ex) src.push_back(e.src), tgt.push_back(e.tgt);
  return make_seq2seq_batch(src, tgt);
}

// One decoded example: the output (up to EOS) and the attention weights [steps][input length].
struct Translation {
  std::vector<int64_t> tokens;  // up to and including the first EOS
  std::vector<std::vector<double>> weights;
};

constexpr int64_t kOutSteps = 11;  // yyyy-mm-dd and EOS

std::vector<Translation> translate(Seq2SeqModel& model, const std::vector<Example>& ex, size_t batch_size = 256) {
  model.eval();
  std::vector<Translation> out;
  for (size_t lo = 0; lo < ex.size(); lo += batch_size) {
    const std::vector<Example> part(ex.begin() + static_cast<std::ptrdiff_t>(lo),
                                    ex.begin() + static_cast<std::ptrdiff_t>(std::min(ex.size(), lo + batch_size)));
    Seq2SeqModel::Decoded d = model.greedy(batch_of(part), kOutSteps + 4);
    for (size_t i = 0; i < part.size(); ++i) {
      Translation t;
      t.tokens = until_eos(d.tokens[i]);
      for (size_t j = 0; j < t.tokens.size(); ++j)
        t.weights.emplace_back(d.weights[i][j].begin(),
                               d.weights[i][j].begin() + static_cast<std::ptrdiff_t>(part[i].src.size()));
      out.push_back(std::move(t));
    }
  }
  model.train();
  return out;
}

bool exact(const Example& e, const Translation& t) {
  std::vector<int64_t> want = e.tgt;
  want.push_back(kSeqEos);
  return t.tokens == want;
}

// ---- evaluation -----------------------------------------------------------------------------
struct Scores {
  double exact = 0, token = 0;
  std::vector<double> exact_by_format;                  // per format
  std::vector<std::vector<double>> token_by_position;   // [format][11]: right character at position j
  std::map<std::string, double> exact_by_lang;          // "en", "ko"
  std::array<double, 3> field_attention{};              // year, month, day: mean mass on that field's characters
};

Scores score(const std::vector<Format>& formats, const std::vector<Example>& ex, const std::vector<Translation>& tr) {
  const size_t F = formats.size();
  Scores s;
  s.exact_by_format.assign(F, 0.0);
  s.token_by_position.assign(F, std::vector<double>(kOutSteps, 0.0));
  std::vector<double> count(F, 0.0);
  std::map<std::string, double> lang_ok, lang_n;
  std::array<double, 3> mass{}, mass_n{};
  double tok_ok = 0;
  for (size_t i = 0; i < ex.size(); ++i) {
    const Example& e = ex[i];
    const Translation& t = tr[i];
    const bool ok = exact(e, t);
    s.exact += ok;
    s.exact_by_format[e.format] += ok;
    lang_ok[formats[e.format].lang] += ok;
    lang_n[formats[e.format].lang] += 1;
    count[e.format] += 1;
    for (size_t j = 0; j < static_cast<size_t>(kOutSteps); ++j) {
      const int64_t want = j < e.tgt.size() ? e.tgt[j] : kSeqEos;
      const bool right = j < t.tokens.size() && t.tokens[j] == want;
      s.token_by_position[e.format][j] += right;
      tok_ok += right;
      const Field f = output_field(j);
      if (f == Field::none || j >= t.weights.size()) continue;
      const size_t k = f == Field::year ? 0 : f == Field::month ? 1 : 2;
      double m = 0;
      for (size_t c = 0; c < e.input.fields.size(); ++c)
        if (e.input.fields[c] == f) m += t.weights[j][c];
      mass[k] += m;
      mass_n[k] += 1;
    }
  }
  const double n = static_cast<double>(ex.size());
  s.exact /= n;
  s.token = tok_ok / (n * static_cast<double>(kOutSteps));
  for (size_t f = 0; f < F; ++f) {
    s.exact_by_format[f] /= std::max(1.0, count[f]);
    for (double& v : s.token_by_position[f]) v /= std::max(1.0, count[f]);
  }
  for (const auto& [lang, k] : lang_n) s.exact_by_lang[lang] = lang_ok[lang] / k;
  for (size_t k = 0; k < 3; ++k) s.field_attention[k] = mass[k] / std::max(1.0, mass_n[k]);
  return s;
}

// ---- figures --------------------------------------------------------------------------------
void attention_heatmap(const Example& e, const Translation& t, const std::string& title, const std::string& path) {
  plot::Heatmap h;
  h.title = title;
  h.xlabel = "input character";
  h.ylabel = "output character (decoder step)";
  h.colorbar_label = "attention weight";
  for (size_t j = 0; j < t.tokens.size(); ++j) {
    h.values.push_back(t.weights[j]);
    h.row_labels.push_back(target_text(t.tokens[j]));
  }
  for (const std::string& c : e.input.chars) h.col_labels.push_back(visible(c));
  h.save(path);
}

// ---- input lines to translate (--input) -----------------------------------------------------
constexpr size_t kMaxInputChars = 64;

// The non-blank lines of `path` as characters; throws DataError naming the file and the line
// on invalid UTF-8, a character outside the vocabulary, or a line longer than kMaxInputChars.
std::vector<std::vector<std::string>> read_input_lines(const std::string& path, const SourceVocab& v) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(fmt::format("dates: cannot open --input '{}'", path));
  std::vector<std::vector<std::string>> lines;
  std::string line;
  for (int64_t no = 1; std::getline(in, line); ++no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string where = fmt::format("dates: '{}' line {}", path, no);
    std::vector<std::string> cs = utf8_chars(line, where);
    if (std::all_of(cs.begin(), cs.end(), [](const std::string& c) { return c == " " || c == "\t"; })) continue;
    if (cs.size() > kMaxInputChars)
      throw DataError(fmt::format("{}: {} characters, longer than the {} this program reads", where, cs.size(),
                                  kMaxInputChars));
    for (const std::string& c : cs)
      if (!v.id.contains(c))
        throw DataError(fmt::format("{}: character '{}' ({}) is not in the vocabulary of the date formats", where, c,
                                    code_point_name(utf8_code_point(c))));
    lines.push_back(std::move(cs));
  }
  if (lines.empty()) throw DataError(fmt::format("dates: --input '{}' has no line to translate", path));
  return lines;
}

int run(int argc, char** argv) {
  Cli cli(argc, argv,
          "dates: translate dates written in English and Korean formats (\"3rd of March 1997\", \"1997년 3월 3일\") "
          "to ISO 8601 with an attention encoder-decoder over UTF-8 characters");
  const std::string attention_kind = cli.get_string("attention", "additive", "additive | dot | general");
  const std::string formats_spec = cli.get_string("formats", "all", "all | en | ko | a comma-separated list of ids");
  const int64_t embed = cli.get_int("embed", 32, "embedding size E");
  const int64_t hidden = cli.get_int("hidden", 64, "encoder hidden size H per direction (decoder: 2H)");
  const int64_t steps = cli.get_int("steps", 1200, "training steps");
  const int64_t batch_size = cli.get_int("batch", 32, "batch size B");
  const double lr = cli.get_double("lr", 3e-3, "Adam learning rate (cosine-annealed to lr/20)");
  const double clip = cli.get_double("clip", 1.0, "gradient norm clipping");
  const int64_t n_test_dates = cli.get_int("test-dates", 200, "held-out dates, each scored in every format");
  const int64_t eval_every = cli.get_int("eval-every", 50, "steps between evaluations on 25 held-out dates per format");
  const int64_t n_heatmaps = cli.get_int("heatmaps", 4, "attention heatmaps of held-out dates to draw");
  const std::string input_path = cli.get_string("input", "", "a UTF-8 file: translate each line after training");
  const uint64_t seed = cli.seed();
  const bool json = cli.json();
  const std::string out_dir = cli.out_dir();
  cli.done();
  UNROLL_CHECK(steps > 0 && batch_size > 0 && eval_every > 0 && embed > 0 && hidden > 0,
               "dates: --steps, --batch, --eval-every, --embed and --hidden must be positive");
  UNROLL_CHECK(n_test_dates >= 1 && n_test_dates <= 10000, "dates: --test-dates {} must be in 1..10000", n_test_dates);
  UNROLL_CHECK(n_heatmaps >= 0, "dates: --heatmaps {} must not be negative", n_heatmaps);
  const std::vector<Format> formats = select_formats(formats_spec);
  const std::vector<Date> dates = all_dates();
  const SourceVocab vocab = build_source_vocab(formats, dates);
  const int64_t V_tgt = kSeqFirstSymbol + 11;  // 0-9 and '-'
  // Checked before training: a bad file fails in a second, not after a minute.
  const std::vector<std::vector<std::string>> input_lines =
      input_path.empty() ? std::vector<std::vector<std::string>>{} : read_input_lines(input_path, vocab);
  plot::make_dirs(out_dir);

  // Data: held-out dates (never trained on, in any format), each in every format; training
  // examples drawn fresh each step from the other dates and a random format.
  Generator data_gen(seed);
  std::vector<size_t> order(dates.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  for (size_t i = order.size() - 1; i > 0; --i)
    std::swap(order[i], order[static_cast<size_t>(data_gen.randint(0, static_cast<int64_t>(i) + 1))]);
  const std::vector<size_t> test_days(order.begin(), order.begin() + n_test_dates);
  const std::vector<size_t> train_days(order.begin() + n_test_dates, order.end());
  std::vector<Example> test, probe;
  for (size_t f = 0; f < formats.size(); ++f)
    for (size_t k = 0; k < test_days.size(); ++k) {
      test.push_back(make_example(formats, vocab, f, dates[test_days[k]]));
      if (k < 25) probe.push_back(test.back());
    }
  auto training_batch = [&] {
    std::vector<Example> b;
    for (int64_t i = 0; i < batch_size; ++i) {
      const size_t f = static_cast<size_t>(data_gen.randint(0, static_cast<int64_t>(formats.size())));
      const size_t day = train_days[static_cast<size_t>(data_gen.randint(0, static_cast<int64_t>(train_days.size())))];
      b.push_back(make_example(formats, vocab, f, dates[day]));
    }
    return batch_of(b);
  };
  size_t longest = 0;
  for (const Example& e : test) longest = std::max(longest, e.src.size());

  // Model.
  manual_seed(seed);
  Seq2SeqModel model(vocab.size(), V_tgt, embed, hidden, attention_kind, "dates");
  optim::Adam opt(model.parameters(), lr);
  optim::CosineAnnealingLR schedule(opt, steps, lr / 20);
  fmt::print("dates: {} formats, {} source characters, {} attention, {} parameters; {} held-out dates x {} formats\n",
             formats.size(), vocab.chars.size(), attention_kind, model.num_parameters(), n_test_dates, formats.size());
  const Date shown_date{2004, 11, 7, 6};
  for (const Format& f : formats) fmt::print("  {:<14} {}\n", f.id, f.render(shown_date).text());

  // Training loop: teacher forcing, Adam, clipping, cosine learning rate.
  std::vector<double> loss_x, loss_y, eval_x, eval_all, eval_en, eval_ko;
  std::vector<std::vector<double>> eval_by_format(formats.size());  // [format][evaluation]
  Progress progress("train", steps, !json);
  double smooth = std::log(static_cast<double>(V_tgt));
  for (int64_t step = 1; step <= steps; ++step) {
    Seq2SeqBatch batch = training_batch();
    opt.zero_grad();
    Variable loss = model.loss(batch);
    loss.backward();
    clip_grad_norm(model.parameters(), clip);
    opt.step();
    schedule.step();
    smooth = 0.95 * smooth + 0.05 * loss.item();
    loss_x.push_back(static_cast<double>(step));
    loss_y.push_back(loss.item());
    if (step % eval_every == 0 || step == steps) {
      const Scores s = score(formats, probe, translate(model, probe));
      eval_x.push_back(static_cast<double>(step));
      eval_all.push_back(s.exact);
      eval_en.push_back(s.exact_by_lang.contains("en") ? s.exact_by_lang.at("en") : NAN);
      eval_ko.push_back(s.exact_by_lang.contains("ko") ? s.exact_by_lang.at("ko") : NAN);
      for (size_t f = 0; f < formats.size(); ++f) eval_by_format[f].push_back(s.exact_by_format[f]);
    }
    progress.update(step, smooth,
                    eval_all.empty() ? "" : fmt::format(" held-out exact match {:.1f}%", 100 * eval_all.back()));
  }
  progress.finish();
  const double train_seconds = progress.seconds();

  // Evaluation: greedy decoding of every held-out date in every format.
  const std::vector<Translation> test_out = translate(model, test);
  const Scores final_scores = score(formats, test, test_out);
  fmt::print("held-out ({} dates x {} formats = {} strings): exact match {:.2f}%, characters {:.2f}%  ({:.1f} s training)\n",
             n_test_dates, formats.size(), test.size(), 100 * final_scores.exact, 100 * final_scores.token,
             train_seconds);
  fmt::print("  {:<14} {:<30} {:>8}  first error\n", "format", "e.g.", "exact");
  for (size_t f = 0; f < formats.size(); ++f) {
    std::string error;
    for (size_t i = 0; i < test.size() && error.empty(); ++i)
      if (test[i].format == f && !exact(test[i], test_out[i]))
        error = fmt::format("{} -> {} (want {})", test[i].input.text(), target_string(test_out[i].tokens),
                            iso(test[i].date));
    fmt::print("  {:<14} {:<30} {:>7.1f}%  {}\n", formats[f].id, formats[f].render(shown_date).text(),
               100 * final_scores.exact_by_format[f], error.empty() ? "-" : error);
  }
  fmt::print("attention on the field being written (mean weight on its input characters): year {:.2f}, month {:.2f}, "
             "day {:.2f}\n",
             final_scores.field_attention[0], final_scores.field_attention[1], final_scores.field_attention[2]);

  // Figures: attention heatmaps of held-out dates in a few contrasting formats, the
  // per-format accuracy by output position, and the learning curves.
  std::vector<std::string> figures;
  const std::vector<std::string> preferred = {"ko_words", "en_words", "en_eu_numeric", "ko_weekday", "en_mdyy",
                                              "ko_yymd",  "en_weekday", "en_us_numeric", "en_ordinal", "ko_ymd",
                                              "en_abbrev", "ko_dots",  "en_dmy",        "en_mdy"};
  int64_t drawn = 0;
  for (const std::string& id : preferred) {
    if (drawn >= n_heatmaps) break;
    auto it = std::find_if(formats.begin(), formats.end(), [&](const Format& f) { return f.id == id; });
    if (it == formats.end()) continue;
    const size_t f = static_cast<size_t>(it - formats.begin());
    const size_t i = f * test_days.size() + static_cast<size_t>(drawn);  // a different held-out date each
    const std::string path = fmt::format("{}/attention_{}.svg", out_dir, id);
    attention_heatmap(test[i], test_out[i],
                      fmt::format("{} attention: {} -> {}", attention_kind, test[i].input.text(),
                                  target_string(test_out[i].tokens)),
                      path);
    figures.push_back(path);
    ++drawn;
  }
  plot::Heatmap per_format;
  per_format.title = fmt::format("held-out dates: right character by output position ({} attention)", attention_kind);
  per_format.xlabel = "output position (yyyy-mm-dd, then end)";
  per_format.ylabel = "input format";
  per_format.values = final_scores.token_by_position;
  per_format.annotate = true;
  per_format.colorbar_label = "share right";
  for (const Format& f : formats) per_format.row_labels.push_back(f.render(shown_date).text());
  for (const char* c : {"y", "y", "y", "y", "-", "m", "m", "-", "d", "d", "</s>"}) per_format.col_labels.push_back(c);
  const std::string per_format_path = out_dir + "/per_format.svg";
  per_format.save(per_format_path);
  figures.push_back(per_format_path);
  plot::Heatmap learning;
  learning.title = fmt::format("which formats are learned first: exact match on {} held-out dates per format",
                               probe.size() / formats.size());
  learning.xlabel = "training step";
  learning.ylabel = "input format";
  learning.colorbar_label = "exact match";
  learning.values = eval_by_format;
  for (const Format& f : formats) learning.row_labels.push_back(f.render(shown_date).text());
  const size_t label_every = std::max<size_t>(1, eval_x.size() / 8);
  for (size_t k = 0; k < eval_x.size(); ++k)
    learning.col_labels.push_back(k % label_every == label_every - 1 ? fmt::format("{}", eval_x[k]) : "");
  const std::string learning_path = out_dir + "/learning.svg";
  learning.save(learning_path);
  figures.push_back(learning_path);
  plot::LinePlot loss_plot;
  loss_plot.title = fmt::format("dates ({} attention): training loss", attention_kind);
  loss_plot.xlabel = "step";
  loss_plot.ylabel = "cross-entropy per output character (nats)";
  loss_plot.log_y = true;
  loss_plot.add("teacher-forced loss", loss_x, loss_y);
  const std::string loss_path = out_dir + "/loss.svg";
  loss_plot.save(loss_path);
  figures.push_back(loss_path);
  plot::LinePlot acc_plot;
  acc_plot.title = fmt::format("exact match, greedy decoding of {} held-out strings", probe.size());
  acc_plot.xlabel = "step";
  acc_plot.ylabel = "exact-match accuracy";
  acc_plot.add("all formats", eval_x, eval_all);
  if (!std::isnan(eval_en.back())) acc_plot.add("English formats", eval_x, eval_en, true);
  if (!std::isnan(eval_ko.back())) acc_plot.add("Korean formats", eval_x, eval_ko, true);
  for (plot::Series& s : acc_plot.series) s.markers = eval_x.size() <= 40;
  const std::string acc_path = out_dir + "/accuracy.svg";
  acc_plot.save(acc_path);
  figures.push_back(acc_path);

  // Lines of --input, translated and drawn.
  if (!input_lines.empty()) {
    std::vector<Example> ex;
    for (const std::vector<std::string>& cs : input_lines) {
      Example e;
      for (const std::string& c : cs) e.input.add(c);
      e.src = encode_source(vocab, cs);
      ex.push_back(std::move(e));
    }
    const std::vector<Translation> out = translate(model, ex);
    fmt::print("--input {}:\n", input_path);
    for (size_t i = 0; i < ex.size(); ++i) {
      fmt::print("  {} -> {}\n", ex[i].input.text(), target_string(out[i].tokens));
      if (i < 10) {
        const std::string path = fmt::format("{}/attention_input_{}.svg", out_dir, i);
        attention_heatmap(ex[i], out[i],
                          fmt::format("{} attention: {} -> {}", attention_kind, ex[i].input.text(),
                                      target_string(out[i].tokens)),
                          path);
        figures.push_back(path);
      }
    }
  }
  fmt::print("figures:\n");
  for (const std::string& f : figures) fmt::print("  {}\n", f);

  if (json) {
    std::string per = "{";
    for (size_t f = 0; f < formats.size(); ++f)
      per += fmt::format("{}\"{}\": {}", f ? ", " : "", formats[f].id, final_scores.exact_by_format[f]);
    per += "}";
    JsonLine j;
    j.add("attention", attention_kind)
        .add("formats", static_cast<double>(formats.size()))
        .add("steps", static_cast<double>(steps))
        .add("parameters", static_cast<double>(model.num_parameters()))
        .add("source_vocab", static_cast<double>(vocab.chars.size()))
        .add("test_dates", static_cast<double>(n_test_dates))
        .add("test_strings", static_cast<double>(test.size()))
        .add("initial_loss", loss_y.front())
        .add("final_loss", smooth)
        .add("exact_match", final_scores.exact)
        .add("token_accuracy", final_scores.token)
        .add("chance_exact_match", 1.0 / static_cast<double>(dates.size()));
    for (const auto& [lang, v] : final_scores.exact_by_lang) j.add("exact_match_" + lang, v);
    j.add("attention_on_year", final_scores.field_attention[0])
        .add("attention_on_month", final_scores.field_attention[1])
        .add("attention_on_day", final_scores.field_attention[2])
        .add("longest_input", static_cast<double>(longest))
        .add("train_seconds", train_seconds)
        .add_raw("per_format", per);
    fmt::print("{}\n", j.str());
  }
  return 0;
}

int main(int argc, char** argv) {
  return guarded_main("dates", argc, argv, run, on_error<DataError>(ErrorPrefix::none, 2),
                      on_error<unroll::Error>(ErrorPrefix::none, 1));
}
