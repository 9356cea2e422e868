#include "nn/tcn.h"

#include "autograd/ops.h"

namespace unroll {

namespace {
/// The numbered children of `blocks` ("blocks.0", "blocks.1", ...), like torch.nn.ModuleList.
class BlockList : public Module {
public:
  std::shared_ptr<TemporalBlock> add(std::shared_ptr<TemporalBlock> b) {
    return register_module(std::to_string(size_++), std::move(b));
  }
private:
  int64_t size_ = 0;
};
}  // namespace

TemporalBlock::TemporalBlock(int64_t in, int64_t out, int64_t k, int64_t d, double p)
    : kernel_size(k), dilation(d) {
  UNROLL_CHECK(k > 0 && d > 0, "TemporalBlock: kernel_size {} and dilation {} must be positive", k, d);
  conv1 = register_module("conv1", std::make_shared<Conv1d>(in, out, k, Conv1dOptions{.dilation = d}));
  conv2 = register_module("conv2", std::make_shared<Conv1d>(out, out, k, Conv1dOptions{.dilation = d}));
  if (in != out) downsample = register_module("downsample", std::make_shared<Conv1d>(in, out, 1));
  dropout1 = register_module("dropout1", std::make_shared<Dropout>(p));
  dropout2 = register_module("dropout2", std::make_shared<Dropout>(p));
}

Variable TemporalBlock::forward(const Variable& x) {
  const int64_t left = (kernel_size - 1) * dilation;  // causal: zeros before t = 0 only
  Variable h = dropout1->forward(relu(conv1->forward(pad(x, {left, 0}))));
  h = dropout2->forward(relu(conv2->forward(pad(h, {left, 0}))));
  return relu(h + (downsample ? downsample->forward(x) : x));
}

TCN::TCN(int64_t input_size, std::vector<int64_t> channels, TCNOptions o) : options(o) {
  UNROLL_CHECK(input_size > 0 && !channels.empty(), "TCN: needs input_size > 0 and at least one level, got {} and {}",
               input_size, channels.size());
  UNROLL_CHECK(o.kernel_size > 0, "TCN: kernel_size must be positive, got {}", o.kernel_size);
  UNROLL_CHECK(channels.size() < 40, "TCN: {} levels would need a dilation of 2^{}", channels.size(), channels.size() - 1);
  auto list = register_module("blocks", std::make_shared<BlockList>());
  int64_t in = input_size;
  for (size_t i = 0; i < channels.size(); ++i) {
    UNROLL_CHECK(channels[i] > 0, "TCN: level {} has {} channels", i, channels[i]);
    blocks.push_back(list->add(std::make_shared<TemporalBlock>(in, channels[i], o.kernel_size, int64_t{1} << i, o.dropout)));
    in = channels[i];
  }
}

Variable TCN::forward(const Variable& x) {
  UNROLL_CHECK(x.defined() && x.ndim() == 3 && x.shape()[1] == blocks.front()->conv1->weight.shape()[1],
               "TCN: input {} must be [B, {}, T]", x.defined() ? x.shape() : Shape{},
               blocks.front()->conv1->weight.shape()[1]);
  Variable h = x;
  for (auto& b : blocks) h = b->forward(h);
  return h;
}

int64_t TCN::receptive_field() const {
  return 1 + 2 * (options.kernel_size - 1) * ((int64_t{1} << blocks.size()) - 1);
}

}  // namespace unroll
