#pragma once
// The parsers of the examples' input files, in one place so they can be tested and fuzzed
// (fuzz/) apart from the programs: char_lm's text files, vocabulary and checkpoint
// metadata, and classify's `label<TAB>text` / SST `label ||| text` files.
//
//   std::string text = read_text_file("corpus.txt");               // throws DataError
//   CharVocab vocab = CharVocab::of_text(text);
//   std::vector<int64_t> ids = vocab.encode(text, "'corpus.txt'");  // [N] in 0..V-1
//   CharLmMetadata m = parse_char_lm_metadata(file.metadata, path);  // settings + vocab
//   std::vector<TextExample> ex = read_text_examples("train.tsv", "tsv");  // throws unroll::Error
//
// Every parser takes arbitrary bytes: bad input is an exception naming the file and the
// problem, never a crash.
#include "nn/checkpoint.h"

#include <array>
#include <cstdint>
#include <istream>
#include <stdexcept>
#include <string>
#include <vector>

namespace unroll::examples {

/// Bad input data (a missing or empty file, a corrupt checkpoint, a vocabulary mismatch).
struct DataError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---- char_lm ------------------------------------------------------------------------------

/// The bytes of a text file; throws DataError if it cannot be read or is empty.
std::string read_text_file(const std::string& path);

/// The characters of a character model: byte value <-> id (0..V-1), ids in byte order.
struct CharVocab {
  std::vector<unsigned char> chars;  ///< id -> byte, strictly increasing
  std::array<int64_t, 256> id{};     ///< byte -> id, -1 if absent

  /// From distinct bytes in increasing order.
  explicit CharVocab(std::vector<unsigned char> cs);
  /// Every distinct byte of `text`.
  static CharVocab of_text(const std::string& text);
  int64_t size() const { return static_cast<int64_t>(chars.size()); }  ///< V
  /// The checkpoint form: byte codes "10,32,33,...", safe for any byte.
  std::string to_metadata() const;
  /// The inverse of to_metadata; throws DataError naming `path` unless `s` is a non-empty,
  /// strictly increasing list of decimal byte codes 0..255.
  static CharVocab from_metadata(const std::string& s, const std::string& path);
  /// Ids of a string; throws DataError listing the characters (of `what`) not in the vocabulary.
  std::vector<int64_t> encode(const std::string& s, const std::string& what) const;
  /// 'c' for a printable ASCII byte, else 0xNN.
  static std::string printable(unsigned char c);
};

/// What char_lm stores in a checkpoint's metadata besides the weights.
struct CharLmMetadata {
  std::string cell;  ///< lstm | gru | rnn
  int64_t embed = 0, hidden = 0, layers = 0;
  CharVocab vocab{{}};
  int64_t steps = 0;         ///< training steps so far
  double train_loss = 0.0;   ///< as written (strtod: NaN, or 0 if not a number)
  /// Where the data order stands, for an exact resume (optional keys "data_pos", "batch",
  /// "seq", "train_chars"; -1 when the checkpoint does not hold them): the position of the
  /// next chunk in each stream, and the stream layout it refers to.
  int64_t data_pos = -1, batch = -1, seq = -1, train_chars = -1;
};

/// Reads and checks char_lm's metadata keys (format "unroll-char-lm-1", cell, embed, hidden,
/// layers, vocab, steps, train_loss; optionally data_pos, batch, seq, train_chars); throws
/// DataError naming `path` and the key.
CharLmMetadata parse_char_lm_metadata(const Metadata& metadata, const std::string& path);

// ---- classify -----------------------------------------------------------------------------

/// One labelled sentence.
struct TextExample {
  std::string label, text;
};

/// Parses `label<TAB>text` (format "tsv") or `label ||| text` (format "sst") lines; blank
/// lines are skipped and a trailing '\r' is dropped. Throws unroll::Error ("classify: ...")
/// naming `path` and the line on a malformed line, or when there is no example.
std::vector<TextExample> parse_text_examples(std::istream& in, const std::string& path, const std::string& format);

/// The same from the file at `path` (throws unroll::Error if it cannot be opened).
std::vector<TextExample> read_text_examples(const std::string& path, const std::string& format);

// ---- digits -------------------------------------------------------------------------------

/// The 8x8 handwritten digits (shared/data/digits/digits.csv: one image a line, 64 pixels
/// 0..16 row by row, then the label 0..9), split as every example uses them: image i
/// (0-based, in file order) is test when i % 5 == 4, i.e. every 5th image, else train.
struct DigitsSet {
  std::vector<float> pixels;    ///< [N*64], row by row, scaled to [0,1] (value / 16)
  std::vector<int64_t> labels;  ///< [N] in 0..9
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
};
struct DigitsSplit {
  DigitsSet train, test;
};

/// Parses digits.csv; blank lines are skipped and a trailing '\r' is dropped. Throws
/// DataError naming `path` and the line when a line has not 65 integer fields, a pixel is
/// outside 0..16 or a label outside 0..9, or when there is no image.
DigitsSplit parse_digits(std::istream& in, const std::string& path);
/// The same from the file at `path` (throws DataError if it cannot be opened).
DigitsSplit read_digits(const std::string& path);

/// Where the shared data folder's `relative` file is (e.g. "digits/digits.csv"): the first
/// existing `<dir>/shared/data/<relative>` for `dir` the working directory and each of its
/// parents (so `shared/` beside the project is found), then the same from the project's
/// source folder (UNROLL_SOURCE_DIR); "" when there is none. The data is never part of the
/// project.
std::string find_shared_data(const std::string& relative);

}  // namespace unroll::examples
