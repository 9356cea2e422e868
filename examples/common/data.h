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

}  // namespace unroll::examples
