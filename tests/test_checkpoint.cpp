// Checkpoints (safetensors): round trips, the exact bytes, atomic saves, and a reader that
// survives corrupted and hostile files with a clear error.
#include <doctest/doctest.h>

#include <unroll.h>

#include "core/atomic_file.h"
#include "core/testing_hooks.h"
#include "nn/checkpoint.h"
#include "test_support.h"
#include "nn/layers.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace unroll;
namespace fs = std::filesystem;
using test_support::read_bytes;
using test_support::scratch;

namespace {

struct Net : Module {
  std::shared_ptr<Linear> fc1 = register_module("fc1", std::make_shared<Linear>(3, 5));
  std::shared_ptr<Linear> fc2 = register_module("fc2", std::make_shared<Linear>(5, 2));
  Variable forward(const Variable& x) const { return (*fc2)(tanh((*fc1)(x))); }
};

struct OtherNet : Module {
  std::shared_ptr<Linear> fc1 = register_module("fc1", std::make_shared<Linear>(3, 5));
  std::shared_ptr<Linear> fc3 = register_module("fc3", std::make_shared<Linear>(5, 2));
};

/// Names in `dir` that look like a leftover temporary of an atomic save.
int count_temporaries(const fs::path& dir) {
  int n = 0;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename().string().find(".tmp-") != std::string::npos) ++n;
  return n;
}

/// A file: the 8-byte length (of `header` unless given), the header, then `data_bytes` zeros.
std::vector<uint8_t> file_of(std::string_view header, size_t data_bytes = 0) {
  std::vector<uint8_t> b(8 + header.size() + data_bytes, 0);
  const uint64_t n = header.size();
  std::memcpy(b.data(), &n, 8);
  std::memcpy(b.data() + 8, header.data(), header.size());
  return b;
}

std::vector<uint8_t> file_with_length(uint64_t n, std::string_view rest) {
  std::vector<uint8_t> b(8 + rest.size());
  std::memcpy(b.data(), &n, 8);
  std::memcpy(b.data() + 8, rest.data(), rest.size());
  return b;
}

SafetensorsFile parse(const std::vector<uint8_t>& bytes) { return parse_safetensors(bytes, "hostile"); }

/// One well-formed F32 entry for hand-written headers.
std::string entry(const std::string& name, const std::string& shape, uint64_t begin, uint64_t end) {
  return fmt::format(R"("{}":{{"dtype":"F32","shape":{},"data_offsets":[{},{}]}})", name, shape, begin, end);
}

}  // namespace

TEST_CASE("save and load a Module: identical parameters and outputs in a fresh model") {
  const fs::path dir = scratch("roundtrip");
  const std::string path = (dir / "net.safetensors").string();
  manual_seed(1);
  Net a;
  manual_seed(2);
  Net b;
  CHECK_FALSE(equal(a.fc1->weight.data(), b.fc1->weight.data()));
  save(a, path, {{"epoch", "3"}});

  const Metadata meta = load(b, path);
  CHECK(meta.at("epoch") == "3");
  for (const auto& [name, p] : a.named_parameters()) {
    INFO(name);
    CHECK(equal(p.data(), b.state_dict().at(name)));
  }
  Generator gen(7);
  Variable x(randn({4, 3}, gen));
  CHECK(equal(a.forward(x).data(), b.forward(x).data()));
  CHECK(count_temporaries(dir) == 0);

  // The file keys are PyTorch's state_dict names, in state_dict order.
  SafetensorsFile file = load_safetensors(path);
  std::vector<std::string> keys;
  for (const auto& [k, v] : file.tensors) keys.push_back(k);
  CHECK(keys == std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"});
  CHECK(file.tensors.at("fc1.weight").shape() == Shape{5, 3});
}

TEST_CASE("metadata round trip: quotes, backslashes, newlines, control characters and UTF-8") {
  const fs::path dir = scratch("metadata");
  const std::string path = (dir / "m.safetensors").string();
  const Metadata meta = {
      {"format", "pt"},
      {"quote\"key", "a \"quoted\" value"},
      {"backslash", "C:\\path\\to\\file\\"},
      {"lines", "one\ntwo\r\nthree\tfour"},
      {"control", std::string("nul\0bell\a\x1f", 10)},
      {"utf8", "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"},  // héllo € 😀
      {"", ""},
  };
  save_safetensors(path, StateDict{}, meta);
  SafetensorsFile file = load_safetensors(path);
  CHECK(file.metadata == meta);
  CHECK(file.tensors.size() == 0);
  // Escaped in the JSON text, not raw.
  const std::vector<uint8_t> bytes = read_bytes(path);
  const std::string text(bytes.begin() + 8, bytes.end());
  CHECK(text.find(R"("lines":"one\ntwo\r\nthree\tfour")") != std::string::npos);
  CHECK(text.find(R"("control":"nul\u0000bell\u0007\u001f")") != std::string::npos);
  CHECK(text.find(R"("quote\"key":"a \"quoted\" value")") != std::string::npos);
}

TEST_CASE("each tensor keeps its dtype on save; load converts to the parameter's dtype") {
  const fs::path dir = scratch("dtypes");
  const std::string path = (dir / "f64.safetensors").string();
  manual_seed(3);
  Net a;
  a.to(DType::F64);
  save(a, path);
  SafetensorsFile file = load_safetensors(path);
  CHECK(file.tensors.at("fc2.bias").dtype() == DType::F64);

  Net b;  // float32 parameters
  load(b, path);
  CHECK(b.fc2->bias.dtype() == DType::F32);
  CHECK(equal(b.fc2->bias.data(), a.fc2->bias.data().to(DType::F32)));

  // I64, a scalar, an empty tensor and a 0-size tensor between two others.
  StateDict s;
  s.insert("idx", indices({5, -7, int64_t{1} << 40}));
  s.insert("scalar", scalar_tensor(2.5, DType::F64));
  s.insert("empty", zeros({0, 3}));
  s.insert("m", tensor({1, 2, 3, 4}, {2, 2}));
  const std::string mixed = (dir / "mixed.safetensors").string();
  save_safetensors(mixed, s);
  SafetensorsFile back = load_safetensors(mixed);
  REQUIRE(back.tensors.size() == 4);
  CHECK(back.tensors.at("idx").to_indices() == std::vector<int64_t>{5, -7, int64_t{1} << 40});
  CHECK(back.tensors.at("scalar").shape() == Shape{});
  CHECK(back.tensors.at("scalar").item() == 2.5);
  CHECK(back.tensors.at("empty").shape() == Shape{0, 3});
  CHECK(equal(back.tensors.at("m"), s.at("m")));
}

TEST_CASE("Bool tensors are stored as safetensors BOOL, one byte each; a byte other than 0/1 is refused") {
  const fs::path dir = scratch("bool");
  StateDict s;
  s.insert("mask", gt(tensor({-1, 2, 0, 5, 3}), 1.0));  // 0 1 0 1 1
  const std::string path = (dir / "mask.safetensors").string();
  save_safetensors(path, s);
  const Tensor back = load_safetensors(path).tensors.at("mask");
  CHECK(back.dtype() == DType::Bool);
  CHECK(equal(back, s.at("mask")));
  CHECK(back.to_vector() == std::vector<double>{0, 1, 0, 1, 1});

  const std::string header = R"({"m":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})";
  std::vector<uint8_t> bytes = file_of(header, 3);
  bytes[8 + header.size() + 1] = 1;
  CHECK(parse(bytes).tensors.at("m").to_vector() == std::vector<double>{0, 1, 0});
  bytes[8 + header.size() + 2] = 2;
  CHECK_THROWS_WITH_AS(parse(bytes),
                       doctest::Contains("safetensors 'hostile': tensor 'm': BOOL element 2 holds byte 2, not 0 or 1"),
                       Error);
}

TEST_CASE("the bytes of a one-tensor file, checked against the format by hand") {
  const fs::path dir = scratch("bytes");
  const std::string path = (dir / "w.safetensors").string();
  StateDict s;
  s.insert("w", tensor({1.5, -2.0}, {2}));
  save_safetensors(path, s);
  const std::vector<uint8_t> bytes = read_bytes(path);

  // 54 bytes of JSON + 2 spaces = 56, so the data starts at 8 + 56 = 64, a multiple of 8.
  const std::string json = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  REQUIRE(json.size() == 54);
  REQUIRE(bytes.size() == 8 + 56 + 8);
  const std::vector<uint8_t> length(bytes.begin(), bytes.begin() + 8);
  CHECK(length == std::vector<uint8_t>{56, 0, 0, 0, 0, 0, 0, 0});
  CHECK(std::string(bytes.begin() + 8, bytes.begin() + 64) == json + "  ");
  // 1.5f = 0x3FC00000 and -2.0f = 0xC0000000, little-endian.
  const std::vector<uint8_t> data(bytes.begin() + 64, bytes.end());
  CHECK(data == std::vector<uint8_t>{0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x00, 0xC0});
}

TEST_CASE("reads headers written by others: whitespace, escapes, field order, unknown fields") {
  // Data laid out in a different order than the header, a scalar, an empty tensor, odd padding.
  const std::string header =
      "{ \"__metadata__\" : {\"format\": \"pt\"},\n"
      "  \"b\": {\"dtype\": \"F64\", \"shape\": [], \"data_offsets\": [8, 16]},\n"
      "  \"a\\u00e9\\ud83d\\ude00\\/\": {\"shape\": [1, 2], \"data_offsets\": [0, 8], \"dtype\": \"F32\",\n"
      "        \"extra\": {\"k\": [1, -2.5e+3, 0.0, true, false, null, \"s\"], \"o\": {}}},\n"
      "  \"e\": {\"dtype\": \"F32\", \"shape\": [0, 3], \"data_offsets\": [16, 16]}\n"
      "}   ";
  std::vector<uint8_t> bytes = file_of(header, 16);
  const float a[2] = {3.0F, -1.0F};
  const double b = 0.25;
  std::memcpy(bytes.data() + 8 + header.size(), a, 8);
  std::memcpy(bytes.data() + 8 + header.size() + 8, &b, 8);
  SafetensorsFile f = parse(bytes);
  CHECK(f.metadata == Metadata{{"format", "pt"}});
  REQUIRE(f.tensors.size() == 3);
  const Tensor& ta = f.tensors.at("a\xc3\xa9\xf0\x9f\x98\x80/");
  CHECK(ta.shape() == Shape{1, 2});
  CHECK(ta.to_vector() == std::vector<double>{3.0, -1.0});
  CHECK(f.tensors.at("b").item() == 0.25);
  CHECK(f.tensors.at("e").numel() == 0);
}

TEST_CASE("save is atomic: a missing directory creates nothing") {
  const fs::path dir = scratch("missing_dir");
  const fs::path target = dir / "no_such_dir" / "x.safetensors";
  StateDict s;
  s.insert("w", ones({2}));
  CHECK_THROWS_WITH_AS(save_safetensors(target.string(), s), doctest::Contains("cannot create"), Error);
  CHECK_FALSE(fs::exists(dir / "no_such_dir"));
  CHECK(fs::is_empty(dir));
}

TEST_CASE("save is atomic: a write failure midway keeps the previous file and leaves no temporary") {
  const fs::path dir = scratch("fault");
  const std::string path = (dir / "net.safetensors").string();
  manual_seed(4);
  Net a;
  save(a, path, {{"version", "a"}});
  const std::vector<uint8_t> before = read_bytes(path);
  manual_seed(5);
  Net b;

  const int64_t size = static_cast<int64_t>(before.size());
  for (int64_t fail_after : {int64_t{0}, int64_t{3}, int64_t{8}, int64_t{40}, size / 2, size - 1}) {
    CAPTURE(fail_after);
    testing::set_atomic_write_fault(fail_after);
    CHECK_THROWS_WITH_AS(save(b, path, {{"version", "b"}}), doctest::Contains("simulated fault"), Error);
    CHECK(read_bytes(path) == before);
    CHECK(count_temporaries(dir) == 0);
    Net c;
    CHECK(load(c, path).at("version") == "a");
    CHECK(equal(c.fc2->weight.data(), a.fc2->weight.data()));
  }
  // The fault is used up by one save: the next one replaces the file.
  testing::set_atomic_write_fault(0);
  CHECK_THROWS_AS(save(b, path), Error);
  save(b, path, {{"version", "b"}});
  Net c;
  CHECK(load(c, path).at("version") == "b");
  CHECK(equal(c.fc2->weight.data(), b.fc2->weight.data()));
  CHECK(count_temporaries(dir) == 0);

  // A rename that fails (the target is a directory) also removes the temporary.
  fs::create_directory(dir / "taken");
  CHECK_THROWS_WITH_AS(save(b, (dir / "taken").string()), doctest::Contains("cannot rename"), Error);
  CHECK(count_temporaries(dir) == 0);
}

TEST_CASE("corrupted bytes and truncations either load or throw unroll::Error, never crash") {
  const fs::path dir = scratch("corrupt");
  const std::string path = (dir / "net.safetensors").string();
  manual_seed(6);
  Net net;
  save(net, path, {{"format", "pt"}, {"note", "x\"y"}});
  const std::vector<uint8_t> good = read_bytes(path);
  uint64_t n;
  std::memcpy(&n, good.data(), 8);
  const size_t data_start = 8 + static_cast<size_t>(n);
  REQUIRE(parse_safetensors(good).tensors.size() == 4);

  int tried = 0, rejected = 0;
  // Each variant is its own exactly-sized heap buffer, so a sanitizer sees any over-read.
  auto attempt = [&](const std::vector<uint8_t>& bytes) {
    ++tried;
    try {
      SafetensorsFile f = parse_safetensors(bytes, "fuzz");
      for (const auto& [k, t] : f.tensors) CHECK(static_cast<size_t>(t.numel()) * dtype_size(t.dtype()) <= bytes.size());
      return true;
    } catch (const Error&) {
      ++rejected;
      return false;
    }
  };

  const uint8_t values[] = {0x00, 0x01, 0x20, '"', '\\', '{', '}', '[', ']', ',', ':', '0', '9', '-', '.', 'e', 'u', 0x7F, 0x80, 0xC3, 0xED, 0xFF};
  for (size_t i = 0; i < data_start; ++i) {
    for (uint8_t v : values) {
      std::vector<uint8_t> bytes = good;
      bytes[i] = v;
      attempt(bytes);
    }
    std::vector<uint8_t> flipped = good;
    flipped[i] ^= 0xFF;
    attempt(flipped);
  }
  for (size_t i = data_start; i < good.size(); i += 3) {
    std::vector<uint8_t> bytes = good;
    bytes[i] ^= 0x5A;
    CHECK(attempt(bytes));  // data corruption is undetectable: the file still loads
  }
  int truncations_accepted = 0;
  for (size_t len = 0; len < good.size(); ++len)
    truncations_accepted += attempt(std::vector<uint8_t>(good.begin(), good.begin() + static_cast<ptrdiff_t>(len)));
  CHECK(truncations_accepted == 0);  // the spec's full coverage makes every truncation detectable
  Generator gen(11);
  for (int k = 0; k < 3000; ++k) {
    std::vector<uint8_t> bytes = good;
    const int edits = 1 + static_cast<int>(gen.randint(0, 4));
    for (int e = 0; e < edits; ++e)
      bytes[static_cast<size_t>(gen.randint(0, static_cast<int64_t>(data_start)))] = static_cast<uint8_t>(gen.randint(0, 256));
    attempt(bytes);
  }
  MESSAGE("corruption: ", tried, " variants tried, ", rejected, " rejected with unroll::Error, ", tried - rejected,
          " loaded");
  CHECK(rejected > tried / 2);
  CHECK(rejected < tried);  // e.g. a changed padding space or metadata letter still loads
}

TEST_CASE("hostile headers give clear errors naming the file and the problem") {
  using doctest::Contains;
  SUBCASE("sizes") {
    CHECK_THROWS_WITH_AS(parse({1, 2, 3, 4, 5}), Contains("safetensors 'hostile': the file has 5 bytes, shorter than the 8-byte"), Error);
    CHECK_THROWS_WITH_AS(parse(file_with_length(uint64_t{1} << 63, "{}")),
                         Contains("header length 9223372036854775808 is absurd"), Error);
    CHECK_THROWS_WITH_AS(parse(file_with_length(100'000'001, "{}")), Contains("is absurd"), Error);
    CHECK_THROWS_WITH_AS(parse(file_with_length(3, "{}")), Contains("header length 3 reaches beyond the end of the 10-byte file"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of("")), Contains("must be a JSON object"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of("[1]")), Contains("must be a JSON object"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of(" {}")), Contains("must be a JSON object"), Error);
    CHECK(parse(file_of("{}      ")).tensors.size() == 0);
  }
  SUBCASE("offsets") {
    CHECK_THROWS_WITH_AS(parse(file_of("{" + entry("a", "[2]", 0, 8) + "}", 4)),
                         Contains("tensor 'a': data_offsets [0, 8] reach beyond the end of the 4-byte data buffer"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of("{" + entry("a", "[2]", 0, 8) + "," + entry("b", "[2]", 4, 12) + "}", 12)),
                         Contains("tensors 'a' [0, 8] and 'b' [4, 12] overlap"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of("{" + entry("b", "[2]", 0, 8) + "," + entry("a", "[2]", 0, 8) + "}", 8)),
                         Contains("overlap"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of("{" + entry("a", "[1]", 0, 4) + "," + entry("b", "[1]", 8, 12) + "}", 12)),
                         Contains("bytes [4, 8) of the data buffer belong to no tensor"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of("{" + entry("a", "[1]", 0, 4) + "}", 8)),
                         Contains("the last 4 bytes of the data buffer belong to no tensor"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of("{" + entry("a", "[1]", 8, 4) + "}", 8)), Contains("begin after they end"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of("{" + entry("a", "[3]", 0, 8) + "}", 8)),
                         Contains("shape [3] of F32 needs 12 bytes but data_offsets [0, 8] hold 8"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", 8)),
                         Contains("\"data_offsets\" has more than 2 entries"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4]}})", 4)),
                         Contains("must be two integers [begin, end], got 1"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of("{" + entry("a", "[1]", 0, 18446744073709551615ULL) + "}", 4)),
                         Contains("reach beyond"), Error);
  }
  SUBCASE("shapes") {
    CHECK_THROWS_WITH_AS(parse(file_of("{" + entry("a", "[4294967296,4294967296]", 0, 0) + "}")),
                         Contains("shape [4294967296,4294967296] overflows"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of("{" + entry("a", "[2305843009213693952,2]", 0, 0) + "}")),
                         Contains("its byte count does not fit"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of("{" + entry("a", "[18446744073709551615,0]", 0, 0) + "}")), Contains("overflows"),
                         Error);
    CHECK_THROWS_WITH_AS(parse(file_of("{" + entry("a", "[18446744073709551616]", 0, 0) + "}")),
                         Contains("18446744073709551616, which does not fit in 64 bits"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of("{" + entry("a", "[-1]", 0, 0) + "}")), Contains("negative number -1"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of("{" + entry("a", "[1.5]", 0, 0) + "}")), Contains("non-integer 1.5"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of("{" + entry("a", "[1e2]", 0, 0) + "}")), Contains("non-integer 1e2"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of("{" + entry("a", "[01]", 0, 0) + "}")), Contains("leading zeros"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of("{" + entry("a", "[\"2\"]", 0, 0) + "}")), Contains("must hold integers"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of("{" + entry("a", "2", 0, 0) + "}")), Contains("must be an array of integers"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of("{" + entry("a", "[1,1,1,1,1,1,1,1,1]", 0, 4) + "}", 4)),
                         Contains("\"shape\" has more than 8 entries"), Error);
  }
  SUBCASE("dtypes and fields") {
    CHECK_THROWS_WITH_AS(parse(file_of(R"({"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})", 4)),
                         Contains("tensor 'a': unsupported dtype 'BF16' (unroll reads F32, F64, I64 and BOOL)"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of(R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", 4)),
                         Contains("unsupported dtype 'F16'"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of(R"({"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,4]}})", 4)),
                         Contains("unknown dtype 'Q7'"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of(R"({"a":{"dtype":32,"shape":[2],"data_offsets":[0,8]}})", 8)),
                         Contains("\"dtype\" must be a string"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", 8)),
                         Contains("tensor 'a': missing field \"dtype\""), Error);
    CHECK_THROWS_WITH_AS(parse(file_of(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", 8)),
                         Contains("missing field \"shape\""), Error);
    CHECK_THROWS_WITH_AS(parse(file_of(R"({"a":{"dtype":"F32","shape":[2]}})", 8)),
                         Contains("missing field \"data_offsets\""), Error);
    CHECK_THROWS_WITH_AS(parse(file_of(R"({"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8)),
                         Contains("duplicate field \"dtype\""), Error);
    CHECK_THROWS_WITH_AS(parse(file_of(R"({"a":[1]})")), Contains("tensor 'a': the entry must be an object"), Error);
  }
  SUBCASE("keys and metadata") {
    CHECK_THROWS_WITH_AS(parse(file_of("{" + entry("a", "[1]", 0, 4) + "," + entry("a", "[1]", 4, 8) + "}", 8)),
                         Contains("duplicate tensor name 'a'"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of(R"({"__metadata__":{"k":1}})")), Contains("metadata value of 'k' must be a string"),
                         Error);
    CHECK_THROWS_WITH_AS(parse(file_of(R"({"__metadata__":{"k":"a","k":"b"}})")), Contains("duplicate metadata key 'k'"),
                         Error);
    CHECK_THROWS_WITH_AS(parse(file_of(R"({"__metadata__":{},"__metadata__":{}})")),
                         Contains("duplicate key \"__metadata__\""), Error);
    CHECK_THROWS_WITH_AS(parse(file_of(R"({"__metadata__":["x"]})")), Contains("must be an object of strings"), Error);
  }
  SUBCASE("JSON syntax") {
    CHECK_THROWS_WITH_AS(parse(file_of("{} x")), Contains("trailing garbage 'x' after the JSON object"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of("{}{}")), Contains("trailing garbage"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of(std::string("{}\0\0", 4))), Contains("trailing garbage byte 0x00"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of("{\"a")), Contains("unterminated string"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of("{\"a\":")), Contains("the entry must be an object"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of("{,}")), Contains("header byte 1: expected a string key"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of("{\"__metadata__\":{},}")), Contains("expected a string key"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of("{\"__metadata__\":{} \"a\"}")), Contains("expected ',' or '}'"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of("{\"a\xc3\x28\":{}}")), Contains("invalid UTF-8"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of("{\"a\xc0\xaf\":{}}")), Contains("invalid UTF-8"), Error);          // overlong '/'
    CHECK_THROWS_WITH_AS(parse(file_of("{\"a\xed\xa0\x80\":{}}")), Contains("invalid UTF-8"), Error);      // a surrogate
    CHECK_THROWS_WITH_AS(parse(file_of("{\"a\xf4\x90\x80\x80\":{}}")), Contains("invalid UTF-8"), Error);  // > U+10FFFF
    CHECK_THROWS_WITH_AS(parse(file_of("{\xc3\xa9}")), Contains("expected a string key"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of("{\"a\nb\":{}}")), Contains("control character 0x0a"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of(R"({"\ud800":{}})")), Contains("not followed by a low surrogate"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of(R"({"\udc00":{}})")), Contains("lone low surrogate"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of(R"({"\u12G4":{}})")), Contains("invalid hex digit"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of(R"({"\x":{}})")), Contains("invalid escape sequence"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of(R"({"a":{"x":tru}})")), Contains("expected a JSON value"), Error);
    CHECK_THROWS_WITH_AS(parse(file_of(R"({"a":{"x":-}})")), Contains("invalid number"), Error);
  }
  SUBCASE("10,000-deep nesting is refused without deep recursion") {
    const std::string deep = std::string(10000, '[') + std::string(10000, ']');
    CHECK_THROWS_WITH_AS(parse(file_of(R"({"a":{"x":)" + deep + R"(,"dtype":"F32","shape":[],"data_offsets":[0,4]}})", 4)),
                         Contains("JSON nested deeper than 64 levels"), Error);
    const std::string objects = [] {
      std::string s;
      for (int i = 0; i < 10000; ++i) s += "{\"k\":";
      return s + "1" + std::string(10000, '}');
    }();
    CHECK_THROWS_WITH_AS(parse(file_of(R"({"a":{"x":)" + objects + "}}")), Contains("nested deeper"), Error);
  }
  SUBCASE("load_safetensors names the path") {
    const fs::path dir = scratch("hostile");
    CHECK_THROWS_WITH_AS(load_safetensors((dir / "absent.safetensors").string()),
                         Contains(("cannot open '" + (dir / "absent.safetensors").string() + "'").c_str()), Error);
    const std::vector<uint8_t> bad = file_of("{} x");
    const fs::path bad_path = dir / "bad.safetensors";
    std::ofstream(bad_path, std::ios::binary).write(reinterpret_cast<const char*>(bad.data()), static_cast<std::streamsize>(bad.size()));
    CHECK_THROWS_WITH_AS(load_safetensors(bad_path.string()),
                         Contains(("safetensors '" + bad_path.string() + "': header byte 3: trailing garbage").c_str()), Error);
    CHECK_THROWS_WITH_AS(load_safetensors(dir.string()), Contains("is not a regular file"), Error);
  }
}

TEST_CASE("the writer refuses what it cannot write faithfully") {
  const fs::path dir = scratch("writer");
  const std::string path = (dir / "w.safetensors").string();
  StateDict reserved;
  reserved.insert("__metadata__", ones({1}));
  CHECK_THROWS_WITH_AS(save_safetensors(path, reserved), doctest::Contains("'__metadata__' is reserved"), Error);
  CHECK_THROWS_WITH_AS(save_safetensors(path, StateDict{}, {{"k", "bad \xff utf8"}}),
                       doctest::Contains("metadata value 'bad \xff utf8' is not valid UTF-8"), Error);
  StateDict undefined;
  undefined.insert("u", Tensor());
  CHECK_THROWS_WITH_AS(save_safetensors(path, undefined), doctest::Contains("tensor 'u' is undefined"), Error);
  CHECK(fs::is_empty(dir));
}

TEST_CASE("loading into a model with missing or unexpected keys lists them") {
  const fs::path dir = scratch("keys");
  const std::string path = (dir / "net.safetensors").string();
  manual_seed(8);
  Net net;
  save(net, path);
  OtherNet other;
  const Tensor before = other.fc3->weight.data().clone();
  CHECK_THROWS_WITH_AS(load(other, path), doctest::Contains("missing keys: fc3.weight, fc3.bias"), Error);
  CHECK_THROWS_WITH_AS(load(other, path), doctest::Contains("unexpected keys: fc2.weight, fc2.bias"), Error);
  CHECK_THROWS_WITH_AS(load(other, path), doctest::Contains(("load '" + path + "': load_state_dict").c_str()), Error);
  // Non-strict: what matches loads, the rest is left alone.
  load(other, path, false);
  CHECK(equal(other.fc1->weight.data(), net.fc1->weight.data()));
  CHECK(equal(other.fc3->weight.data(), before));

  StateDict wrong;
  wrong.insert("fc1.weight", zeros({3, 5}));
  save_safetensors(path, wrong);
  CHECK_THROWS_WITH_AS(load(other, path, false), doctest::Contains("fc1.weight: checkpoint [3,5] vs model [5,3]"), Error);
}
