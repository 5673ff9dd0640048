#include "models/data/data.h"

#include "autograd/io/input_file.h"
#include "models/data/image.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <numbers>
#include <numeric>
#include <set>
#include <sstream>

namespace loom::data {

namespace fs = std::filesystem;

// ---- IDX ------------------------------------------------------------------------------
namespace {

std::string hex(uint64_t v, int digits) {
  static const char* d = "0123456789abcdef";
  std::string s = "0x";
  for (int i = digits - 1; i >= 0; --i) s += d[(v >> (4 * i)) & 0xF];
  return s;
}

// A gzip (or, transparently, plain) file read through zlib.
class GzReader {
 public:
  explicit GzReader(const std::string& path) : what_("read_idx: " + path) {
    InputFile file(path, "read_idx");  // a regular file: a FIFO would block gzopen
    file_bytes_ = file.size();
    f_ = gzdopen(file.fd(), "rb");
    LOOM_CHECK(f_, what_, ": cannot open: out of memory");
    file.release();  // gzclose closes it
    gzbuffer(f_, 1 << 17);
  }
  ~GzReader() { gzclose(f_); }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads up to n bytes; fewer only at the end of the data. A damaged or
  // truncated gzip stream (zlib reports Z_BUF_ERROR / Z_DATA_ERROR, also for
  // a wrong CRC at the end) is an error, not a short read.
  size_t read(void* buf, size_t n) {
    size_t got = 0;
    while (got < n) {
      unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - got, size_t(1) << 30));
      int r = gzread(f_, static_cast<char*>(buf) + got, chunk);
      if (r <= 0) break;
      got += static_cast<size_t>(r);
    }
    if (got < n) {
      int code = Z_OK;
      const char* msg = gzerror(f_, &code);
      LOOM_CHECK(code == Z_OK, what_, ": ",
                 code == Z_ERRNO ? "read failed: " : "corrupt or truncated gzip data: ", msg);
    }
    return got;
  }
  const std::string& what() const { return what_; }
  uint64_t file_bytes() const { return file_bytes_; }
  // Whether the file is plain rather than gzip (known once something was read).
  bool plain() const { return gzdirect(f_) == 1; }

 private:
  std::string what_;
  gzFile f_ = nullptr;
  uint64_t file_bytes_ = 0;
};

// Deflate's largest expansion (zlib's technical details: 1032:1), so a gzip
// file of b bytes holds at most 1032 b bytes of data.
constexpr uint64_t kMaxInflation = 1032;

}  // namespace

IdxArray read_idx(const std::string& path) {
  GzReader in(path);
  const std::string& what = in.what();
  unsigned char magic[4];
  LOOM_CHECK(in.read(magic, 4) == 4, what, ": truncated: shorter than the 4-byte IDX magic number");
  uint32_t m = uint32_t(magic[0]) << 24 | uint32_t(magic[1]) << 16 | uint32_t(magic[2]) << 8 | magic[3];
  LOOM_CHECK(magic[0] == 0 && magic[1] == 0, what, ": bad magic number ", hex(m, 8),
             " (an IDX file starts with 0x0000)");
  LOOM_CHECK(magic[2] == 0x08, what, ": element type ", hex(magic[2], 2),
             " is not unsigned byte (0x08), the only type MNIST uses");
  const int ndims = magic[3];
  LOOM_CHECK(ndims >= 1 && ndims <= 4, what, ": magic number ", hex(m, 8), " declares ", ndims, " dimensions");

  IdxArray out;
  uint64_t total = 1;
  for (int i = 0; i < ndims; ++i) {
    unsigned char b[4];
    LOOM_CHECK(in.read(b, 4) == 4, what, ": truncated inside the dimension list");
    uint32_t d = uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3];
    LOOM_CHECK(d > 0, what, ": dimension ", i, " is 0");
    out.dims.push_back(d);
    // Checked before multiplying: a wrapped product could pass for a small one.
    LOOM_CHECK(d <= (uint64_t(1) << 36) / total, what, ": dimensions ", out.dims, "... describe more than 64 GiB");
    total *= d;
  }
  // What the file's length allows, before allocating anything: a plain file
  // holds exactly the header and the data; a gzip file cannot inflate to more.
  const uint64_t header = 4 + 4 * static_cast<uint64_t>(ndims), bytes = in.file_bytes();
  if (in.plain()) {
    LOOM_CHECK(header + total <= bytes, what, ": truncated: dimensions ", out.dims, " need ", total,
               " bytes of data, found ", bytes - header);
    LOOM_CHECK(header + total == bytes, what, ": more data than the dimensions ", out.dims, " describe");
  } else {
    LOOM_CHECK(total <= kMaxInflation * bytes, what, ": truncated: dimensions ", out.dims, " need ", total,
               " bytes of data, more than a gzip file of ", bytes, " bytes can hold");
  }
  // Grow as data arrives rather than trusting the header with one allocation.
  constexpr size_t kChunk = size_t(1) << 24;
  while (out.bytes.size() < total) {
    size_t want = std::min<uint64_t>(kChunk, total - out.bytes.size());
    size_t at = out.bytes.size();
    out.bytes.resize(at + want);
    size_t got = in.read(out.bytes.data() + at, want);
    LOOM_CHECK(got == want, what, ": truncated: dimensions ", out.dims, " need ", total, " bytes of data, found ",
               at + got);
  }
  unsigned char extra;
  LOOM_CHECK(in.read(&extra, 1) == 0, what, ": more data than the dimensions ", out.dims, " describe");
  return out;
}

namespace {

std::string locate_idx(const std::string& dir, const std::string& name) {
  std::error_code ec;
  for (const std::string& p : {dir + "/" + name + ".gz", dir + "/" + name})
    if (fs::is_regular_file(p, ec)) return p;
  throw Error(str("load_mnist: ", dir, "/", name, ".gz not found (nor uncompressed ", name, "). ", dir,
                  " should hold train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz "
                  "and t10k-labels-idx1-ubyte.gz; for Fashion-MNIST, install Debian's dataset-fashion-mnist package "
                  "(apt install dataset-fashion-mnist), which puts them in ",
                  kFashionMnistDir));
}

}  // namespace

LabeledImages load_mnist(Split split, const std::string& dir, PixelRange range) {
  // A missing folder is left to locate_idx, whose error says what to install.
  std::error_code ec;
  if (fs::exists(dir, ec)) check_directory(dir, "load_mnist");
  const std::string prefix = split == Split::Train ? "train" : "t10k";
  const std::string images_path = locate_idx(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = locate_idx(dir, prefix + "-labels-idx1-ubyte");
  IdxArray images = read_idx(images_path);
  IdxArray labels = read_idx(labels_path);
  LOOM_CHECK(images.dims.size() == 3, "load_mnist: ", images_path, " holds an array of shape ", images.dims,
             ", not images [N, rows, cols]");
  LOOM_CHECK(labels.dims.size() == 1, "load_mnist: ", labels_path, " holds an array of shape ", labels.dims,
             ", not labels [N]");
  const int64_t n = images.dims[0], h = images.dims[1], w = images.dims[2];
  LOOM_CHECK(labels.dims[0] == n, "load_mnist: ", images_path, " has ", n, " images but ", labels_path, " has ",
             labels.dims[0], " labels");

  LabeledImages out;
  out.labels = empty({n}, TensorOptions{DType::Int64});
  int64_t* lp = out.labels.data<int64_t>();
  const uint8_t* lb = labels.bytes.data();
  for (int64_t i = 0; i < n; ++i) {
    LOOM_CHECK(lb[i] < 10, "load_mnist: ", labels_path, ": label ", int(lb[i]), " at index ", i, " is outside 0..9");
    lp[i] = lb[i];
  }
  // ZeroOne: x / 255; MinusOneOne: 2x / 255 − 1.
  const float scale = range == PixelRange::ZeroOne ? 1.0f / 255 : 2.0f / 255;
  const float shift = range == PixelRange::ZeroOne ? 0.0f : -1.0f;
  out.images = empty({n, 1, h, w});
  float* ip = out.images.data<float>();
  const uint8_t* pb = images.bytes.data();
  for (int64_t i = 0, count = out.images.numel(); i < count; ++i) ip[i] = pb[i] * scale + shift;
  return out;
}

const std::array<std::string_view, 10>& fashion_mnist_classes() {
  static const std::array<std::string_view, 10> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                         "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

std::vector<std::string> fashion_mnist_class_names(int64_t k) {
  LOOM_CHECK(k >= 0 && k < 10, "fashion_mnist_class_names: class ", k, " is not in [0, 10)");
  std::string name(fashion_mnist_classes()[static_cast<size_t>(k)]);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::tolower(ch); });
  std::vector<std::string> out{name};
  if (name.find('/') != std::string::npos)
    for (size_t start = 0, slash = 0; slash != std::string::npos; start = slash + 1) {
      slash = name.find('/', start);
      out.push_back(name.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    }
  if (name.find(' ') != std::string::npos) {
    std::replace(name.begin(), name.end(), ' ', '_');
    out.push_back(name);
  }
  return out;
}

int64_t fashion_mnist_class(const std::string& name) {
  if (name.size() == 1 && name[0] >= '0' && name[0] <= '9') return name[0] - '0';
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
  for (int64_t k = 0; k < 10; ++k) {
    const std::vector<std::string> names = fashion_mnist_class_names(k);
    if (std::find(names.begin(), names.end(), lower) != names.end()) return k;
  }
  return -1;
}

// ---- binarization -------------------------------------------------------------------------
namespace {
void check_intensities(const char* op, const Tensor& x) {
  LOOM_CHECK(x.defined() && is_floating(x.dtype()), op, ": needs floating intensities in [0, 1]");
  if (x.numel() == 0) return;
  NoGrad ng;
  double lo = min(x).item(), hi = max(x).item();
  LOOM_CHECK(lo >= 0 && hi <= 1, op, ": intensities of shape ", x.shape(), " span [", lo, ", ", hi,
             "], not [0, 1] (load the data with PixelRange::ZeroOne)");
}
}  // namespace

Tensor binarize(const Tensor& intensities, Generator& g) {
  check_intensities("binarize", intensities);
  return bernoulli(intensities.detach(), &g);
}

Tensor binarize_static(const Tensor& intensities, uint64_t seed) {
  check_intensities("binarize_static", intensities);
  Generator g(seed);
  return bernoulli(intensities.detach(), &g);
}

// ---- image folders ---------------------------------------------------------------------------
namespace {

bool is_image_name(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

bool is_hidden(const fs::path& p) { return p.filename().string().starts_with('.'); }

// Anything but a folder with an image's name: one that is not a regular file (a
// FIFO, a broken link) is then refused by read_image, naming it, not passed over unseen.
bool is_image_entry(const fs::directory_entry& e) { return !e.is_directory() && is_image_name(e.path()); }

// Sorted entries of dir passing keep(entry).
template <class Keep>
std::vector<fs::path> sorted_entries(const fs::path& dir, Keep keep) {
  std::vector<fs::path> out;
  for (const fs::directory_entry& e : fs::directory_iterator(dir))
    if (!is_hidden(e.path()) && keep(e)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// Resampling taps along one axis: output o reads source pixels first[o] ...
// first[o] + weights[o].size() − 1. The triangle filter's support is scaled by
// s = max(1, in/out): weight(i) ∝ max(0, 1 − |i + ½ − c| / s) around the source
// coordinate c = (o + ½)·in/out, normalized over the taps inside the image.
struct Taps {
  std::vector<int64_t> first;
  std::vector<std::vector<float>> weights;
};

Taps resample_taps(int64_t in, int64_t out) {
  Taps t;
  const double ratio = double(in) / double(out), support = std::max(1.0, ratio);
  for (int64_t o = 0; o < out; ++o) {
    const double c = (o + 0.5) * ratio;
    int64_t lo = std::max<int64_t>(0, int64_t(std::floor(c - support)));
    int64_t hi = std::min<int64_t>(in - 1, int64_t(std::ceil(c + support)));
    std::vector<float> w;
    double total = 0;
    for (int64_t i = lo; i <= hi; ++i) {
      double v = std::max(0.0, 1.0 - std::abs(i + 0.5 - c) / support);
      w.push_back(float(v));
      total += v;
    }
    for (float& v : w) v = float(v / total);
    t.first.push_back(lo);
    t.weights.push_back(std::move(w));
  }
  return t;
}

// Interleaved 8-bit pixels [h, w, c] → planar floats [c, size, size] in [-1, 1].
void resize_to_planar(const unsigned char* src, int64_t h, int64_t w, int64_t c, int64_t size, float* dst) {
  Taps tx = resample_taps(w, size), ty = resample_taps(h, size);
  std::vector<float> rows(h * size * c);  // horizontal pass: [h, size, c]
  for (int64_t y = 0; y < h; ++y)
    for (int64_t ox = 0; ox < size; ++ox)
      for (int64_t ch = 0; ch < c; ++ch) {
        float acc = 0;
        for (size_t k = 0; k < tx.weights[ox].size(); ++k)
          acc += tx.weights[ox][k] * src[(y * w + tx.first[ox] + int64_t(k)) * c + ch];
        rows[(y * size + ox) * c + ch] = acc;
      }
  for (int64_t oy = 0; oy < size; ++oy)
    for (int64_t ox = 0; ox < size; ++ox)
      for (int64_t ch = 0; ch < c; ++ch) {
        float acc = 0;
        for (size_t k = 0; k < ty.weights[oy].size(); ++k)
          acc += ty.weights[oy][k] * rows[((ty.first[oy] + int64_t(k)) * size + ox) * c + ch];
        dst[(ch * size + oy) * size + ox] = acc / 127.5f - 1.0f;  // [0, 255] → [-1, 1]
      }
}

// Reads the image file at path (read_image) into dst, planar [c, size, size] in
// [-1, 1]; "" on success, else why it could not be read ("<path>: <reason>").
std::string load_resized(const std::string& path, int64_t c, int64_t size, int64_t max_pixels, float* dst) {
  try {
    const Image img = read_image(path, c, max_pixels);
    resize_to_planar(img.pixels.data(), img.height, img.width, c, size, dst);
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

// The sub-folders of root (sorted) and the image files in each (sorted), with
// the index of each file's folder; an Error naming root when there are none.
struct FolderListing {
  std::vector<std::string> classes;
  std::vector<std::pair<std::string, int64_t>> files;  // path, label
};
FolderListing list_image_folder(const std::string& root) {
  const std::string what = "load_image_folder: " + root;
  check_directory(root, "load_image_folder");
  FolderListing out;
  try {
    for (const fs::path& dir : sorted_entries(root, [](const fs::directory_entry& e) { return e.is_directory(); })) {
      int64_t label = static_cast<int64_t>(out.classes.size());
      out.classes.push_back(dir.filename().string());
      auto images = sorted_entries(dir, is_image_entry);
      for (const fs::path& p : images) out.files.emplace_back(p.string(), label);
    }
  } catch (const fs::filesystem_error& e) {
    throw Error(str(what, ": cannot list: ", e.what()));
  }
  LOOM_CHECK(!out.classes.empty(), what, ": no sub-folders; expected one sub-folder of images per class or domain");
  LOOM_CHECK(!out.files.empty(), what, ": no .png/.jpg/.jpeg/.bmp files in its sub-folders");
  return out;
}

}  // namespace

std::vector<std::string> image_folder_files(const std::string& root) {
  std::vector<std::string> out;
  for (auto& [path, label] : list_image_folder(root).files) out.push_back(path);
  return out;
}

std::vector<std::string> image_folder_classes(const std::string& root) { return list_image_folder(root).classes; }

std::string image_folder_split(const std::string& dir, Split split) {
  std::error_code ec;
  const bool split_folders = fs::is_directory(fs::path(dir) / "train", ec) && fs::is_directory(fs::path(dir) / "test", ec);
  return split_folders ? (fs::path(dir) / (split == Split::Train ? "train" : "test")).string() : dir;
}

ImageFolder load_image_folder(const std::string& root, const ImageFolderOptions& o) {
  const std::string what = "load_image_folder: " + root;
  LOOM_CHECK(o.channels == 1 || o.channels == 3, what, ": channels must be 1 or 3, got ", o.channels);
  LOOM_CHECK(o.size >= 1 && o.size <= 4096, what, ": size must be in 1..4096, got ", o.size);
  FolderListing listing = list_image_folder(root);
  ImageFolder out;
  out.classes = std::move(listing.classes);
  const std::vector<std::pair<std::string, int64_t>>& files = listing.files;

  const int64_t c = o.channels, s = o.size, per_image = c * s * s;
  Tensor images = empty({static_cast<int64_t>(files.size()), c, s, s});
  std::vector<int64_t> labels;
  for (const auto& [path, label] : files) {
    const std::string reason = load_resized(path, c, s, o.max_pixels,
                                            images.data<float>() + static_cast<int64_t>(labels.size()) * per_image);
    if (!reason.empty()) {
      LOOM_CHECK(o.skip_unreadable, what, ": cannot read image ", reason);
      out.skipped.push_back(reason);
      continue;
    }
    labels.push_back(label);
    out.paths.push_back(path);
  }
  LOOM_CHECK(!labels.empty(), what, ": none of its ", files.size(), " image files could be read (first: ",
             out.skipped.front(), ")");
  if (!out.skipped.empty()) {
    std::cerr << "load_image_folder: warning: skipped " << out.skipped.size() << " unreadable image(s) under "
              << root << " (first: " << out.skipped.front() << ")\n";
    Tensor kept = empty({static_cast<int64_t>(labels.size()), c, s, s});
    std::memcpy(kept.data_ptr(), images.data_ptr(), labels.size() * per_image * sizeof(float));
    images = kept;
  }
  out.images = images;
  out.labels = from_vector(labels, {static_cast<int64_t>(labels.size())}, TensorOptions{DType::Int64});
  return out;
}

ImageFiles load_images(const std::string& path, int64_t size, int64_t channels, int64_t max_pixels) {
  LOOM_CHECK(channels == 1 || channels == 3, "load_images: channels must be 1 or 3, got ", channels);
  LOOM_CHECK(size >= 1 && size <= 4096, "load_images: size must be in 1..4096, got ", size);
  std::error_code ec;
  ImageFiles out;
  if (fs::is_directory(path, ec)) {
    try {
      for (const fs::path& p : sorted_entries(path, is_image_entry))
        out.paths.push_back(p.string());
    } catch (const fs::filesystem_error& e) {
      throw Error(str("load_images: ", path, ": cannot list: ", e.what()));
    }
    LOOM_CHECK(!out.paths.empty(), "load_images: ", path, ": no .png/.jpg/.jpeg/.bmp files in this folder");
  } else {
    LOOM_CHECK(fs::exists(path, ec), "load_images: ", path, ": no such file or folder");
    out.paths.push_back(path);
  }
  const int64_t n = static_cast<int64_t>(out.paths.size()), per_image = channels * size * size;
  Tensor images = empty({n, channels, size, size});
  for (int64_t i = 0; i < n; ++i) {
    const std::string reason = load_resized(out.paths[i], channels, size, max_pixels, images.data<float>() + i * per_image);
    LOOM_CHECK(reason.empty(), "load_images: cannot read image ", reason);
  }
  out.images = (images + 1.0) * 0.5;  // [-1, 1] → [0, 1]
  return out;
}

// ---- 2-D toy distributions ---------------------------------------------------------------------
Toy2d parse_toy_2d(const std::string& name) {
  if (name == "8gaussians") return Toy2d::EightGaussians;
  if (name == "25gaussians") return Toy2d::TwentyFiveGaussians;
  if (name == "swissroll") return Toy2d::SwissRoll;
  if (name == "moons") return Toy2d::TwoMoons;
  throw Error(
      str("parse_toy_2d: unknown 2-D data set '", name, "' (choose 8gaussians, 25gaussians, swissroll, moons)"));
}

ToyModes toy_2d_modes(Toy2d kind) {
  ToyModes m;
  if (kind == Toy2d::EightGaussians) {
    for (int k = 0; k < 8; ++k)
      m.centres.push_back({2 * std::cos(k * std::numbers::pi / 4), 2 * std::sin(k * std::numbers::pi / 4)});
    m.sigma = 0.02;
  } else if (kind == Toy2d::TwentyFiveGaussians) {
    for (int k = 0; k < 25; ++k) m.centres.push_back({2.0 * (k % 5 - 2), 2.0 * (k / 5 - 2)});
    m.sigma = 0.05;
  }
  return m;
}

Tensor make_toy_2d(Toy2d kind, int64_t n, uint64_t seed) {
  LOOM_CHECK(n >= 1, "make_toy_2d: needs at least one point, got n = ", n);
  Generator g(seed);
  const TensorOptions f64{DType::Float64};
  // u picks the mode / position along the curve, z is the Gaussian noise (2 per point).
  std::vector<double> u = rand({n, 2}, f64, &g).to_vector<double>();
  std::vector<double> z = randn({n, 2}, f64, &g).to_vector<double>();
  std::vector<float> xy(2 * n);
  constexpr double pi = std::numbers::pi;
  const ToyModes modes = toy_2d_modes(kind);
  for (int64_t i = 0; i < n; ++i) {
    const double u0 = u[2 * i], u1 = u[2 * i + 1], z0 = z[2 * i], z1 = z[2 * i + 1];
    double x = 0, y = 0;
    switch (kind) {
      case Toy2d::EightGaussians:
      case Toy2d::TwentyFiveGaussians: {
        const auto count = static_cast<int64_t>(modes.centres.size());
        const std::array<double, 2>& c = modes.centres[std::min<int64_t>(count - 1, int64_t(u0 * count))];  // u ∈ (0, 1]
        x = c[0] + modes.sigma * z0;
        y = c[1] + modes.sigma * z1;
        break;
      }
      case Toy2d::SwissRoll: {
        double t = 1.5 * pi * (1 + 2 * u0);
        x = t * std::cos(t) / 5 + 0.1 * z0;
        y = t * std::sin(t) / 5 + 0.1 * z1;
        break;
      }
      case Toy2d::TwoMoons: {
        // Upper moon (cos θ, sin θ), lower moon (1 − cos θ, ½ − sin θ); their
        // joint mean (½, ¼) is subtracted so the set is centred at the origin.
        double theta = pi * u1;
        bool upper = u0 <= 0.5;
        x = (upper ? std::cos(theta) : 1 - std::cos(theta)) - 0.5 + 0.05 * z0;
        y = (upper ? std::sin(theta) : 0.5 - std::sin(theta)) - 0.25 + 0.05 * z1;
        break;
      }
    }
    xy[2 * i] = float(x);
    xy[2 * i + 1] = float(y);
  }
  return from_vector(xy, {n, 2});
}

// ---- data sets by specification ------------------------------------------------------------
namespace {

// Fashion-MNIST images as spec shapes them: resized (bilinear) to spec.size, grey repeated into RGB.
Tensor fashion_mnist_shaped(Tensor images, const DataSpec& spec) {
  NoGrad ng;
  if (spec.size != images.size(2)) images = upsample_bilinear2d(images, spec.size, spec.size);
  if (spec.channels == 3) images = concat({images, images, images}, 1);
  return images;
}

// Dataset::TwoDomains (see there).
LabeledImages load_two_domains(const DataSpec& spec, Split split, const std::string& dir) {
  const bool train = split == Split::Train;
  const int64_t load = spec.load_size > 0 ? spec.load_size : spec.size;
  LOOM_CHECK(load >= spec.size, "load_dataset: load size ", load, " is smaller than the image size ", spec.size);
  auto from_folder = [&](const std::string& folder) {
    const Tensor x = load_images(folder, load, spec.channels, spec.max_image_pixels).images;
    return train ? x : center_crop(x, spec.size);
  };
  auto domains = [&](const std::string& a, const std::string& b) {
    LabeledImages out{from_folder(a), {}};
    out.labels = zeros({out.images.size(0)}, TensorOptions{DType::Int64});
    out.images_b = from_folder(b);
    return out;
  };
  LOOM_CHECK(spec.dirs[0].empty() == spec.dirs[1].empty(),
             "load_dataset: two domains need both folders (--data-a DIR --data-b DIR), got only ",
             spec.dirs[0].empty() ? str("B's: ", spec.dirs[1]) : str("A's: ", spec.dirs[0]));
  if (!spec.dirs[0].empty()) return domains(spec.dirs[0], spec.dirs[1]);
  std::error_code ec;
  if (!two_domains_from_fashion_mnist(spec, dir)) {
    const std::string which = train ? "train" : "test";
    for (const char* d : {"A", "B"})
      LOOM_CHECK(fs::is_directory(fs::path(dir) / (which + d), ec), "load_dataset: ", dir,
                 " has trainA/ but no ", which, d, "/ (the CycleGAN layout: trainA/ trainB/ testA/ testB/)");
    return domains((fs::path(dir) / (which + "A")).string(), (fs::path(dir) / (which + "B")).string());
  }
  for (int64_t k : spec.classes) LOOM_CHECK(k >= 0 && k < 10, "load_dataset: Fashion-MNIST class ", k, " is not in [0, 10)");
  LOOM_CHECK(spec.classes[0] != spec.classes[1], "load_dataset: the two domains are one class (",
             fashion_mnist_classes()[static_cast<size_t>(spec.classes[0])], ")");
  const LabeledImages all = load_mnist(split, dir.empty() ? kFashionMnistDir : dir);
  const std::vector<int64_t> labels = all.labels.to_vector<int64_t>();
  auto of_class = [&](int64_t k) {
    std::vector<int64_t> rows;
    for (size_t i = 0; i < labels.size(); ++i)
      if (labels[i] == k) rows.push_back(static_cast<int64_t>(i));
    LOOM_CHECK(!rows.empty(), "load_dataset: ", dir, " holds no image of class ", k);
    const Tensor idx = from_vector(rows, {static_cast<int64_t>(rows.size())});
    return std::make_pair(fashion_mnist_shaped(index_select(all.images, 0, idx), spec), index_select(all.labels, 0, idx));
  };
  auto [a, la] = of_class(spec.classes[0]);
  LabeledImages out{a, la};
  out.images_b = of_class(spec.classes[1]).first;
  return out;
}

// DataSpec::domains (see there): the images of those classes, in their order in d,
// each labelled by its class's position in `domains`.
LabeledImages of_domains(const LabeledImages& d, const std::vector<int64_t>& domains, const std::string& dir) {
  std::array<int64_t, 10> domain_of{};
  domain_of.fill(-1);
  for (size_t k = 0; k < domains.size(); ++k) {
    const int64_t c = domains[k];
    LOOM_CHECK(c >= 0 && c < 10, "load_dataset: Fashion-MNIST class ", c, " is not in [0, 10)");
    LOOM_CHECK(domain_of[static_cast<size_t>(c)] < 0, "load_dataset: class ", c, " is two domains");
    domain_of[static_cast<size_t>(c)] = static_cast<int64_t>(k);
  }
  std::vector<int64_t> rows, labels;
  const std::vector<int64_t> all = d.labels.to_vector<int64_t>();
  for (size_t i = 0; i < all.size(); ++i)
    if (all[i] >= 0 && all[i] < 10 && domain_of[static_cast<size_t>(all[i])] >= 0) {
      rows.push_back(static_cast<int64_t>(i));
      labels.push_back(domain_of[static_cast<size_t>(all[i])]);
    }
  LOOM_CHECK(!rows.empty(), "load_dataset: ", dir, " holds no image of the classes of the domains");
  const auto n = static_cast<int64_t>(rows.size());
  return {index_select(d.images, 0, from_vector(rows, {n})), from_vector(labels, {n})};
}

// Dataset::Attributes (see there).
LabeledImages load_attributes(const DataSpec& spec, Split split, const std::string& dir) {
  LOOM_CHECK(!spec.attr_file.empty() && !spec.attrs.empty(), "load_dataset: attributes need an attribute file and ",
             "the attributes to use");
  const AttributeTable t = read_attribute_file(spec.attr_file);
  std::vector<size_t> columns;
  for (const std::string& name : spec.attrs) {
    const auto at = std::find(t.names.begin(), t.names.end(), name);
    if (at == t.names.end()) {
      std::string all;
      for (const std::string& n : t.names) all += (all.empty() ? "" : ", ") + n;
      throw Error(str("load_dataset: attribute '", name, "' is not in ", spec.attr_file, " (it has ", all, ")"));
    }
    columns.push_back(static_cast<size_t>(at - t.names.begin()));
  }
  const auto n = static_cast<int64_t>(t.files.size()), a = static_cast<int64_t>(columns.size());
  const int64_t held_out = n >= 20000 ? 2000 : (n + 9) / 10, first = split == Split::Train ? 0 : n - held_out,
                last = split == Split::Train ? n - held_out : n;
  LOOM_CHECK(last > first, "load_dataset: ", spec.attr_file, " lists ", n, " images: too few for a training split");
  std::vector<Tensor> images;
  std::vector<float> labels;
  for (int64_t i = first; i < last; ++i) {
    const std::string path = (fs::path(dir) / t.files[static_cast<size_t>(i)]).string();
    LOOM_CHECK(fs::is_regular_file(path), "load_dataset: ", path, " (listed in ", spec.attr_file, ") is not an image file");
    images.push_back(load_images(path, spec.size, spec.channels, spec.max_image_pixels).images);
    for (size_t c : columns) labels.push_back(static_cast<float>(t.values[static_cast<size_t>(i) * t.names.size() + c]));
  }
  return {concat(images, 0), from_vector(labels, {last - first, a})};
}

}  // namespace

AttributeTable read_attribute_file(const std::string& path) {
  std::istringstream in(read_file(path, "attribute file", kMaxAttributeFileBytes));
  AttributeTable t;
  std::string line;
  int64_t number = 0, count = 0;
  auto next = [&] {
    ++number;
    if (!std::getline(in, line)) return false;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return true;
  };
  auto where = [&] { return str("attribute file ", path, ", line ", number, ": "); };
  LOOM_CHECK(next(), where(), "expected the number of images, found the end of the file");
  {
    std::istringstream first(line);
    std::string rest;
    LOOM_CHECK((first >> count) && count > 0 && !(first >> rest), where(), "expected the number of images (> 0), got '",
               line, "'");
  }
  LOOM_CHECK(next(), where(), "expected the attribute names, found the end of the file");
  {
    std::istringstream names(line);
    for (std::string name; names >> name;) {
      LOOM_CHECK(std::find(t.names.begin(), t.names.end(), name) == t.names.end(), where(), "attribute '", name,
                 "' is named twice");
      t.names.push_back(name);
    }
  }
  LOOM_CHECK(!t.names.empty(), where(), "expected the attribute names, got an empty line");
  std::set<std::string> seen;
  while (next()) {
    std::istringstream fields(line);
    std::string file;
    if (!(fields >> file)) continue;  // a blank line
    LOOM_CHECK(static_cast<int64_t>(t.files.size()) < count, where(), "more image lines than the ", count, " declared");
    LOOM_CHECK(seen.insert(file).second, where(), "'", file, "' is listed twice");
    size_t values = 0;
    for (std::string v; fields >> v; ++values) {
      LOOM_CHECK(v == "1" || v == "-1", where(), "the values are 1 or -1, got '", v, "'");
      t.values.push_back(v == "1" ? 1 : 0);
    }
    LOOM_CHECK(values == t.names.size(), where(), "expected ", t.names.size(), " values after '", file, "', got ", values);
    t.files.push_back(file);
  }
  LOOM_CHECK(static_cast<int64_t>(t.files.size()) == count, "attribute file ", path, ": ", count,
             " images declared, ", t.files.size(), " listed");
  return t;
}

bool two_domains_from_fashion_mnist(const DataSpec& spec, const std::string& dir) {
  std::error_code ec;
  return spec.dirs[0].empty() && spec.dirs[1].empty() && (dir.empty() || !fs::is_directory(fs::path(dir) / "trainA", ec));
}

bool is_image_folder(const std::string& dir) {
  if (dir.empty()) return false;
  std::error_code ec;
  for (const char* idx : {"train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"})
    if (fs::exists(fs::path(dir) / idx, ec)) return false;
  return true;
}

Tensor center_crop(const Tensor& images, int64_t size) {
  LOOM_CHECK(images.dim() == 4 && size >= 1 && size <= images.size(2) && size <= images.size(3),
             "center_crop: cannot crop ", images.shape(), " to ", size, " x ", size);
  const int64_t top = (images.size(2) - size) / 2, left = (images.size(3) - size) / 2;
  return slice(slice(images, 2, top, top + size), 3, left, left + size);
}

Tensor augment(const Tensor& images, const DataSpec& spec, Generator& g) {
  const int64_t load = spec.load_size > 0 ? spec.load_size : spec.size;
  if (load == spec.size && !spec.flip) return images;
  LOOM_CHECK(images.dim() == 4 && images.size(2) == load && images.size(3) == load && images.device().is_cpu() &&
                 images.dtype() == DType::Float32,
             "augment: expected float32 CPU images [B, C, ", load, ", ", load, "], got ", images.shape());
  const int64_t n = images.size(0), c = images.size(1), s = spec.size, offsets = load - s + 1;
  // Three draws per image, always: the crop's row and column, and the flip.
  const std::vector<double> u = rand({n, 3}, TensorOptions{DType::Float64}, &g).to_vector<double>();
  Tensor out = empty({n, c, s, s});
  const float* from = images.data<float>();
  float* to = out.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    // u ∈ (0, 1]: ⌊u·k⌋ ∈ [0, k], the min keeps it in [0, k).
    auto pick = [&](int j) { return std::min<int64_t>(offsets - 1, static_cast<int64_t>(u[3 * i + j] * offsets)); };
    const int64_t top = pick(0), left = pick(1);
    const bool mirror = spec.flip && u[3 * i + 2] <= 0.5;
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < s; ++y)
        for (int64_t x = 0; x < s; ++x)
          to[((i * c + ch) * s + y) * s + x] =
              from[((i * c + ch) * load + top + y) * load + left + (mirror ? s - 1 - x : x)];
  }
  return out;
}

LabeledImages load_dataset(const DataSpec& spec, Split split, const std::string& dir) {
  const bool train = split == Split::Train;
  if (spec.dataset == Dataset::Toy2d) {
    const int64_t n = train ? 60000 : 10000;
    return {make_toy_2d(parse_toy_2d(spec.toy), n, train ? 1 : 2), zeros({n}, TensorOptions{DType::Int64})};
  }
  LOOM_CHECK(spec.channels == 1 || spec.channels == 3, "load_dataset: channels must be 1 or 3, got ", spec.channels);
  LOOM_CHECK(spec.size >= 1 && spec.size <= 4096, "load_dataset: image size must be in 1..4096, got ", spec.size);
  if (spec.dataset == Dataset::TwoDomains) return load_two_domains(spec, split, dir);
  if (spec.dataset == Dataset::Attributes) return load_attributes(spec, split, dir);
  if (spec.dataset == Dataset::ImageFolder) {
    // The command line's --data defaults to the Fashion-MNIST folder, which holds IDX files, not images.
    LOOM_CHECK(!dir.empty() && fs::path(dir) != fs::path(kFashionMnistDir),
               "this model trains on an image folder: give it with --data DIR");
    ImageFolder f = load_image_folder(image_folder_split(dir, split), {.size = spec.size,
                                                                       .channels = spec.channels,
                                                                       .skip_unreadable = spec.skip_unreadable,
                                                                       .max_pixels = spec.max_image_pixels});
    return {(f.images + 1.0) * 0.5, f.labels};
  }
  LabeledImages d = load_mnist(split, dir.empty() ? kFashionMnistDir : dir);
  if (!spec.domains.empty()) d = of_domains(d, spec.domains, dir);
  d.images = fashion_mnist_shaped(d.images, spec);
  return d;
}

Tensor prepare_images(const Tensor& images01, const DataSpec& spec, Generator& g) {
  if (spec.dataset == Dataset::Toy2d) return images01;
  NoGrad ng;
  Tensor x = spec.binarize ? binarize(images01, g) : images01;
  if (spec.lo != 0 || spec.hi != 1) x = x * (spec.hi - spec.lo) + spec.lo;
  return x;
}

// ---- DataLoader -----------------------------------------------------------------------------------
namespace {

// SplitMix64's finalizer: decorrelates (seed, epoch) into a Philox key.
uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Rows idx[0..count) of src along dim 0, copied into a new CPU tensor.
Tensor gather_rows(const Tensor& src, const int64_t* idx, int64_t count) {
  Shape shape = src.shape();
  const size_t row_bytes = static_cast<size_t>(src.numel() / shape[0]) * dtype_size(src.dtype());
  shape[0] = count;
  Tensor out = empty(shape, TensorOptions{src.dtype()});
  const char* from = static_cast<const char*>(src.data_ptr());
  char* to = static_cast<char*>(out.data_ptr());
  for (int64_t i = 0; i < count; ++i) std::memcpy(to + i * row_bytes, from + idx[i] * row_bytes, row_bytes);
  return out;
}

}  // namespace

DataLoader::DataLoader(Tensor inputs, Tensor labels, DataLoaderOptions o)
    : inputs_(inputs.detach()), labels_(labels.defined() ? labels.detach() : Tensor()), options_(o) {
  LOOM_CHECK(inputs.defined() && inputs.dim() >= 1 && inputs.size(0) >= 1,
             "DataLoader: inputs need at least one sample along dim 0, got ",
             inputs.defined() ? str(inputs.shape()) : "an undefined tensor");
  LOOM_CHECK(inputs.device().is_cpu() && (!labels.defined() || labels.device().is_cpu()),
             "DataLoader: inputs and labels must be CPU tensors (move each batch to the device instead)");
  LOOM_CHECK(!labels.defined() || (labels.dim() >= 1 && labels.size(0) == inputs.size(0)), "DataLoader: labels ",
             labels.defined() ? str(labels.shape()) : "", " do not match the ", inputs.size(0), " inputs ",
             inputs.shape());
  LOOM_CHECK(o.batch_size >= 1, "DataLoader: batch_size must be positive, got ", o.batch_size);
  LOOM_CHECK(o.first_epoch >= 0, "DataLoader: first_epoch must be non-negative, got ", o.first_epoch);
  const int64_t n = inputs.size(0);
  batches_per_epoch_ = o.drop_last ? n / o.batch_size : (n + o.batch_size - 1) / o.batch_size;
  LOOM_CHECK(batches_per_epoch_ >= 1, "DataLoader: drop_last with batch_size ", o.batch_size, " leaves no batch of ",
             n, " samples");
  LOOM_CHECK(o.first_batch >= 0 && o.first_batch < batches_per_epoch_, "DataLoader: first_batch ", o.first_batch,
             " is outside the epoch's batches [0, ", batches_per_epoch_, ")");
  cursor_.epoch = o.first_epoch;
  cursor_.index = o.first_batch;
  cursor_.order = epoch_order(o.first_epoch);
  if (o.prefetch) thread_ = std::thread(&DataLoader::worker, this);
}

DataLoader::~DataLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  space_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  const int64_t n = num_samples();
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  if (!options_.shuffle || n < 2) return order;
  // Fisher–Yates: for i = n−1 … 1 swap i with j ~ U{0..i}, j = ⌊u·(i+1)⌋ with u ∈ (0, 1].
  Generator g(mix64(options_.seed ^ mix64(static_cast<uint64_t>(epoch))));
  std::vector<double> u = rand({n}, TensorOptions{DType::Float64}, &g).to_vector<double>();
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[std::min<int64_t>(i, int64_t(u[i] * (i + 1)))]);
  return order;
}

Batch DataLoader::make_batch(Cursor& c) const {
  const int64_t start = c.index * options_.batch_size;
  const int64_t count = std::min(options_.batch_size, num_samples() - start);
  Batch b;
  b.epoch = c.epoch;
  b.index = c.index;
  b.inputs = gather_rows(inputs_, c.order.data() + start, count);
  if (labels_.defined()) b.labels = gather_rows(labels_, c.order.data() + start, count);
  b.indices = from_vector(std::vector<int64_t>(c.order.begin() + start, c.order.begin() + start + count), {count});
  if (++c.index == batches_per_epoch_) {
    c.index = 0;
    c.order = epoch_order(++c.epoch);
  }
  return b;
}

void DataLoader::worker() {
  try {
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        space_.wait(lock, [&] { return stop_ || queue_.size() < kPrefetchDepth; });
        if (stop_) return;
      }
      Batch b = make_batch(cursor_);  // outside the lock: this is the work that overlaps training
      {
        std::lock_guard<std::mutex> lock(mutex_);
        queue_.push_back(std::move(b));
      }
      ready_.notify_one();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = std::current_exception();
    ready_.notify_one();
  }
}

Batch DataLoader::next() {
  if (!options_.prefetch) return make_batch(cursor_);
  std::unique_lock<std::mutex> lock(mutex_);
  ready_.wait(lock, [&] { return !queue_.empty() || error_; });
  if (queue_.empty()) std::rethrow_exception(error_);
  Batch b = std::move(queue_.front());
  queue_.pop_front();
  lock.unlock();
  space_.notify_one();
  return b;
}

}  // namespace loom::data
