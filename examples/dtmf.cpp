// A signal as sequence data (the study note's "speech signal", at toy scale): telephone
// keypad tones. Each key of a DTMF keypad sounds two sines at once, one of four row
// frequencies and one of four column frequencies (ITU-T Q.23):
//
//              1209 Hz  1336 Hz  1477 Hz  1633 Hz
//     697 Hz      1        2        3        A
//     770 Hz      4        5        6        B
//     852 Hz      7        8        9        C
//     941 Hz      *        0        #        D
//
// The waveforms are generated (seeded) at 8 kHz, as a telephone line carries them, with
// what makes a real line hard: a random level, a different level for the two tones
// ("twist", +-6 dB), frequencies off by up to +-1.5% (what Q.24 receivers must accept),
// random phases, random durations and positions, and white noise at 0-20 dB SNR.
//
// 1. Many-to-one: which key is in a 50 ms clip (400 raw samples)? Three models, same data,
//    optimizer and steps, over several seeds: an MLP on the fixed window of samples, a 1-D
//    CNN (its filters can become band-pass filters; global pooling makes it indifferent to
//    where the tone is), and a GRU reading the clip as 5 ms frames.
// 2. Many-to-many: a dialled number, several keys with silences between them, in one second
//    of signal. A CNN front end turns the samples into 5 ms frames and a bidirectional GRU
//    labels every frame (a key or silence); the keys are read off the frame labels.
//
//   ./dtmf                       # the table, then the dialled sequences
//   ./dtmf --seeds 5 --snr-min -5
#include <unroll.h>

#include "common/cli.h"
#include "common/plot.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

using namespace unroll;
using namespace unroll::examples;

// ---- signal ---------------------------------------------------------------------------------
constexpr double kRate = 8000;  // samples per second
constexpr std::array<double, 4> kRowHz = {697, 770, 852, 941};
constexpr std::array<double, 4> kColHz = {1209, 1336, 1477, 1633};
constexpr std::array<char, 16> kKeys = {'1', '2', '3', 'A', '4', '5', '6', 'B',
                                        '7', '8', '9', 'C', '*', '0', '#', 'D'};  // key k: row k/4, column k%4
constexpr int64_t kKeyCount = 16;

std::string key_name(int64_t k) { return std::string(1, kKeys[static_cast<size_t>(k)]); }

struct SignalOptions {
  double snr_min = 0, snr_max = 20;  // dB, the tone's power over the noise's
};

// Adds key k's two tones to x[start, start+len) with a random level, twist, frequency error
// and phases; returns the tone's power (for the noise level).
double add_tone(std::vector<double>& x, int64_t start, int64_t len, int64_t k, Generator& gen) {
  const double level = gen.uniform(0.1, 1.0);
  const double twist = std::pow(10.0, gen.uniform(-6, 6) / 20);
  const double a_row = level, a_col = level * twist;
  const double f_row = kRowHz[static_cast<size_t>(k / 4)] * (1 + gen.uniform(-0.015, 0.015));
  const double f_col = kColHz[static_cast<size_t>(k % 4)] * (1 + gen.uniform(-0.015, 0.015));
  const double p_row = gen.uniform(0, 2 * std::numbers::pi), p_col = gen.uniform(0, 2 * std::numbers::pi);
  for (int64_t t = 0; t < len; ++t) {
    const double s = static_cast<double>(t) / kRate;
    x[static_cast<size_t>(start + t)] +=
        a_row * std::sin(2 * std::numbers::pi * f_row * s + p_row) + a_col * std::sin(2 * std::numbers::pi * f_col * s + p_col);
  }
  return (a_row * a_row + a_col * a_col) / 2;
}

void add_noise(std::vector<double>& x, double tone_power, const SignalOptions& o, Generator& gen) {
  const double snr = gen.uniform(o.snr_min, o.snr_max);
  const double sigma = std::sqrt(tone_power / std::pow(10.0, snr / 10));
  for (double& v : x) v += sigma * gen.normal();
}

// Many-to-one: a window of W samples holding one key for 25 ms .. the whole window, at a
// random position, in noise. x [B*W], labels [B].
struct Clips {
  std::vector<double> x;
  std::vector<int64_t> key;
};

Clips make_clips(int64_t B, int64_t W, const SignalOptions& o, Generator& gen) {
  Clips c{std::vector<double>(static_cast<size_t>(B * W), 0.0), {}};
  const int64_t min_len = std::min<int64_t>(W, static_cast<int64_t>(0.025 * kRate));
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> clip(static_cast<size_t>(W), 0.0);
    const int64_t k = gen.randint(0, kKeyCount);
    const int64_t len = gen.randint(min_len, W + 1), start = gen.randint(0, W - len + 1);
    const double power = add_tone(clip, start, len, k, gen);
    add_noise(clip, power, o, gen);
    std::copy(clip.begin(), clip.end(), c.x.begin() + b * W);
    c.key.push_back(k);
  }
  return c;
}

// Many-to-many: L samples of a dialled number: keys of 40-100 ms separated by 30-80 ms of
// silence (Q.24: a receiver must take tones and pauses of 40 ms), in noise; the label of
// each frame of F samples is the key sounding at its centre + 1, or 0 for silence.
constexpr int64_t kSilence = 0;

struct Dialled {
  std::vector<double> x;                      // [L]
  std::vector<int64_t> frames;               // [L/F] labels 0..16
  std::vector<int64_t> keys;                 // the keys in order
  std::vector<std::pair<int64_t, int64_t>> spans;  // sample ranges of the keys
};

Dialled make_dialled(int64_t L, int64_t F, const SignalOptions& o, Generator& gen) {
  Dialled d{std::vector<double>(static_cast<size_t>(L), 0.0), {}, {}, {}};
  std::vector<int64_t> owner(static_cast<size_t>(L), -1);
  int64_t at = gen.randint(static_cast<int64_t>(0.01 * kRate), static_cast<int64_t>(0.08 * kRate));
  double power = 0;
  for (;;) {
    const int64_t len = gen.randint(static_cast<int64_t>(0.04 * kRate), static_cast<int64_t>(0.1 * kRate) + 1);
    if (at + len + static_cast<int64_t>(0.02 * kRate) > L) break;
    const int64_t k = gen.randint(0, kKeyCount);
    power = std::max(power, add_tone(d.x, at, len, k, gen));
    for (int64_t t = at; t < at + len; ++t) owner[static_cast<size_t>(t)] = k;
    d.keys.push_back(k);
    d.spans.emplace_back(at, at + len);
    at += len + gen.randint(static_cast<int64_t>(0.03 * kRate), static_cast<int64_t>(0.08 * kRate) + 1);
  }
  add_noise(d.x, power > 0 ? power : 0.25, o, gen);
  for (int64_t f = 0; f < L / F; ++f) d.frames.push_back(owner[static_cast<size_t>(f * F + F / 2)] + 1);
  return d;
}

// ---- models ---------------------------------------------------------------------------------
// Every classifier maps a batch of windows x [B,W] to logits [B,16].
struct Classifier : Module {
  virtual Variable forward(const Variable& x) = 0;  // [B,W] -> [B,16]
};

// MLP on the raw window: Linear(W,H) relu Linear(H,H) relu Linear(H,16).
struct Mlp : Classifier {
  std::shared_ptr<Linear> l1, l2, l3;
  Mlp(int64_t W, int64_t H) {
    l1 = register_module("l1", std::make_shared<Linear>(W, H));
    l2 = register_module("l2", std::make_shared<Linear>(H, H));
    l3 = register_module("l3", std::make_shared<Linear>(H, kKeyCount));
  }
  Variable forward(const Variable& x) override { return (*l3)(relu((*l2)(relu((*l1)(x))))); }
};

// 1-D CNN: [B,1,W] -> Conv1d(1,C,25) relu MaxPool(4) -> Conv1d(C,2C,9) relu -> mean over
// time [B,2C] -> Linear(2C,16). The first layer's 25 taps span about 3 ms, enough to tell
// the row tones (697..941 Hz) apart; the mean over time ignores where the tone is.
struct Cnn : Classifier {
  std::shared_ptr<Conv1d> c1, c2;
  std::shared_ptr<MaxPool1d> pool;
  std::shared_ptr<Linear> head;
  Cnn(int64_t C) {
    c1 = register_module("c1", std::make_shared<Conv1d>(1, C, 25, Conv1dOptions{.padding = 12}));
    pool = register_module("pool", std::make_shared<MaxPool1d>(4));
    c2 = register_module("c2", std::make_shared<Conv1d>(C, 2 * C, 9, Conv1dOptions{.padding = 4}));
    head = register_module("head", std::make_shared<Linear>(2 * C, kKeyCount));
  }
  Variable features(const Variable& x) {  // [B,1,L] -> [B,2C,L/4]
    return relu((*c2)((*pool)(relu((*c1)(x)))));
  }
  Variable forward(const Variable& x) override {
    return (*head)(mean(features(unsqueeze(x, 1)), 2));
  }
};

// GRU over frames: the window as T = W/F frames of F samples [T,B,F] -> GRU(F,H) -> the last
// state [B,H] -> Linear(H,16).
struct FrameGru : Classifier {
  int64_t F;
  std::shared_ptr<GRU> gru;
  std::shared_ptr<Linear> head;
  FrameGru(int64_t frame, int64_t H) : F(frame) {
    gru = register_module("gru", std::make_shared<GRU>(GRUOptions{.input_size = F, .hidden_size = H}));
    head = register_module("head", std::make_shared<Linear>(H, kKeyCount));
  }
  Variable forward(const Variable& x) override {
    const int64_t B = x.size(0), T = x.size(1) / F;
    Variable frames = transpose(reshape(x, {B, T, F}), 0, 1);  // [T,B,F]
    return (*head)(squeeze((*gru)(frames).h_n(), 0));
  }
};

// Many-to-many: the CNN front end (pooled to one vector per F samples) and a bidirectional
// GRU over those frames; a linear layer labels each frame: [B,L] -> logits [T,B,17].
struct Tagger : Module {
  int64_t F;
  std::shared_ptr<Cnn> front;
  std::shared_ptr<MaxPool1d> to_frames;
  std::shared_ptr<GRU> gru;
  std::shared_ptr<Linear> head;
  Tagger(int64_t frame, int64_t C, int64_t H) : F(frame) {
    UNROLL_CHECK(frame % 4 == 0, "dtmf: --frame {} must be a multiple of 4", frame);
    front = register_module("front", std::make_shared<Cnn>(C));
    to_frames = register_module("to_frames", std::make_shared<MaxPool1d>(frame / 4));
    gru = register_module("gru", std::make_shared<GRU>(GRUOptions{.input_size = 2 * C, .hidden_size = H,
                                                                  .bidirectional = true}));
    head = register_module("head", std::make_shared<Linear>(2 * H, kKeyCount + 1));
  }
  Variable forward(const Variable& x) {
    Variable f = (*to_frames)(front->features(unsqueeze(x, 1)));  // [B,2C,T]
    Variable seq = permute(f, {2, 0, 1});                         // [T,B,2C]
    return (*head)((*gru)(seq).output);                           // [T,B,17]
  }
};

// The keys read off frame labels: runs of one key at least `min_run` frames long, in order.
struct Decoded {
  std::vector<int64_t> keys;
  std::vector<std::pair<int64_t, int64_t>> runs;  // frame ranges
};

Decoded decode_frames(const std::vector<int64_t>& labels, int64_t min_run) {
  Decoded d;
  for (size_t i = 0; i < labels.size();) {
    size_t j = i;
    while (j < labels.size() && labels[j] == labels[i]) ++j;
    if (labels[i] != kSilence && static_cast<int64_t>(j - i) >= min_run) {
      d.keys.push_back(labels[i] - 1);
      d.runs.emplace_back(static_cast<int64_t>(i), static_cast<int64_t>(j));
    }
    i = j;
  }
  return d;
}

int64_t edit_distance(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  std::vector<int64_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = static_cast<int64_t>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    int64_t diag = row[0];
    row[0] = static_cast<int64_t>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const int64_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string keys_text(const std::vector<int64_t>& keys) {
  std::string s;
  for (int64_t k : keys) s += kKeys[static_cast<size_t>(k)];
  return s;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct TrainConfig {
  int64_t steps, batch;
  double lr, clip;
};

int run(int argc, char** argv) {
  Cli cli(argc, argv, "dtmf: telephone keypad tones (ITU-T Q.23) from raw samples: MLP vs 1-D CNN vs GRU, then "
                      "a dialled key sequence labelled frame by frame");
  const int64_t window = cli.get_int("window", 400, "clip length W in samples at 8 kHz (400 = 50 ms)");
  const int64_t frame = cli.get_int("frame", 40, "frame length F in samples for the GRUs (40 = 5 ms)");
  const int64_t steps = cli.get_int("steps", 300, "training steps per classifier");
  const int64_t batch = cli.get_int("batch", 32, "batch size");
  const double lr = cli.get_double("lr", 3e-3, "Adam learning rate");
  const int64_t hidden = cli.get_int("hidden", 64, "MLP width and GRU hidden size");
  const int64_t channels = cli.get_int("channels", 16, "CNN channels C (second layer 2C)");
  const int64_t seeds = cli.get_int("seeds", 3, "seeds per classifier (the table gives median and range)");
  const int64_t n_test = cli.get_int("test", 1600, "held-out clips");
  const double snr_min = cli.get_double("snr-min", 0, "lowest SNR in dB");
  const double snr_max = cli.get_double("snr-max", 20, "highest SNR in dB");
  const int64_t seq_ms = cli.get_int("seq-ms", 1000, "length of a dialled sequence in ms");
  const int64_t seq_steps = cli.get_int("seq-steps", 300, "training steps of the sequence tagger");
  const int64_t seq_batch = cli.get_int("seq-batch", 16, "batch size of the sequence tagger");
  const int64_t seq_test = cli.get_int("seq-test", 200, "held-out dialled sequences");
  const uint64_t seed = cli.seed();
  const bool json = cli.json();
  const std::string out_dir = cli.out_dir();
  cli.done();
  UNROLL_CHECK(steps > 0 && batch > 0 && hidden > 0 && channels > 0 && seeds > 0 && n_test > 0 && seq_steps > 0 &&
                   seq_batch > 0 && seq_test > 0,
               "dtmf: --steps, --batch, --hidden, --channels, --seeds, --test, --seq-steps, --seq-batch and "
               "--seq-test must be positive");
  UNROLL_CHECK(frame > 0 && frame % 4 == 0, "dtmf: --frame {} must be a positive multiple of 4", frame);
  UNROLL_CHECK(window >= frame && window % frame == 0, "dtmf: --window {} must be a multiple of --frame {}", window,
               frame);
  UNROLL_CHECK(window >= 200, "dtmf: --window {} must be at least 200 samples (25 ms, the shortest tone)", window);
  UNROLL_CHECK(snr_min <= snr_max, "dtmf: --snr-min {} is above --snr-max {}", snr_min, snr_max);
  UNROLL_CHECK(seq_ms >= 200 && seq_ms <= 10000, "dtmf: --seq-ms {} must be in 200..10000", seq_ms);
  plot::make_dirs(out_dir);
  const SignalOptions signal{snr_min, snr_max};

  // ---- 1. many-to-one: three classifiers, several seeds ----
  Generator test_gen(seed + 1000);  // the held-out clips: a stream the training never draws from
  const Clips test = make_clips(n_test, window, signal, test_gen);
  const Tensor test_x = tensor(std::span<const double>(test.x), {n_test, window});
  fmt::print("dtmf: {} held-out clips of {} samples ({} ms), SNR {}..{} dB; chance {:.2f}%\n", n_test, window,
             window * 1000 / static_cast<int64_t>(kRate), snr_min, snr_max, 100.0 / kKeyCount);

  const std::vector<std::string> model_names = {"MLP (fixed window)", "1-D CNN", "GRU over frames"};
  auto make_model = [&](size_t m) -> std::shared_ptr<Classifier> {
    if (m == 0) return std::make_shared<Mlp>(window, hidden);
    if (m == 1) return std::make_shared<Cnn>(channels);
    return std::make_shared<FrameGru>(frame, hidden);
  };
  auto accuracy = [&](Classifier& model) {
    NoGradGuard no_grad;
    model.eval();
    int64_t right = 0;
    for (int64_t lo = 0; lo < n_test; lo += 400) {
      const int64_t n = std::min<int64_t>(400, n_test - lo);
      const std::vector<int64_t> pred = argmax(model.forward(Variable(narrow(test_x, 0, lo, n))).data(), 1).to_indices();
      for (int64_t i = 0; i < n; ++i) right += pred[static_cast<size_t>(i)] == test.key[static_cast<size_t>(lo + i)];
    }
    model.train();
    return static_cast<double>(right) / static_cast<double>(n_test);
  };
  struct Row {
    std::vector<double> acc, seconds;
    int64_t params = 0;
    std::vector<double> curve_x, curve_y;  // the first seed's held-out accuracy during training
  };
  std::vector<Row> rows(model_names.size());
  for (size_t m = 0; m < model_names.size(); ++m)
    for (int64_t s = 0; s < seeds; ++s) {
      const uint64_t run_seed = seed + static_cast<uint64_t>(s);
      manual_seed(run_seed);
      std::shared_ptr<Classifier> model = make_model(m);
      optim::Adam opt(model->parameters(), lr);
      Generator data_gen(run_seed);
      Progress progress(fmt::format("{} seed {}", model_names[m], run_seed), steps, !json);
      for (int64_t step = 1; step <= steps; ++step) {
        const Clips c = make_clips(batch, window, signal, data_gen);
        opt.zero_grad();
        Variable loss = cross_entropy(model->forward(Variable(tensor(std::span<const double>(c.x), {batch, window}))),
                                      indices(c.key));
        loss.backward();
        clip_grad_norm(model->parameters(), 1.0);
        opt.step();
        if (s == 0 && (step % 25 == 0 || step == 1)) {
          rows[m].curve_x.push_back(static_cast<double>(step));
          rows[m].curve_y.push_back(accuracy(*model));
        }
        progress.update(step, loss.item());
      }
      progress.finish();
      rows[m].seconds.push_back(progress.seconds());
      rows[m].acc.push_back(accuracy(*model));
      rows[m].params = model->num_parameters();
    }
  fmt::print("\nheld-out key accuracy, {} steps of batch {} each, {} seeds (median [min, max]):\n", steps, batch, seeds);
  fmt::print("  {:<20} {:>8}  {:>26}  {:>10}\n", "model", "params", "accuracy", "train s");
  for (size_t m = 0; m < rows.size(); ++m) {
    const Row& r = rows[m];
    fmt::print("  {:<20} {:>8}  {:>7.1f}% [{:5.1f}%, {:5.1f}%]  {:>10.1f}\n", model_names[m], r.params,
               100 * median(r.acc), 100 * *std::min_element(r.acc.begin(), r.acc.end()),
               100 * *std::max_element(r.acc.begin(), r.acc.end()), median(r.seconds));
  }

  // ---- 2. many-to-many: a dialled sequence, labelled frame by frame ----
  const int64_t L = seq_ms * static_cast<int64_t>(kRate) / 1000 / frame * frame, T = L / frame;
  manual_seed(seed);
  Tagger tagger(frame, channels, hidden / 2);
  optim::Adam opt(tagger.parameters(), lr);
  Generator seq_gen(seed + 2000), seq_test_gen(seed + 3000);
  std::vector<Dialled> held_out;
  for (int64_t i = 0; i < seq_test; ++i) held_out.push_back(make_dialled(L, frame, signal, seq_test_gen));
  auto batch_of = [&](const std::vector<Dialled>& ds) {
    const int64_t B = static_cast<int64_t>(ds.size());
    std::vector<double> x;
    std::vector<int64_t> y(static_cast<size_t>(T * B));
    for (int64_t b = 0; b < B; ++b) {
      x.insert(x.end(), ds[static_cast<size_t>(b)].x.begin(), ds[static_cast<size_t>(b)].x.end());
      for (int64_t t = 0; t < T; ++t)
        y[static_cast<size_t>(t * B + b)] = ds[static_cast<size_t>(b)].frames[static_cast<size_t>(t)];
    }
    return std::pair{tensor(std::span<const double>(x), {B, L}), indices(y, {T, B})};
  };
  fmt::print("\ndialled sequences: {} ms ({} frames of {} ms), CNN front end + bidirectional GRU, {} parameters\n",
             seq_ms, T, frame * 1000 / static_cast<int64_t>(kRate), tagger.num_parameters());
  std::vector<double> seq_loss;
  Progress progress("tagger", seq_steps, !json);
  for (int64_t step = 1; step <= seq_steps; ++step) {
    std::vector<Dialled> ds;
    for (int64_t b = 0; b < seq_batch; ++b) ds.push_back(make_dialled(L, frame, signal, seq_gen));
    auto [x, y] = batch_of(ds);
    opt.zero_grad();
    Variable logits = tagger.forward(Variable(x));  // [T,B,17]
    Variable loss = cross_entropy(reshape(logits, {-1, kKeyCount + 1}), y.reshape({-1}));
    loss.backward();
    clip_grad_norm(tagger.parameters(), 1.0);
    opt.step();
    seq_loss.push_back(loss.item());
    progress.update(step, loss.item());
  }
  progress.finish();
  const double tagger_seconds = progress.seconds();

  // Evaluation: frame accuracy, key error rate (edit distance / keys) and whole numbers right.
  const int64_t min_run = std::max<int64_t>(1, static_cast<int64_t>(0.015 * kRate) / frame);  // 15 ms
  std::vector<Decoded> decoded;
  std::vector<std::vector<std::vector<double>>> posteriors;  // of the first two, [class][frame]
  int64_t frames_right = 0, edits = 0, keys_total = 0, numbers_right = 0;
  {
    NoGradGuard no_grad;
    tagger.eval();
    for (size_t lo = 0; lo < held_out.size(); lo += 50) {
      const std::vector<Dialled> part(held_out.begin() + static_cast<std::ptrdiff_t>(lo),
                                      held_out.begin() + static_cast<std::ptrdiff_t>(std::min(held_out.size(), lo + 50)));
      const int64_t B = static_cast<int64_t>(part.size());
      Tensor logits = tagger.forward(Variable(batch_of(part).first)).data();  // [T,B,17]
      const std::vector<int64_t> pred = argmax(logits, 2).to_indices();      // [T,B]
      const std::vector<double> prob = softmax(logits, 2).to_vector();
      for (int64_t b = 0; b < B; ++b) {
        std::vector<int64_t> labels;
        for (int64_t t = 0; t < T; ++t) labels.push_back(pred[static_cast<size_t>(t * B + b)]);
        const Dialled& d = part[static_cast<size_t>(b)];
        for (int64_t t = 0; t < T; ++t) frames_right += labels[static_cast<size_t>(t)] == d.frames[static_cast<size_t>(t)];
        decoded.push_back(decode_frames(labels, min_run));
        edits += edit_distance(decoded.back().keys, d.keys);
        keys_total += static_cast<int64_t>(d.keys.size());
        numbers_right += decoded.back().keys == d.keys;
        if (posteriors.size() < 2) {
          std::vector<std::vector<double>> p(kKeyCount + 1, std::vector<double>(static_cast<size_t>(T)));
          for (int64_t c = 0; c <= kKeyCount; ++c)
            for (int64_t t = 0; t < T; ++t)
              p[static_cast<size_t>(c)][static_cast<size_t>(t)] =
                  prob[static_cast<size_t>((t * B + b) * (kKeyCount + 1) + c)];
          posteriors.push_back(std::move(p));
        }
      }
    }
    tagger.train();
  }
  const double frame_acc = static_cast<double>(frames_right) / static_cast<double>(seq_test * T);
  const double key_error = static_cast<double>(edits) / static_cast<double>(std::max<int64_t>(1, keys_total));
  const double number_acc = static_cast<double>(numbers_right) / static_cast<double>(seq_test);
  fmt::print("held-out ({} sequences, {} keys): frame accuracy {:.2f}%, key error rate {:.2f}%, whole sequence right "
             "{:.1f}%  ({:.1f} s training)\n",
             seq_test, keys_total, 100 * frame_acc, 100 * key_error, 100 * number_acc, tagger_seconds);
  for (size_t i = 0; i < std::min<size_t>(5, held_out.size()); ++i)
    fmt::print("  dialled {:<10} decoded {}\n", keys_text(held_out[i].keys), keys_text(decoded[i].keys));

  // Figures: two held-out sequences with true and decoded keys, their frame posteriors, the
  // classifiers' held-out accuracy during training, and the tagger's loss.
  std::vector<std::string> figures;
  for (size_t i = 0; i < posteriors.size(); ++i) {
    const Dialled& d = held_out[i];
    plot::LinePlot w;
    w.title = fmt::format("dialled {}, decoded {} (grey, top: true keys; red, bottom: decoded)", keys_text(d.keys),
                          keys_text(decoded[i].keys));
    w.xlabel = "time (ms)";
    w.ylabel = "sample value";
    w.width = 1100;
    std::vector<double> tx, ty;
    for (int64_t t = 0; t < L; ++t) {
      tx.push_back(static_cast<double>(t) * 1000 / kRate);
      ty.push_back(d.x[static_cast<size_t>(t)]);
    }
    w.add("waveform", tx, ty);
    w.series.back().color = "#1f77b4";
    for (size_t k = 0; k < d.keys.size(); ++k)
      w.bands.push_back({static_cast<double>(d.spans[k].first) * 1000 / kRate,
                         static_cast<double>(d.spans[k].second) * 1000 / kRate, key_name(d.keys[k]), "#555555", false});
    for (size_t k = 0; k < decoded[i].keys.size(); ++k) {
      const auto [f0, f1] = decoded[i].runs[k];
      w.bands.push_back({static_cast<double>(f0 * frame) * 1000 / kRate, static_cast<double>(f1 * frame) * 1000 / kRate,
                         key_name(decoded[i].keys[k]), "#d62728", true});
    }
    const std::string path = fmt::format("{}/dialled_{}.svg", out_dir, i);
    w.save(path);
    figures.push_back(path);
    plot::Heatmap h;
    h.title = fmt::format("frame posteriors, dialled {}", keys_text(d.keys));
    h.xlabel = fmt::format("frame ({} ms each)", frame * 1000 / static_cast<int64_t>(kRate));
    h.ylabel = "class";
    h.colorbar_label = "posterior probability";
    h.values = posteriors[i];
    h.row_labels.push_back("silence");
    for (int64_t k = 0; k < kKeyCount; ++k) h.row_labels.push_back(key_name(k));
    for (int64_t t = 0; t < T; ++t) h.col_labels.push_back(t % 20 == 0 ? fmt::format("{}", t) : "");
    const std::string hpath = fmt::format("{}/posteriors_{}.svg", out_dir, i);
    h.save(hpath);
    figures.push_back(hpath);
  }
  plot::LinePlot acc_plot;
  acc_plot.title = fmt::format("key classification: held-out accuracy during training (seed {})", seed);
  acc_plot.xlabel = "step";
  acc_plot.ylabel = "accuracy";
  for (size_t m = 0; m < rows.size(); ++m) acc_plot.add(model_names[m], rows[m].curve_x, rows[m].curve_y);
  acc_plot.add_reference("chance", 1.0, static_cast<double>(steps), 1.0 / kKeyCount);
  const std::string acc_path = out_dir + "/accuracy.svg";
  acc_plot.save(acc_path);
  figures.push_back(acc_path);
  plot::LinePlot loss_plot;
  loss_plot.title = "sequence tagger: training loss";
  loss_plot.xlabel = "step";
  loss_plot.ylabel = "cross-entropy per frame (nats)";
  loss_plot.log_y = true;
  loss_plot.add("frame loss", seq_loss);
  const std::string loss_path = out_dir + "/tagger_loss.svg";
  loss_plot.save(loss_path);
  figures.push_back(loss_path);
  fmt::print("figures:\n");
  for (const std::string& f : figures) fmt::print("  {}\n", f);

  if (json) {
    JsonLine j;
    const std::array<const char*, 3> keys = {"mlp", "cnn", "gru"};
    for (size_t m = 0; m < rows.size(); ++m) {
      j.add(std::string(keys[m]) + "_accuracy", median(rows[m].acc))
          .add(std::string(keys[m]) + "_accuracy_min", *std::min_element(rows[m].acc.begin(), rows[m].acc.end()))
          .add(std::string(keys[m]) + "_accuracy_max", *std::max_element(rows[m].acc.begin(), rows[m].acc.end()))
          .add(std::string(keys[m]) + "_params", static_cast<double>(rows[m].params));
    }
    j.add("chance_accuracy", 1.0 / kKeyCount)
        .add("seeds", static_cast<double>(seeds))
        .add("frame_accuracy", frame_acc)
        .add("key_error_rate", key_error)
        .add("sequence_accuracy", number_acc)
        .add("test_keys", static_cast<double>(keys_total))
        .add("tagger_initial_loss", seq_loss.front())
        .add("tagger_final_loss", seq_loss.back())
        .add("tagger_seconds", tagger_seconds);
    fmt::print("{}\n", j.str());
  }
  return 0;
}

int main(int argc, char** argv) {
  return guarded_main("dtmf", argc, argv, run, on_error<unroll::Error>(ErrorPrefix::none, 1));
}
