#include "common/cli.h"

#include "common/plot.h"
#include "core/json.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <unistd.h>

namespace unroll::examples {

Cli::Cli(int argc, char** argv, std::string description) : description_(std::move(description)) {
  const std::filesystem::path self(argc > 0 ? argv[0] : "example");
  program_ = self.filename().string();
  dir_ = self.has_parent_path() ? self.parent_path().string() : ".";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      help_ = true;
      continue;
    }
    if (a.rfind("--", 0) != 0) {
      errors_.push_back(fmt::format("unexpected argument '{}'", a));
      continue;
    }
    a = a.substr(2);
    const size_t eq = a.find('=');
    if (eq != std::string::npos) given_[a.substr(0, eq)] = a.substr(eq + 1);
    else if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) given_[a] = argv[++i];
    else given_[a] = "";
  }
}

const std::string* Cli::find(const std::string& name) {
  used_.push_back(name);
  auto it = given_.find(name);
  return it == given_.end() ? nullptr : &it->second;
}

int64_t Cli::get_int(const std::string& name, int64_t def, const std::string& help) {
  usage_.push_back(fmt::format("  --{:<16} {} (default {})", name + " N", help, def));
  const std::string* v = find(name);
  if (!v) return def;
  char* end = nullptr;
  const long long r = std::strtoll(v->c_str(), &end, 10);
  if (v->empty() || *end) errors_.push_back(fmt::format("--{} expects an integer, got '{}'", name, *v));
  return r;
}

double Cli::get_double(const std::string& name, double def, const std::string& help) {
  usage_.push_back(fmt::format("  --{:<16} {} (default {})", name + " X", help, def));
  const std::string* v = find(name);
  if (!v) return def;
  char* end = nullptr;
  const double r = std::strtod(v->c_str(), &end);
  if (v->empty() || *end || !std::isfinite(r)) errors_.push_back(fmt::format("--{} expects a number, got '{}'", name, *v));
  return r;
}

std::string Cli::get_string(const std::string& name, const std::string& def, const std::string& help) {
  usage_.push_back(fmt::format("  --{:<16} {}{}", name + " S", help, def.empty() ? "" : fmt::format(" (default {})", def)));
  const std::string* v = find(name);
  return v ? *v : def;
}

bool Cli::get_flag(const std::string& name, const std::string& help) {
  usage_.push_back(fmt::format("  --{:<16} {}", name, help));
  const std::string* v = find(name);
  if (v && !v->empty()) errors_.push_back(fmt::format("--{} takes no value, got '{}'", name, *v));
  return v != nullptr;
}

uint64_t Cli::seed() { return static_cast<uint64_t>(get_int("seed", 0, "random seed (same seed, same run)")); }
bool Cli::json() { return get_flag("json", "end with one JSON line of the final metrics on stdout"); }
std::string Cli::out_path() { return get_string("out", dir_ + "/out/" + program_, "folder for figures and files"); }
std::string Cli::out_dir() {
  std::string d = out_path();
  plot::make_dirs(d);
  return d;
}

void Cli::done() {
  if (help_) {
    fmt::print("{}\n\nusage: {} [flags]\n{}\n  --help             this text\n", description_, program_,
               fmt::join(usage_, "\n"));
    std::exit(0);
  }
  for (const auto& [k, v] : given_)
    if (std::find(used_.begin(), used_.end(), k) == used_.end())
      errors_.push_back(fmt::format("unknown flag --{} (see --help)", k));
  if (!errors_.empty()) {
    for (const std::string& e : errors_) fmt::print(stderr, "{}: {}\n", program_, e);
    std::exit(2);
  }
}

Progress::Progress(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled), start_(std::chrono::steady_clock::now()),
      last_(start_ - std::chrono::seconds(1)) {}

double Progress::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(int64_t step, double loss, const std::string& extra) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (step < total_ && now - last_ < std::chrono::milliseconds(isatty(2) ? 200 : 5000)) return;
  last_ = now;
  const double el = seconds();
  const double rate = step > 0 ? static_cast<double>(step) / el : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total_ - step) / rate : 0.0;
  fmt::print(stderr, "{}{} step {}/{}  loss {:.4f}  {:.0f} steps/s  ETA {:.0f}s {}{}", isatty(2) ? "\r\033[K" : "",
             label_, step, total_, loss, rate, eta, extra, isatty(2) ? "" : "\n");
  printed_ = true;
}

void Progress::finish() {
  if (enabled_ && printed_ && isatty(2)) fmt::print(stderr, "\n");
  printed_ = false;
}

int report_error(const char* program, const char* argv0, ErrorPrefix prefix, int exit_code, const char* message) {
  switch (prefix) {
    case ErrorPrefix::program_error: fmt::print(stderr, "{}: error: {}\n", program, message); break;
    case ErrorPrefix::program: fmt::print(stderr, "{}: {}\n", program, message); break;
    case ErrorPrefix::argv0: fmt::print(stderr, "{}: {}\n", argv0, message); break;
    case ErrorPrefix::none: fmt::print(stderr, "{}\n", message); break;
  }
  return exit_code;
}

JsonLine& JsonLine::add(const std::string& key, double value) {
  items_.emplace_back(key, std::isfinite(value) ? fmt::format("{}", value) : "null");
  return *this;
}
JsonLine& JsonLine::add(const std::string& key, const std::string& value) {
  items_.emplace_back(key, json_quote(value));
  return *this;
}
JsonLine& JsonLine::add_raw(const std::string& key, const std::string& json) {
  items_.emplace_back(key, json);
  return *this;
}
std::string JsonLine::str() const {
  std::string s = "{";
  for (size_t i = 0; i < items_.size(); ++i)
    s += (i ? ", " : "") + json_quote(items_[i].first) + ": " + items_[i].second;
  return s + "}";
}

}  // namespace unroll::examples
