// Fused CPU kernels for MindSpore Custom "aot" ops (bert_repro/cpu_kernels.py): exact (erf) GELU,
// LayerNorm over the last axis, and per-row softmax cross-entropy, each forward and backward.
// float32 only. One pass per output instead of MindSpore's chain of elementwise kernels, each of
// which reads and writes the whole tensor (bench part e: GELU 23x, LayerNorm 18x slower than
// PyTorch before these). The LayerNorm and cross-entropy backward recompute their row statistics
// instead of keeping them: one more read of the row, no extra outputs.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include <omp.h>

namespace {
int64_t Count(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  return n;
}
constexpr float kSqrtHalf = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
inline float Gelu(float x) { return 0.5f * x * (1.0f + std::erf(x * kSqrtHalf)); }
inline float GeluGrad(float x) {  // d gelu(x) / dx
  return 0.5f * (1.0f + std::erf(x * kSqrtHalf)) + x * kInvSqrt2Pi * std::exp(-0.5f * x * x);
}
}  // namespace

extern "C" int GeluForward(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const float *x = static_cast<const float *>(params[0]);
  float *y = static_cast<float *>(params[1]);
  const int64_t n = Count(ndims[0], shapes[0]);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = Gelu(x[i]);
  return 0;
}

extern "C" int GeluBackward(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const float *x = static_cast<const float *>(params[0]);
  const float *dy = static_cast<const float *>(params[1]);
  float *dx = static_cast<float *>(params[2]);
  const int64_t n = Count(ndims[0], shapes[0]);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * GeluGrad(x[i]);
  return 0;
}

// A row's mean and 1 / sqrt(variance + eps), accumulated in double.
static std::pair<float, float> MeanRstd(const float *row, int64_t d, float eps) {
  double sum = 0, sq = 0;
  for (int64_t j = 0; j < d; j++) sum += row[j];
  const float mean = static_cast<float>(sum / d);
  for (int64_t j = 0; j < d; j++) sq += (row[j] - mean) * (row[j] - mean);
  return {mean, 1.0f / std::sqrt(static_cast<float>(sq / d) + eps)};
}

namespace {
void LayerNormRows(const float *x, const float *gamma, const float *beta, float eps, int64_t rows,
                   int64_t d, float *y) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * d;
    float *yr = y + r * d;
    const auto [mean, rstd] = MeanRstd(xr, d, eps);
    for (int64_t j = 0; j < d; j++) yr[j] = (xr[j] - mean) * rstd * gamma[j] + beta[j];
  }
}

void LayerNormGrad(const float *x, const float *gamma, const float *dy, float eps, int64_t rows,
                   int64_t d, float *dx, float *dgamma, float *dbeta) {
  // Per-thread sums of dgamma/dbeta, added in thread order afterwards: the same result on every
  // run with the same thread count (a resumed run must match an uninterrupted one).
  const int threads = omp_get_max_threads();
  std::vector<float> partial(2 * threads * d, 0.0f);
#pragma omp parallel num_threads(threads)
  {
    float *dg = partial.data() + 2 * omp_get_thread_num() * d;
    float *db = dg + d;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
      const float *xr = x + r * d, *dyr = dy + r * d;
      float *dxr = dx + r * d;
      const auto [mean, rstd] = MeanRstd(xr, d, eps);
      float mean_g = 0, mean_gx = 0;  // means over j of g = dy*gamma and g*xhat
      for (int64_t j = 0; j < d; j++) {
        const float xhat = (xr[j] - mean) * rstd, g = dyr[j] * gamma[j];
        mean_g += g;
        mean_gx += g * xhat;
        dg[j] += dyr[j] * xhat;
        db[j] += dyr[j];
      }
      mean_g /= d;
      mean_gx /= d;
      for (int64_t j = 0; j < d; j++) {
        const float xhat = (xr[j] - mean) * rstd;
        dxr[j] = rstd * (dyr[j] * gamma[j] - mean_g - xhat * mean_gx);
      }
    }
  }
  for (int64_t j = 0; j < d; j++) dgamma[j] = dbeta[j] = 0.0f;
  for (int t = 0; t < threads; t++) {
    for (int64_t j = 0; j < d; j++) {
      dgamma[j] += partial[2 * t * d + j];
      dbeta[j] += partial[(2 * t + 1) * d + j];
    }
  }
}
}  // namespace

// params: x (rows, d), gamma (d), beta (d), eps (scalar tensor) -> y
extern "C" int LayerNormForward(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const int64_t d = shapes[1][0];
  LayerNormRows(static_cast<const float *>(params[0]), static_cast<const float *>(params[1]),
                static_cast<const float *>(params[2]), *static_cast<const float *>(params[3]),
                Count(ndims[0], shapes[0]) / d, d, static_cast<float *>(params[4]));
  return 0;
}

// params: x (rows, d), gamma (d), dy (rows, d), eps -> dx (rows, d), dgamma (d), dbeta (d)
extern "C" int LayerNormBackward(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const int64_t d = shapes[1][0];
  LayerNormGrad(static_cast<const float *>(params[0]), static_cast<const float *>(params[1]),
                static_cast<const float *>(params[2]), *static_cast<const float *>(params[3]),
                Count(ndims[0], shapes[0]) / d, d, static_cast<float *>(params[4]),
                static_cast<float *>(params[5]), static_cast<float *>(params[6]));
  return 0;
}

namespace {
// One row's log-sum-exp, stable. `omp simd` lets the compiler call the vector expf of glibc's
// libmvec (needs -fno-math-errno): scalar expf made this kernel slower than MindSpore's.
float LogSumExp(const float *row, int64_t v) {
  float top = row[0];
#pragma omp simd reduction(max : top)
  for (int64_t j = 1; j < v; j++) top = row[j] > top ? row[j] : top;
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < v; j++) sum += std::exp(row[j] - top);
  return top + std::log(sum);
}
int64_t Target(const void *targets, const char *dtype, int64_t r) {
  return std::strcmp(dtype, "int64") == 0 ? static_cast<const int64_t *>(targets)[r]
                                          : static_cast<const int32_t *>(targets)[r];
}
}  // namespace

// params: logits (rows, v), targets (rows) int32/int64 -> loss (rows). A negative target (torch's
// ignore_index -100) gives loss 0 and no gradient.
extern "C" int CrossEntropyForward(int, void **params, int *, int64_t **shapes, const char **dtypes, void *, void *) {
  const float *logits = static_cast<const float *>(params[0]);
  float *loss = static_cast<float *>(params[2]);
  const int64_t rows = shapes[0][0], v = shapes[0][1];
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const int64_t t = Target(params[1], dtypes[1], r);
    loss[r] = t < 0 ? 0.0f : LogSumExp(logits + r * v, v) - logits[r * v + t];
  }
  return 0;
}

// params: logits (rows, v), targets (rows), dloss (rows) -> dlogits = (softmax - onehot) * dloss
extern "C" int CrossEntropyBackward(int, void **params, int *, int64_t **shapes, const char **dtypes, void *, void *) {
  const float *logits = static_cast<const float *>(params[0]);
  const float *dloss = static_cast<const float *>(params[2]);
  float *dlogits = static_cast<float *>(params[3]);
  const int64_t rows = shapes[0][0], v = shapes[0][1];
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float *row = logits + r * v;
    float *out = dlogits + r * v;
    const int64_t t = Target(params[1], dtypes[1], r);
    if (t < 0) {
      for (int64_t j = 0; j < v; j++) out[j] = 0.0f;
      continue;
    }
    const float lse = LogSumExp(row, v), g = dloss[r];
#pragma omp simd
    for (int64_t j = 0; j < v; j++) out[j] = std::exp(row[j] - lse) * g;
    out[t] -= g;
  }
  return 0;
}

// Dropout with the masks of numpy's Philox generator, bit for bit: cpu_backend's host-side
// stream keys each call's Generator(Philox(key=(seed, call))) and keeps the elements whose
// `random(dtype=float32)` draw is >= p. Element j of that draw is 32-bit word j of the stream:
// the low then the high half of 64-bit word j/2, itself word (j/2)%4 of the Philox4x64-10 block
// with counter j/8 + 1 (numpy bumps the counter before each block). Counter-based, so threads
// split the blocks and a data-parallel rank starts at its own offset into the whole batch's draw.
namespace {
struct Block {
  uint64_t v[4];
};
inline uint64_t MulHiLo(uint64_t a, uint64_t b, uint64_t *hi) {
  const __uint128_t product = static_cast<__uint128_t>(a) * b;
  *hi = static_cast<uint64_t>(product >> 64);
  return static_cast<uint64_t>(product);
}
Block Philox4x64(uint64_t counter, uint64_t key0, uint64_t key1) {
  Block c{{counter, 0, 0, 0}};
  for (int round = 0; round < 10; round++) {
    if (round > 0) {
      key0 += 0x9E3779B97F4A7C15ULL;
      key1 += 0xBB67AE8584CAA73BULL;
    }
    uint64_t hi0, hi1;
    const uint64_t lo0 = MulHiLo(0xD2E7470EE14C6C93ULL, c.v[0], &hi0);
    const uint64_t lo1 = MulHiLo(0xCA5A826395121157ULL, c.v[2], &hi1);
    c = Block{{hi1 ^ c.v[1] ^ key0, lo1, hi0 ^ c.v[3] ^ key1, lo0}};
  }
  return c;
}

// Block b of a dropout call's draw (elements 8b..8b+7) applied to the elements [first, first + n)
// it covers: y = x * mask (in place allowed), the mask too when asked.
inline void DropBlock(int64_t b, uint64_t seed, uint64_t call, int64_t first, int64_t n, float p,
                      float scale, const float *x, float *y, float *mask) {
  const Block block = Philox4x64(static_cast<uint64_t>(b) + 1, seed, call);
  for (int w = 0; w < 8; w++) {
    const int64_t i = b * 8 + w - first;
    if (i < 0 || i >= n) continue;
    const uint64_t word = block.v[w / 2];
    const uint32_t bits = static_cast<uint32_t>(w % 2 == 0 ? word : word >> 32);
    const float draw = static_cast<float>(bits >> 8) * (1.0f / 16777216.0f);
    const float m = draw >= p ? scale : 0.0f;
    if (mask != nullptr) mask[i] = m;
    y[i] = x[i] * m;
  }
}

// Elements [first, first + n) of the call's draw, by this thread alone (inside a parallel loop).
void DropSerial(uint64_t seed, uint64_t call, int64_t first, int64_t n, float p, float scale,
                const float *x, float *y) {
  for (int64_t b = first / 8; b < (first + n + 7) / 8; b++) DropBlock(b, seed, call, first, n, p, scale, x, y, nullptr);
}

// The same, the threads splitting the blocks.
void Drop(uint64_t seed, uint64_t call, int64_t first, int64_t n, float p, float scale,
          const float *x, float *y, float *mask) {
  const int64_t first_block = first / 8, last_block = (first + n + 7) / 8;
#pragma omp parallel for schedule(static)
  for (int64_t b = first_block; b < last_block; b++) DropBlock(b, seed, call, first, n, p, scale, x, y, mask);
}
}  // namespace

// params: x (any shape), key (int64: seed, call, first element's index in the draw),
// rate (float32: p, 1 / (1 - p) as numpy rounds them) -> y = x * mask, mask (x's shape)
extern "C" int DropoutForward(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const int64_t *key = static_cast<const int64_t *>(params[1]);
  const float *rate = static_cast<const float *>(params[2]);
  Drop(key[0], key[1], key[2], Count(ndims[0], shapes[0]), rate[0], rate[1],
       static_cast<const float *>(params[0]), static_cast<float *>(params[3]), static_cast<float *>(params[4]));
  return 0;
}

// The optimizer step over every parameter tensor in one launch each, instead of a square, a sum
// and a scale per gradient and then one AdamWeightDecay kernel per tensor. Both walk all tensors
// in fixed chunks split between the threads: the same work each call, whatever the sizes.
namespace {
constexpr int64_t kChunk = 1 << 14;
struct Span {
  int tensor;
  int64_t begin, end;
};
std::vector<Span> Chunks(int tensors, int64_t **shapes, int *ndims, int first_shape) {
  std::vector<Span> spans;
  for (int t = 0; t < tensors; t++) {
    const int64_t n = Count(ndims[first_shape + t], shapes[first_shape + t]);
    for (int64_t b = 0; b < n; b += kChunk) spans.push_back({t, b, b + kChunk < n ? b + kChunk : n});
  }
  return spans;
}
}  // namespace

// params: n gradients -> out (float32 scalar) sum of their squared elements. Each chunk sums
// in double and the chunks are added in order, so the result does not depend on the threads.
extern "C" int SumOfSquares(int nparam, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const int tensors = nparam - 1;
  const std::vector<Span> spans = Chunks(tensors, shapes, ndims, 0);
  std::vector<double> partial(spans.size());
#pragma omp parallel for schedule(static)
  for (size_t s = 0; s < spans.size(); s++) {
    const float *g = static_cast<const float *>(params[spans[s].tensor]);
    double sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = spans[s].begin; i < spans[s].end; i++) sum += static_cast<double>(g[i]) * g[i];
    partial[s] = sum;
  }
  double total = 0;
  for (double p : partial) total += p;
  *static_cast<float *>(params[nparam - 1]) = static_cast<float>(total);
  return 0;
}

// params: n params, n first moments, n second moments, n gradients (in that order; the first
// three updated in place), hyper (float32: lr, beta1, beta2, eps, gradient scale), decay
// (float32, n: each tensor's weight decay) -> out (float32 scalar, unused). The update of
// MindSpore's AdamWeightDecay kernel, on the gradient times the clipping scale.
extern "C" int AdamWeightDecayMulti(int nparam, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const int n = (nparam - 3) / 4;
  const float *hyper = static_cast<const float *>(params[4 * n]);
  const float *decay = static_cast<const float *>(params[4 * n + 1]);
  const float lr = hyper[0], beta1 = hyper[1], beta2 = hyper[2], eps = hyper[3], scale = hyper[4];
  const std::vector<Span> spans = Chunks(n, shapes, ndims, 0);
#pragma omp parallel for schedule(static)
  for (size_t s = 0; s < spans.size(); s++) {
    const int t = spans[s].tensor;
    float *w = static_cast<float *>(params[t]);
    float *m = static_cast<float *>(params[n + t]);
    float *v = static_cast<float *>(params[2 * n + t]);
    const float *g = static_cast<const float *>(params[3 * n + t]);
    const float wd = decay[t];
#pragma omp simd
    for (int64_t i = spans[s].begin; i < spans[s].end; i++) {
      const float grad = g[i] * scale;
      m[i] += (grad - m[i]) * (1.0f - beta1);
      v[i] += (grad * grad - v[i]) * (1.0f - beta2);
      float update = m[i] / (std::sqrt(v[i]) + eps);
      if (wd > 0.0f) update += wd * w[i];
      w[i] -= lr * update;
    }
  }
  *static_cast<float *>(params[nparam - 1]) = 0.0f;
  return 0;
}

// Embedding lookup (a row gather) and its gradient, which adds each token's output gradient into
// the row it read: one pass over the batch's rows, as PyTorch's index_add, after zeroing the
// table-sized gradient (MindSpore's Gather gradient, an UnsortedSegmentSum, took 10x longer).
// The threads split the columns, so every element sums its tokens in order: deterministic.
extern "C" int EmbeddingForward(int, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  const float *table = static_cast<const float *>(params[0]);
  float *out = static_cast<float *>(params[2]);
  const int64_t rows = shapes[0][0], d = shapes[0][1], n = Count(ndims[1], shapes[1]);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const int64_t r = Target(params[1], dtypes[1], i);
    if (r >= 0 && r < rows) std::memcpy(out + i * d, table + r * d, d * sizeof(float));
    else std::memset(out + i * d, 0, d * sizeof(float));  // as Gather: out of range reads 0
  }
  return 0;
}

// params: ids (any shape), dout (ids' shape + (d,)), table (rows, d; its shape only) -> dtable
extern "C" int EmbeddingBackward(int, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  const float *dout = static_cast<const float *>(params[1]);
  float *grad = static_cast<float *>(params[3]);
  const int64_t rows = shapes[2][0], d = shapes[2][1], n = Count(ndims[0], shapes[0]);
#pragma omp parallel
  {
    const int threads = omp_get_num_threads(), me = omp_get_thread_num();
    const int64_t total = rows * d, per = (total + threads - 1) / threads;
    const int64_t zero_begin = me * per, zero_end = zero_begin + per < total ? zero_begin + per : total;
    if (zero_begin < zero_end) std::memset(grad + zero_begin, 0, (zero_end - zero_begin) * sizeof(float));
#pragma omp barrier
    const int64_t cols = (d + threads - 1) / threads;
    const int64_t c0 = me * cols, c1 = c0 + cols < d ? c0 + cols : d;
    for (int64_t i = 0; i < n && c0 < c1; i++) {
      const int64_t r = Target(params[0], dtypes[0], i);
      if (r < 0 || r >= rows) continue;
      float *g = grad + r * d;
      const float *src = dout + i * d;
      for (int64_t c = c0; c < c1; c++) g[c] += src[c];
    }
  }
  return 0;
}

// A linear layer's bias: y = x + b on every row, and its gradient, the column sums of dy.
// MindSpore's BiasAdd and BiasAddGrad took ~130 ms per step on the masked MLM decoder's
// (640, 30522) logits alone. The threads split the columns: each sums its rows in order.
extern "C" int BiasAddForward(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const float *x = static_cast<const float *>(params[0]);
  const float *b = static_cast<const float *>(params[1]);
  float *y = static_cast<float *>(params[2]);
  const int64_t d = shapes[1][0], rows = Count(ndims[0], shapes[0]) / d;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) {
#pragma omp simd
    for (int64_t j = 0; j < d; j++) y[r * d + j] = x[r * d + j] + b[j];
  }
  return 0;
}

namespace {
void ColumnSums(const float *dy, int64_t rows, int64_t d, float *db) {
#pragma omp parallel
  {
    const int threads = omp_get_num_threads(), me = omp_get_thread_num();
    const int64_t cols = (d + threads - 1) / threads;
    const int64_t c0 = me * cols, c1 = c0 + cols < d ? c0 + cols : d;
    for (int64_t c = c0; c < c1; c++) db[c] = 0.0f;
    for (int64_t r = 0; r < rows && c0 < c1; r++) {
#pragma omp simd
      for (int64_t c = c0; c < c1; c++) db[c] += dy[r * d + c];
    }
  }
}
}  // namespace

// params: dy (rows, d), b (d; its shape only) -> db (d)
extern "C" int BiasGrad(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const int64_t d = shapes[1][0];
  ColumnSums(static_cast<const float *>(params[0]), Count(ndims[0], shapes[0]) / d, d, static_cast<float *>(params[2]));
  return 0;
}

// Softmax over the last axis and its gradient dx = y * (dy - sum(dy * y)), one pass per row
// (MindSpore expands the gradient into four broadcasting kernels: ~40 ms per step for BERT-tiny).
namespace {
// One row: yr = softmax(xr) (yr may be xr).
inline void SoftmaxRow(const float *xr, int64_t d, float *yr) {
  float top = xr[0];
#pragma omp simd reduction(max : top)
  for (int64_t j = 1; j < d; j++) top = xr[j] > top ? xr[j] : top;
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < d; j++) {
    yr[j] = std::exp(xr[j] - top);
    sum += yr[j];
  }
  const float inv = 1.0f / sum;
#pragma omp simd
  for (int64_t j = 0; j < d; j++) yr[j] *= inv;
}

// One row of the gradient: dxr = yr * (dyr - sum(dyr * yr)) (dxr may be dyr).
inline void SoftmaxGradRow(const float *yr, const float *dyr, int64_t d, float *dxr) {
  float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
  for (int64_t j = 0; j < d; j++) dot += yr[j] * dyr[j];
#pragma omp simd
  for (int64_t j = 0; j < d; j++) dxr[j] = yr[j] * (dyr[j] - dot);
}
}  // namespace

extern "C" int SoftmaxForward(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const float *x = static_cast<const float *>(params[0]);
  float *y = static_cast<float *>(params[1]);
  const int64_t d = shapes[0][ndims[0] - 1], rows = Count(ndims[0], shapes[0]) / d;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) SoftmaxRow(x + r * d, d, y + r * d);
  return 0;
}

// params: y (softmax output), dy -> dx
extern "C" int SoftmaxBackward(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const float *y = static_cast<const float *>(params[0]);
  const float *dy = static_cast<const float *>(params[1]);
  float *dx = static_cast<float *>(params[2]);
  const int64_t d = shapes[0][ndims[0] - 1], rows = Count(ndims[0], shapes[0]) / d;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) SoftmaxGradRow(y + r * d, dy + r * d, d, dx + r * d);
  return 0;
}

#ifdef BERT_REPRO_OPENBLAS
// A linear layer's matrix products through OpenBLAS's sgemm (the copy numpy's wheel ships, 64-bit
// integer interface), forward and both gradients. MindSpore 2.7's CPU MatMul was ~70% of a
// BERT-mini step's kernel time (results/bench/*-profile-bert_mini.md); with these the step is
// 17% shorter (bench part a, --stock-matmul against the default). Any leading dims are rows.
extern "C" void cblas_sgemm64_(int order, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                               float alpha, const float *a, int64_t lda, const float *b,
                               int64_t ldb, float beta, float *c, int64_t ldc);
namespace {
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;
}  // namespace

// params: x (..., k), w (n, k) -> y (..., n) = x @ w^T
extern "C" int MatMulNT(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const float *x = static_cast<const float *>(params[0]);
  const float *w = static_cast<const float *>(params[1]);
  float *y = static_cast<float *>(params[2]);
  const int64_t k = shapes[1][1], n = shapes[1][0], rows = Count(ndims[0], shapes[0]) / k;
  cblas_sgemm64_(kRowMajor, kNoTrans, kTrans, rows, n, k, 1.0f, x, k, w, k, 0.0f, y, n);
  return 0;
}

// params: dy (..., n), w (n, k) -> dx (..., k) = dy @ w
extern "C" int MatMulNN(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const float *dy = static_cast<const float *>(params[0]);
  const float *w = static_cast<const float *>(params[1]);
  float *dx = static_cast<float *>(params[2]);
  const int64_t n = shapes[1][0], k = shapes[1][1], rows = Count(ndims[0], shapes[0]) / n;
  cblas_sgemm64_(kRowMajor, kNoTrans, kNoTrans, rows, k, n, 1.0f, dy, n, w, k, 0.0f, dx, k);
  return 0;
}

// params: dy (..., n), x (..., k), w (n, k; its shape only) -> dw (n, k) = dy^T @ x
extern "C" int MatMulTN(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const float *dy = static_cast<const float *>(params[0]);
  const float *x = static_cast<const float *>(params[1]);
  float *dw = static_cast<float *>(params[3]);
  const int64_t n = shapes[2][0], k = shapes[2][1], rows = Count(ndims[0], shapes[0]) / n;
  cblas_sgemm64_(kRowMajor, kTrans, kNoTrans, n, k, rows, 1.0f, dy, n, x, k, 0.0f, dw, k);
  return 0;
}
// One BERT encoder layer (self-attention, its output projection, dropout, residual and LayerNorm,
// then the feed-forward block likewise), forward in one launch and backward in one. At BERT-tiny
// and BERT-mini sizes a step was more framework than arithmetic: ~60 ops per layer each way, and
// 383 of 701 ms per BERT-tiny step outside any kernel (results/bench/*-profile-bert_tiny.md).
// Same math as the stock layer (transformers' BertLayer, eager attention, exact GELU): the linear
// layers and attention products by OpenBLAS (see SerialBlas), dropout masks from the same Philox
// draws as DropoutForward, so the two paths agree to float rounding (tests/test_cpu_kernels.py).
extern "C" void openblas_set_num_threads64_(int);
extern "C" int openblas_get_num_threads64_(void);

namespace {
struct LayerDims {
  int64_t batch, length, hidden, heads, head, inner, tokens, mask_batch, mask_rows;
};

// meta (float32): heads, eps of the two LayerNorms, attention dropout p and 1 / (1 - p), hidden
// dropout p and 1 / (1 - p). key (int64): seed, then the dropout calls of the attention
// probabilities, the attention output and the feed-forward output (-1: that dropout is off).
LayerDims DimsOf(int64_t **shapes, int *ndims, const float *meta) {
  LayerDims d{};
  d.batch = shapes[0][0];
  d.length = shapes[0][1];
  d.hidden = shapes[0][2];
  d.heads = static_cast<int64_t>(meta[0]);
  d.head = d.hidden / d.heads;
  d.inner = shapes[12][0];
  d.tokens = d.batch * d.length;
  d.mask_batch = shapes[1][0];              // 1 or batch
  d.mask_rows = shapes[1][ndims[1] - 2];    // 1 (padding mask) or length (causal)
  return d;
}

// The activations the backward pass reads, in one float32 buffer (the forward's second output).
struct Saved {
  float *q, *k, *v, *probs, *ctx, *a1, *h1, *u, *gu, *a2;
};
Saved Layout(float *s, const LayerDims &d) {
  const int64_t th = d.tokens * d.hidden, ti = d.tokens * d.inner;
  Saved out{};
  out.q = s;
  out.k = out.q + th;
  out.v = out.k + th;
  out.probs = out.v + th;  // softmax output before dropout, (batch, heads, length, length)
  out.ctx = out.probs + d.batch * d.heads * d.length * d.length;
  out.a1 = out.ctx + th;   // the first LayerNorm's input
  out.h1 = out.a1 + th;    // its output
  out.u = out.h1 + th;     // the feed-forward block's pre-activation, (tokens, inner)
  out.gu = out.u + ti;     // its GELU
  out.a2 = out.gu + ti;    // the second LayerNorm's input
  return out;
}

void Sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
           int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
  cblas_sgemm64_(kRowMajor, ta ? kTrans : kNoTrans, tb ? kTrans : kNoTrans, m, n, k, alpha, a, lda,
                 b, ldb, beta, c, ldc);
}

// OpenBLAS single-threaded while a layer kernel runs: the kernel splits each matrix product into
// one block of rows per OpenMP thread itself. OpenBLAS's own pool, woken for every product between
// OpenMP loops, fought OpenMP's threads for the cores: a BERT-small layer at 32 x 128 took 215 ms
// forward and 447 ms backward that way, 159 and 309 ms split (2 threads, the same results bit for
// bit; the kernels alone, 2026-12-05).
class SerialBlas {
 public:
  SerialBlas() : saved_(openblas_get_num_threads64_()) { openblas_set_num_threads64_(1); }
  ~SerialBlas() { openblas_set_num_threads64_(saved_); }

 private:
  int saved_;
};

// Runs body(lo, hi) on one contiguous block of [0, n) per OpenMP thread.
template <typename Body>
void Blocks(int64_t n, Body body) {
#pragma omp parallel
  {
    const int64_t t = omp_get_thread_num(), threads = omp_get_num_threads();
    const int64_t lo = n * t / threads, hi = n * (t + 1) / threads;
    if (hi > lo) body(lo, hi);
  }
}

// y (rows, out) = x (rows, in) @ w^T + b, w (out, in) as nn.Linear keeps it; the threads split
// the rows.
void Linear(const float *x, const float *w, const float *b, int64_t rows, int64_t in, int64_t out, float *y) {
  Blocks(rows, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; r++) std::memcpy(y + r * out, b, out * sizeof(float));
    Sgemm(false, true, hi - lo, out, in, 1.0f, x + lo * in, in, w, in, 1.0f, y + lo * out, out);
  });
}

// A linear layer's three gradients from dy (rows, out): dw = dy^T x (the threads split its
// rows), db = column sums, dx (+)= dy @ w (accumulate: beta 1; the threads split the rows).
void LinearGrad(const float *dy, const float *x, const float *w, int64_t rows, int64_t in,
                int64_t out, float *dw, float *db, float *dx, float beta) {
  Blocks(out, [&](int64_t lo, int64_t hi) {
    Sgemm(true, false, hi - lo, in, rows, 1.0f, dy + lo, out, x, in, 0.0f, dw + lo * in, in);
  });
  ColumnSums(dy, rows, out, db);
  Blocks(rows, [&](int64_t lo, int64_t hi) {
    Sgemm(false, false, hi - lo, in, out, 1.0f, dy + lo * out, out, w, in, beta, dx + lo * in, in);
  });
}

void AddInto(const float *a, const float *b, int64_t n, float *y) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

// The layer kernels' temporaries, kept between calls by the calling thread and grown as needed.
// Fresh std::vectors cost their zero fill and, above malloc's mmap threshold, a page fault per
// 4 KB every call: a BERT-small layer's backward at 32 x 128 took 353 ms with them, 327 ms with
// this (the kernel alone, 2 threads, 2026-12-05). Kept size: 6 x tokens x hidden + tokens x
// inner floats (84 MB for BERT-small at 32 x 128, ~500 MB for BERT-BASE at 32 x 512). Forward
// and backward never nest.
float *Workspace(int64_t floats) {
  thread_local std::vector<float> buffer;
  if (static_cast<int64_t>(buffer.size()) < floats) buffer.resize(floats);
  return buffer.data();
}

// Runs body(bh, scratch...) for every (batch row, head) pair, the threads splitting the pairs.
template <typename Body>
void EachHead(const LayerDims &d, int scratch_matrices, Body body) {
#pragma omp parallel
  {
    std::vector<float> scratch(scratch_matrices * d.length * d.length);
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < d.batch * d.heads; bh++) body(bh, scratch.data());
  }
}
}  // namespace

// params: x (batch, length, hidden), additive attention mask (1 or batch, 1, 1 or length, length),
// then per nn.Linear weight (out, in) and bias, per LayerNorm gamma and beta: query, key, value,
// attention output, LayerNorm 1, intermediate, output, LayerNorm 2; meta; key -> y, saved
extern "C" int BertLayerForward(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  auto in = [&](int i) { return static_cast<const float *>(params[i]); };
  const float *x = in(0), *mask = in(1), *meta = in(18);
  const int64_t *key = static_cast<const int64_t *>(params[19]);
  float *y = static_cast<float *>(params[20]);
  const LayerDims d = DimsOf(shapes, ndims, meta);
  const Saved s = Layout(static_cast<float *>(params[21]), d);
  const SerialBlas serial_blas;
  const int64_t th = d.tokens * d.hidden, len = d.length, hid = d.hidden;
  const float alpha = 1.0f / std::sqrt(static_cast<float>(d.head));
  Linear(x, in(2), in(3), d.tokens, hid, hid, s.q);
  Linear(x, in(4), in(5), d.tokens, hid, hid, s.k);
  Linear(x, in(6), in(7), d.tokens, hid, hid, s.v);
  EachHead(d, 1, [&](int64_t bh, float *dropped) {
    const int64_t b = bh / d.heads, h = bh % d.heads, at = b * len * hid + h * d.head;
    float *p = s.probs + bh * len * len;
    Sgemm(false, true, len, len, d.head, alpha, s.q + at, hid, s.k + at, hid, 0.0f, p, len);
    for (int64_t i = 0; i < len; i++) {
      float *row = p + i * len;
      const float *m = mask + ((d.mask_batch == 1 ? 0 : b) * d.mask_rows + (d.mask_rows == 1 ? 0 : i)) * len;
      for (int64_t j = 0; j < len; j++) row[j] += m[j];
      SoftmaxRow(row, len, row);
    }
    const float *used = p;
    if (key[1] >= 0) {
      DropSerial(key[0], key[1], bh * len * len, len * len, meta[3], meta[4], p, dropped);
      used = dropped;
    }
    Sgemm(false, false, len, d.head, len, 1.0f, used, len, s.v + at, hid, 0.0f, s.ctx + at, hid);
  });
  float *t = Workspace(th);
  Linear(s.ctx, in(8), in(9), d.tokens, hid, hid, t);
  if (key[2] >= 0) Drop(key[0], key[2], 0, th, meta[5], meta[6], t, t, nullptr);
  AddInto(x, t, th, s.a1);
  LayerNormRows(s.a1, in(10), in(11), meta[1], d.tokens, hid, s.h1);
  Linear(s.h1, in(12), in(13), d.tokens, hid, d.inner, s.u);
  const int64_t ti = d.tokens * d.inner;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < ti; i++) s.gu[i] = Gelu(s.u[i]);
  Linear(s.gu, in(14), in(15), d.tokens, d.inner, hid, t);
  if (key[3] >= 0) Drop(key[0], key[3], 0, th, meta[5], meta[6], t, t, nullptr);
  AddInto(s.h1, t, th, s.a2);
  LayerNormRows(s.a2, in(16), in(17), meta[2], d.tokens, hid, y);
  return 0;
}

// params: dy, saved, then the forward's inputs (x, mask, the 16 weights, meta, key) -> dx, then
// the 16 weights' gradients in the forward's order
extern "C" int BertLayerBackward(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  auto in = [&](int i) { return static_cast<const float *>(params[i]); };
  auto out = [&](int i) { return static_cast<float *>(params[i]); };
  const float *dy = in(0), *x = in(2), *meta = in(20);
  const int64_t *key = static_cast<const int64_t *>(params[21]);
  const LayerDims d = DimsOf(shapes + 2, ndims + 2, meta);
  const Saved s = Layout(static_cast<float *>(params[1]), d);
  const SerialBlas serial_blas;
  const int64_t th = d.tokens * d.hidden, ti = d.tokens * d.inner, len = d.length, hid = d.hidden;
  const float alpha = 1.0f / std::sqrt(static_cast<float>(d.head));
  float *dx = out(22);
  // weight k of the forward (0: query weight ... 15: LayerNorm 2 beta): input 4 + k, gradient 23 + k
  float *dh1 = Workspace(6 * th + ti), *dt = dh1 + th, *dctx = dt + th, *dq = dctx + th,
        *dk = dq + th, *dv = dk + th, *dgu = dv + th;
  LayerNormGrad(s.a2, in(4 + 14), dy, meta[2], d.tokens, hid, dh1, out(23 + 14), out(23 + 15));
  if (key[3] >= 0) Drop(key[0], key[3], 0, th, meta[5], meta[6], dh1, dt, nullptr);
  else std::memcpy(dt, dh1, th * sizeof(float));
  LinearGrad(dt, s.gu, in(4 + 12), d.tokens, d.inner, hid, out(23 + 12), out(23 + 13), dgu, 0.0f);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < ti; i++) dgu[i] *= GeluGrad(s.u[i]);
  LinearGrad(dgu, s.h1, in(4 + 10), d.tokens, hid, d.inner, out(23 + 10), out(23 + 11), dh1, 1.0f);
  LayerNormGrad(s.a1, in(4 + 8), dh1, meta[1], d.tokens, hid, dx, out(23 + 8), out(23 + 9));
  if (key[2] >= 0) Drop(key[0], key[2], 0, th, meta[5], meta[6], dx, dt, nullptr);
  else std::memcpy(dt, dx, th * sizeof(float));
  LinearGrad(dt, s.ctx, in(4 + 6), d.tokens, hid, hid, out(23 + 6), out(23 + 7), dctx, 0.0f);
  const float keep_scale = meta[4];
  EachHead(d, 2, [&](int64_t bh, float *scratch) {
    const int64_t b = bh / d.heads, h = bh % d.heads, at = b * len * hid + h * d.head;
    const float *p = s.probs + bh * len * len;
    float *dropped = scratch, *dp = scratch + len * len;
    const float *used = p;
    if (key[1] >= 0) {
      DropSerial(key[0], key[1], bh * len * len, len * len, meta[3], keep_scale, p, dropped);
      used = dropped;
    }
    Sgemm(true, false, len, d.head, len, 1.0f, used, len, dctx + at, hid, 0.0f, dv + at, hid);
    Sgemm(false, true, len, len, d.head, 1.0f, dctx + at, hid, s.v + at, hid, 0.0f, dp, len);
    // The same mask on the gradient, read off the dropped probabilities instead of drawn again:
    // a kept element is nonzero where p is, and where p is 0 the softmax gradient ignores dp.
    if (key[1] >= 0) {
#pragma omp simd
      for (int64_t j = 0; j < len * len; j++) dp[j] *= dropped[j] != 0.0f ? keep_scale : 0.0f;
    }
    for (int64_t i = 0; i < len; i++) SoftmaxGradRow(p + i * len, dp + i * len, len, dp + i * len);
    Sgemm(false, false, len, d.head, len, alpha, dp, len, s.k + at, hid, 0.0f, dq + at, hid);
    Sgemm(true, false, len, d.head, len, alpha, dp, len, s.q + at, hid, 0.0f, dk + at, hid);
  });
  LinearGrad(dq, x, in(4 + 0), d.tokens, hid, hid, out(23 + 0), out(23 + 1), dx, 1.0f);
  LinearGrad(dk, x, in(4 + 2), d.tokens, hid, hid, out(23 + 2), out(23 + 3), dx, 1.0f);
  LinearGrad(dv, x, in(4 + 4), d.tokens, hid, hid, out(23 + 4), out(23 + 5), dx, 1.0f);
  return 0;
}
#endif
