// write_html / write_state_html: the writer's JSON and escaping, and the page in a real
// browser (headless chromium; skipped with the reason when it is not installed).
#include <doctest/doctest.h>
#include <unroll.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

using namespace unroll;

namespace {

// A tanh RNN unrolled T steps with a shared weight, under StepScope, traced.
Variable rnn_loss(int T, Variable& w, const std::string& name) {
  Variable h(zeros({1, 3}));
  for (int t = 0; t < T; ++t) {
    StepScope step(t);
    h = tanh(matmul(h, w, false, true) + 0.1 * (t + 1));
  }
  Variable loss = sum(h * h);
  loss.set_name(name);
  return loss;
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

int64_t field(const std::string& text, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(key + "=(\\d+)"))) return -1;
  return std::stoll(m[1]);
}

}  // namespace

TEST_CASE("to_html: node count in the JSON equals the graph's; names cannot break the page") {
  Generator gen(0);
  Variable w(randn({3, 3}, gen) * 0.5, true);
  w.set_name("W \"quoted\" </script><b>x</b> & 'q'");
  GraphTrace trace;
  Variable loss = rnn_loss(5, w, "loss</script><script>alert(1)</script>");
  loss.backward();
  const std::string page = to_html(loss, {.title = "t </script> \"<i>\""});
  CHECK(count(page, "{\"id\":") == static_cast<size_t>(graph_size(loss)));
  CHECK(page.find(fmt::format("\"n\":{},", graph_size(loss))) != std::string::npos);
  // Exactly the two script elements of the template, and one closing tag each.
  CHECK(count(page, "</script>") == 2);
  CHECK(count(page, "<script") == 2);
  CHECK(page.find("<b>") == std::string::npos);
  CHECK(page.find("<title>t &lt;/script&gt; &quot;&lt;i&gt;&quot;") != std::string::npos);
  CHECK(page.find("\\u003c/script\\u003e") != std::string::npos);
  CHECK(page.find("\\\"quoted\\\"") != std::string::npos);
  // Every op has a value and a gradient summary (traced); the parameter has its gradient.
  CHECK(count(page, ",\"v\":[") == static_cast<size_t>(graph_size(loss)));
  CHECK(count(page, ",\"g\":[") == static_cast<size_t>(graph_size(loss)));
  CHECK(page.find("\"traced\":true") != std::string::npos);
}

TEST_CASE("to_html without a trace: leaves only; bad input named") {
  Generator gen(1);
  Variable w(randn({3, 3}, gen), true);
  Variable loss = rnn_loss(3, w, "l");
  loss.backward();
  const std::string page = to_html(loss);
  CHECK(page.find("\"traced\":false") != std::string::npos);
  CHECK(count(page, ",\"g\":[") == 1);  // only the leaf w still holds its gradient
  CHECK_THROWS_WITH(to_html(Variable()), doctest::Contains("to_html: the Variable is undefined"));
  CHECK_THROWS_WITH(to_state_html({"a"}, zeros({2, 3})), doctest::Contains("1 tokens for 2 time steps"));
}

TEST_CASE("the pages in headless chromium: counts, replay, collapsed view, screenshots") {
  const char* bin = "/usr/bin/chromium";
  if (std::getenv("UNROLL_NO_BROWSER") || !std::ifstream(bin).good()) {
    MESSAGE("skipped: /usr/bin/chromium is not installed (apt-get install chromium)");
    return;
  }
  const std::string dir = UNROLL_TEST_TMPDIR;
  Generator gen(0);
  Variable w(randn({3, 3}, gen) * 0.5, true);
  GraphTrace trace;
  const int T = 12;
  Variable loss = rnn_loss(T, w, "loss </script>\"");
  loss.backward();
  const std::string path = dir + "/rnn.html";
  write_html(loss, path, {.title = "tanh RNN </script> test"});
  const std::string flags = " --headless --no-sandbox --disable-gpu --window-size=1400,900 ";
  const std::string dom = run(std::string(bin) + flags + "--enable-logging=stderr --v=0 --dump-dom file://" + path +
                              " 2>" + dir + "/console.txt");
  REQUIRE(dom.find("check: nodes=") != std::string::npos);
  const int64_t n = graph_size(loss);
  CHECK(field(dom, "nodes") == n);
  CHECK(field(dom, "json_nodes") == n);
  CHECK(field(dom, "drawn") == n);
  CHECK(field(dom, "grads") == n);  // every node received a gradient here
  CHECK(field(dom, "reached") == field(dom, "grads"));
  CHECK(field(dom, "boxes") == T);
  CHECK(field(dom, "steps") == T);
  CHECK(field(dom, "errors") == 0);
  std::ifstream log(dir + "/console.txt");
  std::stringstream ss;
  ss << log.rdbuf();
  CHECK(ss.str().find("Uncaught") == std::string::npos);
  for (const char* view : {"graph", "cells"}) {
    const std::string png = fmt::format("{}/rnn_{}.png", dir, view);
    std::remove(png.c_str());
    run(fmt::format("{}{}--screenshot={} 'file://{}#view={}&mode=backward&sel=0' 2>/dev/null", bin, flags, png, path, view));
    CHECK(std::ifstream(png).good());
  }
  // The hidden-state page.
  std::vector<std::string> tokens;
  for (char c : std::string("say \"hi\"\nok")) tokens.emplace_back(1, c);
  const std::string spath = dir + "/states.html";
  write_state_html(spath, tokens, clamp(randn({static_cast<int64_t>(tokens.size()), 8}, gen), -1, 1), "states <x>");
  const std::string sdom = run(std::string(bin) + flags + "--dump-dom file://" + spath + " 2>/dev/null");
  CHECK(field(sdom, "cells") == static_cast<int64_t>(tokens.size()) * 8);
  CHECK(field(sdom, "drawn") == static_cast<int64_t>(tokens.size()) * 8);
  CHECK(field(sdom, "errors") == 0);
  run(fmt::format("{}{}--screenshot={}/states.png 'file://{}#sort=space' 2>/dev/null", bin, flags, dir, spath));
}
