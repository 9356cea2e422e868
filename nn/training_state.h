#pragma once
// Everything a training loop carries from one step to the next besides the weights, in one
// safetensors file next to them, so that a run saved after K steps and resumed retraces the
// uninterrupted run bit for bit (same seed and flags).
//
// Note [exact resume]
// A TrainingState binds, by reference, the live objects of a training loop under fixed
// names; save() writes their values, load() writes them back:
//   optimizer(opt)               "optim.*"          opt.state_dict() (rate, step counts, moments)
//   generator("data", gen)       "rng.data"         gen.get_state() (int64 [7]); any number of them
//   carried(state, {"h","c"}, s) "state.h", ...     the recurrent state carried across chunks
//                                                   (truncated BPTT), each of shape s; absent
//                                                   when the state is empty (at a pass border)
//   counter("steps", n)          metadata "steps"   an integer restored on every load
//   position("data_pos", p)      metadata "data_pos" an integer meaningful only for one data
//   layout("batch", B)           metadata "batch"   layout, described by the layout() values
// The carried state and the positions are restored only when every layout value in the file
// equals this run's: another batch size or text cuts the streams differently, so the run
// then continues with a fresh data order (Restored::without_position). A file without any
// training-state tensor (weights only) restores nothing (Restored::nothing). Every other
// disagreement (a missing or malformed part, another optimizer, a carried state of another
// shape, a counter that is not an integer) is an unroll::Error naming the file and the part.
//
// The weights go in the same file under their module names: save(path, model.state_dict(),
// metadata); weights_of(tensors) selects them again (every name outside the prefixes above).
// Writing is atomic and crash-safe (save_safetensors, Note [crash-safe save] in
// core/atomic_file.cpp): a run killed mid-save keeps the previous file.
//
//   TrainingState ts;
//   ts.optimizer(opt).generator("data", gen).generator("default", default_generator());
//   ts.carried(state, {"h", "c"}, {L, B, H}).counter("steps", steps).position("pos", pos);
//   ts.layout("batch", B);
//   ... train ... ts.save(path, model.state_dict(), {{"format", "mine-1"}});
//   const SafetensorsFile f = load_safetensors(path);
//   model.load_state_dict(TrainingState::weights_of(f.tensors));
//   ts.load(f, path);   // after building the same objects
#include "nn/checkpoint.h"
#include "nn/optim.h"
#include "nn/recurrent.h"

#include <cstdint>
#include <string>
#include <vector>

namespace unroll {

class TrainingState {
public:
  /// What load() restored.
  enum class Restored {
    nothing,           ///< the file holds weights only (no training-state tensor)
    without_position,  ///< optimizer, generators, counters; another data layout: no carried state or positions
    all,               ///< everything: the run continues exactly
  };

  /// opt.state_dict() under "optim.".
  TrainingState& optimizer(optim::Optimizer& opt);
  /// gen's state under "rng.<name>".
  TrainingState& generator(const std::string& name, Generator& gen);
  /// The carried recurrent state: state[i] under "state.<names[i]>", each of `shape`.
  TrainingState& carried(State& state, std::vector<std::string> names, Shape shape);
  /// An integer (e.g. the steps done) in the metadata, restored on every load.
  TrainingState& counter(const std::string& name, int64_t& value);
  /// An integer (e.g. the position in the data streams) in the metadata, restored only when
  /// the layout matches.
  TrainingState& position(const std::string& name, int64_t& value);
  /// A value describing the data layout the carried state and the positions refer to.
  TrainingState& layout(const std::string& name, int64_t value);

  /// The bound objects' tensors under their names, in the order they were bound.
  StateDict state_dict() const;
  /// The counters, positions and layout values as metadata.
  Metadata metadata() const;
  /// Restores the bound objects from tensors and metadata (Note [exact resume]); `what`
  /// names the source in errors.
  Restored load_state_dict(const StateDict& tensors, const Metadata& metadata, const std::string& what);

  /// Writes `weights`, then state_dict(), with `extra` and metadata() as the metadata
  /// (a key in both is an error), atomically.
  void save(const std::string& path, const StateDict& weights, const Metadata& extra = {}) const;
  /// load_state_dict of a file already read; `path` for messages.
  Restored load(const SafetensorsFile& file, const std::string& path);

  /// Whether `name` is a training-state tensor ("optim.", "rng." or "state." prefix).
  static bool is_state_name(const std::string& name);
  /// The tensors of `all` that are not training state: the weights.
  static StateDict weights_of(const StateDict& all);

private:
  struct Carried {
    State* state;
    std::vector<std::string> names;
    Shape shape;
  };
  struct Integer {
    std::string name;
    int64_t* value;
  };
  optim::Optimizer* optimizer_ = nullptr;
  std::vector<std::pair<std::string, Generator*>> generators_;
  std::vector<Carried> carried_;
  std::vector<Integer> counters_, positions_;
  std::vector<std::pair<std::string, int64_t>> layout_;
};

}  // namespace unroll
