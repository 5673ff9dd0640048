// Data for the models: Fashion-MNIST / MNIST (IDX files), image folders, 2-D
// toy distributions, binarization for likelihood models, and a DataLoader that
// prepares the next batch on a worker thread.
//
// Everything here produces CPU tensors; a training loop moves each batch to its
// device. Files are untrusted input: anything malformed is a loom::Error naming
// the path and what is wrong.
#pragma once

#include <array>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "autograd/loom.h"
#include "models/data/image.h"

namespace loom::data {

// ---- IDX files (MNIST, Fashion-MNIST) -----------------------------------------------
// Debian's dataset-fashion-mnist package installs the four files here.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// An IDX array of unsigned bytes: magic 0x00 0x00 0x08 <ndims>, then ndims
// big-endian u32 dimensions, then the row-major bytes.
struct IdxArray {
  Shape dims;
  std::vector<uint8_t> bytes;
};
// Reads a gzip-compressed or plain IDX file; checks the magic number, the
// element type (unsigned byte), truncation and trailing bytes.
IdxArray read_idx(const std::string& path);

enum class Split { Train, Test };
enum class PixelRange { ZeroOne, MinusOneOne };  // x / 255, or 2x / 255 − 1

struct LabeledImages {
  Tensor images;  // float32 [N, 1, H, W]
  Tensor labels;  // int64 [N], in 0..9 (Dataset::Attributes: float32 [N, A] in {0, 1})
  // float32 [M, C, H, W]: the second domain of a two-domain data set
  // (Dataset::TwoDomains; `images` is the first), unpaired with it; undefined otherwise.
  Tensor images_b = {};
};
// MNIST or Fashion-MNIST (same file names and format) from dir:
// {train,t10k}-{images-idx3,labels-idx1}-ubyte, each .gz or uncompressed.
LabeledImages load_mnist(Split split, const std::string& dir = kFashionMnistDir,
                         PixelRange range = PixelRange::ZeroOne);
// The Fashion-MNIST class of each label value.
const std::array<std::string_view, 10>& fashion_mnist_classes();
// The names Fashion-MNIST class k (0-9) answers to, lower case: its own ("t-shirt/top",
// "ankle boot"), each part of a name with a slash ("t-shirt", "top"), and each name
// with '_' for ' ' ("ankle_boot").
std::vector<std::string> fashion_mnist_class_names(int64_t k);
// The class `name` denotes (any case): one of fashion_mnist_class_names(k) or the
// index k itself ("0"-"9"); -1 when it names none.
int64_t fashion_mnist_class(const std::string& name);

// ---- binarization (for Bernoulli likelihood models) ------------------------------------
// x_b ~ Bernoulli(x) elementwise, for intensities x in [0, 1].
// Dynamic binarization: call on every batch with the training generator, so
// each epoch sees fresh draws (a regularizer, and the usual protocol for
// reporting NLL on binarized MNIST).
Tensor binarize(const Tensor& intensities, Generator& g);
// Static binarization: one fixed draw determined by seed (the same tensor on
// every call), for the "statically binarized" protocol.
Tensor binarize_static(const Tensor& intensities, uint64_t seed);

// ---- image folders ---------------------------------------------------------------------
// root/<class or domain>/<image>: one sub-folder per class (or per domain, as
// CycleGAN's trainA/trainB), both folders and files taken in sorted order so
// labels and order are deterministic. Files ending .png, .jpg, .jpeg or .bmp
// (any case) are images, read by read_image (models/data/image.h: PNG, JPEG or
// BMP by their content, within the pixel limit); other files and hidden entries
// are ignored.
struct ImageFolderOptions {
  int64_t size = 64;     // every image is resized to size × size
  int64_t channels = 3;  // 1 (grey) or 3 (RGB)
  // true: unreadable images are passed over (listed in `skipped`, counted on
  // stderr); false: the first one is a loom::Error naming it.
  bool skip_unreadable = true;
  int64_t max_pixels = kDefaultMaxImagePixels;  // an image declaring more is unreadable (image.h)
};
struct ImageFolder {
  Tensor images;                     // float32 [N, channels, size, size] in [-1, 1]
  Tensor labels;                     // int64 [N]: the index of the image's folder in `classes`
  std::vector<std::string> classes;  // the sub-folder names, sorted
  std::vector<std::string> paths;    // the file each image came from
  std::vector<std::string> skipped;  // "path: reason" for each unreadable image passed over
};
// Resizing uses a bilinear (triangle) filter whose support widens by the
// shrink factor when downscaling, as PIL's Image.resize(BILINEAR) does, so
// every source pixel contributes and large reductions do not alias.
ImageFolder load_image_folder(const std::string& root, const ImageFolderOptions& o = {});
// Every image file under root in load_image_folder's order (readable or not,
// without decoding any): what a model matching side data to the images by
// their position lists. An Error naming root as load_image_folder's.
std::vector<std::string> image_folder_files(const std::string& root);
// The sub-folder names of root in load_image_folder's order (its ImageFolder::classes),
// without decoding any image; an Error naming root as load_image_folder's.
std::vector<std::string> image_folder_classes(const std::string& root);

// Images to score or translate: one image file, or every image file directly in
// a folder (sorted), resized like load_image_folder; float32 [N, channels, size,
// size] in [0, 1]. An unreadable file (read_image's errors: not a regular file,
// more than max_pixels pixels, damaged), or a folder without images, is an Error naming it.
struct ImageFiles {
  Tensor images;
  std::vector<std::string> paths;
};
ImageFiles load_images(const std::string& path, int64_t size, int64_t channels,
                       int64_t max_pixels = kDefaultMaxImagePixels);

// ---- 2-D toy distributions ---------------------------------------------------------------
enum class Toy2d {
  EightGaussians,       // 8 modes on a circle of radius 2, σ = 0.02 (the unrolled-GAN ring)
  TwentyFiveGaussians,  // 5×5 grid of modes at {−4, −2, 0, 2, 4}², σ = 0.05
  SwissRoll,            // (t cos t, t sin t) / 5, t ~ U[1.5π, 4.5π], plus N(0, 0.1²) noise
  TwoMoons,             // two interleaved half circles (sklearn's make_moons) centred at 0, noise σ = 0.05
};
// "8gaussians", "25gaussians", "swissroll", "moons" (as the CLI spells them).
Toy2d parse_toy_2d(const std::string& name);
// n points as float32 [n, 2]; the same seed gives the same points.
Tensor make_toy_2d(Toy2d kind, int64_t n, uint64_t seed);
// The centres and the standard deviation of a Gaussian-mixture set's equally
// likely modes (none for the swiss roll and the moons).
struct ToyModes {
  std::vector<std::array<double, 2>> centres;
  double sigma = 0;
};
ToyModes toy_2d_modes(Toy2d kind);

// ---- data sets by specification ------------------------------------------------------------
enum class Dataset {
  FashionMnist,  // the IDX files in `dir` (default kFashionMnistDir); 60000 train, 10000 test images
  ImageFolder,   // `dir`: one sub-folder per class; its train/ and test/ sub-folders when it has both (image_folder_split)
  Toy2d,         // points in the plane; no files (60000 train and 10000 test points, fixed seeds)
  // Images with binary attributes (multi-domain translation, StarGAN): the images
  // listed in the attribute file DataSpec::attr_file (read_attribute_file), each
  // `dir`/<its file name>, read by load_images (an unreadable one is an Error naming
  // it); `labels` float32 [N, A] in {0, 1}: the attributes DataSpec::attrs, in their
  // order (1 where the file says 1). The test split is the last 2 000 images listed,
  // or the last tenth (rounded up) of fewer than 20 000 (Choi et al. 2018, §4.3, hold
  // 2 000 of CelebA's out); the training split the others.
  Attributes,
  // Two unpaired domains (image-to-image translation, CycleGAN): LabeledImages::images
  // is domain A and images_b domain B, each from (the first that applies)
  //   - the image folders DataSpec::dirs (each flat, used for both splits);
  //   - `dir` in the layout of the public CycleGAN sets: dir/trainA, dir/trainB,
  //     dir/testA, dir/testB, each a flat folder of images;
  //   - else two Fashion-MNIST classes, DataSpec::classes, of the IDX files in `dir`.
  // Images from folders are read by load_images (an unreadable one, or a folder
  // without images, is an Error naming it) at DataSpec::load_size and, for the
  // test split, center-cropped to `size` (augment crops training batches).
  TwoDomains,
};

// What a model trains on.
struct DataSpec {
  Dataset dataset = Dataset::FashionMnist;
  std::string toy = "8gaussians";  // Toy2d: which (parse_toy_2d's names)
  int64_t size = 28;               // images are resized to size × size
  int64_t channels = 1;            // 1 (grey) or 3 (RGB; grey images are repeated)
  double lo = -1, hi = 1;          // the pixel range the model sees and samples
  bool binarize = false;           // dynamic binarization (a fresh Bernoulli draw per batch)
  // ImageFolder: unreadable images are passed over (true) or an Error (false: for
  // models that match side data to images by their position, image_folder_files).
  bool skip_unreadable = true;
  // ImageFolder: the most pixels an image may declare (--max-image-pixels; image.h).
  int64_t max_image_pixels = kDefaultMaxImagePixels;
  // TwoDomains: the Fashion-MNIST classes of domains A and B (0-9).
  std::array<int64_t, 2> classes = {7, 9};  // sneaker, ankle boot
  // TwoDomains: the image folders of domains A and B (both "": no folders).
  std::array<std::string, 2> dirs = {};
  // Training augmentation (augment): images are loaded at load_size × load_size
  // (0: size) and cropped to size × size at a random position, then flipped
  // left-right with probability 1/2 when `flip` is set (Zhu et al. 2017, §7.1:
  // resized to 286, randomly cropped to 256, flipped).
  int64_t load_size = 0;
  bool flip = false;
  // FashionMnist: when not empty, only the images of these classes (0-9, distinct),
  // each labelled by its class's position here: domain k is class domains[k]
  // (multi-domain translation, StarGAN). Empty: all ten classes, labelled 0-9.
  std::vector<int64_t> domains = {};
  // Attributes: the attribute file, and the names of the attributes used, at least one.
  std::string attr_file = {};
  std::vector<std::string> attrs = {};
};

// An attribute file in the format of CelebA's list_attr_celeba.txt: a line with
// the number of images N, a line of the A attribute names, then N lines of an
// image's file name and A values, each 1 or −1 (whitespace-separated; a trailing
// \r dropped, blank lines skipped). A missing file, one that is
// not a regular file or is over kMaxAttributeFileBytes, a count that is not a
// positive number, a name given twice, a line with another number of values or a
// value other than 1 and −1, fewer or more image lines than N, or a file name given
// twice is an Error naming the file (and the line number).
inline constexpr uint64_t kMaxAttributeFileBytes = uint64_t(1) << 30;  // 1 GiB; CelebA's is 26 MB
struct AttributeTable {
  std::vector<std::string> names;  // the A attribute names, in the file's order
  std::vector<std::string> files;  // the N image file names
  std::vector<uint8_t> values;     // N × A, row-major: 1 where the file says 1, 0 for −1
};
AttributeTable read_attribute_file(const std::string& path);

// Whether a TwoDomains data set of spec in `dir` is two Fashion-MNIST classes
// (neither DataSpec::dirs nor dir/trainA given), as load_dataset reads it.
bool two_domains_from_fashion_mnist(const DataSpec& spec, const std::string& dir);
// Whether --data DIR names an image folder: a DIR given that does not hold
// Fashion-MNIST's IDX files (train-images-idx3-ubyte, gzipped or not).
bool is_image_folder(const std::string& dir);

// The folder of split in an image-folder data set dir: dir/train or dir/test
// when dir has both sub-folders, else dir itself (both splits are then the same images).
std::string image_folder_split(const std::string& dir, Split split);

// The split of spec's data set: images float32 [N, channels, size, size] in
// [0, 1] (Toy2d: points float32 [N, 2]) and labels int64 [N] (0 where it has none).
LabeledImages load_dataset(const DataSpec& spec, Split split, const std::string& dir);
// Images in [0, 1] as the model sees them: binarized with g when spec asks,
// then mapped to [spec.lo, spec.hi]. Toy2d points pass unchanged.
Tensor prepare_images(const Tensor& images01, const DataSpec& spec, Generator& g);
// A training batch [B, C, L, L] (L = spec.load_size, or spec.size when that is 0)
// augmented as spec asks: each image cropped to spec.size × spec.size at its own
// position, uniform over the L − size + 1 offsets on each axis, then with
// spec.flip mirrored left-right with probability 1/2; every draw from g. Without
// crop or flip, images itself. CPU tensors; an Error for another side than L.
Tensor augment(const Tensor& images, const DataSpec& spec, Generator& g);
// The central size × size part of images [N, C, H, W] (offsets (H − size) / 2 and
// (W − size) / 2, rounded down); an Error when size exceeds H or W.
Tensor center_crop(const Tensor& images, int64_t size);

// ---- DataLoader ---------------------------------------------------------------------------
struct Batch {
  Tensor inputs;  // rows of the loader's inputs: [B, ...]
  Tensor labels;  // the matching rows of its labels, or undefined when it has none
  Tensor indices;  // int64 [B]: each row's position in the loader's inputs
  int64_t epoch = 0;
  int64_t index = 0;  // the batch's number within its epoch
};

struct DataLoaderOptions {
  int64_t batch_size = 64;
  bool shuffle = true;
  bool drop_last = false;  // drop a final batch smaller than batch_size
  uint64_t seed = 0;
  bool prefetch = true;     // a worker thread prepares the next batches while the caller trains
  int64_t first_epoch = 0;  // resume: start with this epoch's order
  int64_t first_batch = 0;  // resume: and at this batch of it (in [0, batches_per_epoch()))
};

// Endless batches over (inputs, labels) along dim 0: epoch first_epoch (from its
// batch first_batch, so that resuming after step s starts at epoch s / B, batch
// s % B without replaying anything), then
// the next, and so on; batches_per_epoch() calls to next() make one epoch, in
// which every sample appears exactly once (drop_last aside).
//
// The order of an epoch is a function of (seed, epoch) only, so batches are the
// same with or without prefetch, however fast the caller is, and after a resume.
// Inputs and labels are shared, not copied: do not modify them while the loader lives.
class DataLoader {
 public:
  DataLoader(Tensor inputs, Tensor labels, DataLoaderOptions o = {});
  ~DataLoader();  // stops and joins the worker
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t num_samples() const { return inputs_.size(0); }
  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  Batch next();
  // The sample order of an epoch (the identity when not shuffling).
  std::vector<int64_t> epoch_order(int64_t epoch) const;

 private:
  // Where the producer is: the next batch to make.
  struct Cursor {
    int64_t epoch = 0, index = 0;
    std::vector<int64_t> order;
  };
  Batch make_batch(Cursor& c) const;  // makes the batch at c and advances c
  void worker();

  static constexpr size_t kPrefetchDepth = 2;
  Tensor inputs_, labels_;
  DataLoaderOptions options_;
  int64_t batches_per_epoch_ = 0;
  Cursor cursor_;  // used by the worker only when prefetching, by next() otherwise

  std::mutex mutex_;
  std::condition_variable ready_, space_;
  std::deque<Batch> queue_;
  std::exception_ptr error_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace loom::data
