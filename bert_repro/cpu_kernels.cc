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
}  // namespace

extern "C" int GeluForward(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const float *x = static_cast<const float *>(params[0]);
  float *y = static_cast<float *>(params[1]);
  const int64_t n = Count(ndims[0], shapes[0]);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * kSqrtHalf));
  return 0;
}

extern "C" int GeluBackward(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const float *x = static_cast<const float *>(params[0]);
  const float *dy = static_cast<const float *>(params[1]);
  float *dx = static_cast<float *>(params[2]);
  const int64_t n = Count(ndims[0], shapes[0]);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const float v = x[i];
    const float cdf = 0.5f * (1.0f + std::erf(v * kSqrtHalf));
    dx[i] = dy[i] * (cdf + v * kInvSqrt2Pi * std::exp(-0.5f * v * v));
  }
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

// params: x (rows, d), gamma (d), beta (d), eps (scalar tensor) -> y
extern "C" int LayerNormForward(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const float *x = static_cast<const float *>(params[0]);
  const float *gamma = static_cast<const float *>(params[1]);
  const float *beta = static_cast<const float *>(params[2]);
  const float eps = *static_cast<const float *>(params[3]);
  float *y = static_cast<float *>(params[4]);
  const int64_t d = shapes[1][0];
  const int64_t rows = Count(ndims[0], shapes[0]) / d;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * d;
    float *yr = y + r * d;
    const auto [mean, rstd] = MeanRstd(xr, d, eps);
    for (int64_t j = 0; j < d; j++) yr[j] = (xr[j] - mean) * rstd * gamma[j] + beta[j];
  }
  return 0;
}

// params: x (rows, d), gamma (d), dy (rows, d), eps -> dx (rows, d), dgamma (d), dbeta (d)
extern "C" int LayerNormBackward(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const float *x = static_cast<const float *>(params[0]);
  const float *gamma = static_cast<const float *>(params[1]);
  const float *dy = static_cast<const float *>(params[2]);
  const float eps = *static_cast<const float *>(params[3]);
  float *dx = static_cast<float *>(params[4]);
  float *dgamma = static_cast<float *>(params[5]);
  float *dbeta = static_cast<float *>(params[6]);
  const int64_t d = shapes[1][0];
  const int64_t rows = Count(ndims[0], shapes[0]) / d;
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
}  // namespace

// params: x (any shape), key (int64: seed, call, first element's index in the draw),
// rate (float32: p, 1 / (1 - p) as numpy rounds them) -> y = x * mask, mask (x's shape)
extern "C" int DropoutForward(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const float *x = static_cast<const float *>(params[0]);
  const int64_t *key = static_cast<const int64_t *>(params[1]);
  const float *rate = static_cast<const float *>(params[2]);
  float *y = static_cast<float *>(params[3]);
  float *mask = static_cast<float *>(params[4]);
  const int64_t n = Count(ndims[0], shapes[0]);
  const uint64_t seed = key[0], call = key[1], first = key[2];
  const float p = rate[0], scale = rate[1];
  const int64_t first_block = first / 8, last_block = (first + n + 7) / 8;
#pragma omp parallel for schedule(static)
  for (int64_t b = first_block; b < last_block; b++) {
    const Block block = Philox4x64(static_cast<uint64_t>(b) + 1, seed, call);
    for (int w = 0; w < 8; w++) {
      const int64_t i = b * 8 + w - static_cast<int64_t>(first);
      if (i < 0 || i >= n) continue;
      const uint64_t word = block.v[w / 2];
      const uint32_t bits = static_cast<uint32_t>(w % 2 == 0 ? word : word >> 32);
      const float draw = static_cast<float>(bits >> 8) * (1.0f / 16777216.0f);
      const float m = draw >= p ? scale : 0.0f;
      mask[i] = m;
      y[i] = x[i] * m;
    }
  }
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

// params: dy (rows, d), b (d; its shape only) -> db (d)
extern "C" int BiasGrad(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const float *dy = static_cast<const float *>(params[0]);
  float *db = static_cast<float *>(params[2]);
  const int64_t d = shapes[1][0], rows = Count(ndims[0], shapes[0]) / d;
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
  return 0;
}

// Softmax over the last axis and its gradient dx = y * (dy - sum(dy * y)), one pass per row
// (MindSpore expands the gradient into four broadcasting kernels: ~40 ms per step for BERT-tiny).
extern "C" int SoftmaxForward(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const float *x = static_cast<const float *>(params[0]);
  float *y = static_cast<float *>(params[1]);
  const int64_t d = shapes[0][ndims[0] - 1], rows = Count(ndims[0], shapes[0]) / d;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * d;
    float *yr = y + r * d;
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
  return 0;
}

// params: y (softmax output), dy -> dx
extern "C" int SoftmaxBackward(int, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  const float *y = static_cast<const float *>(params[0]);
  const float *dy = static_cast<const float *>(params[1]);
  float *dx = static_cast<float *>(params[2]);
  const int64_t d = shapes[0][ndims[0] - 1], rows = Count(ndims[0], shapes[0]) / d;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float *yr = y + r * d, *dyr = dy + r * d;
    float *dxr = dx + r * d;
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < d; j++) dot += yr[j] * dyr[j];
#pragma omp simd
    for (int64_t j = 0; j < d; j++) dxr[j] = yr[j] * (dyr[j] - dot);
  }
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
#endif
