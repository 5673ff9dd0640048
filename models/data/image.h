// Decoding image files that come from outside (image folders, `--input`): PNG
// with libpng, JPEG with libjpeg-turbo, BMP with stb_image after its header has
// been checked here. The format is told by the first bytes, not the file name.
//
// Why not stb_image for everything: its PNG and JPEG decoders are not fuzzed as
// these libraries are, and Debian's stb (2.27) writes out of bounds on a JPEG
// whose Huffman table declares more than 256 codes. libpng and libjpeg-turbo are
// maintained and fuzzed continuously (OSS-Fuzz) for exactly such files. BMP is
// simple enough to check whole before stb sees it: a file that reaches stb
// holds every byte its header declares, within the pixel limit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace loom::data {

// The most pixels (width × height) an image may declare: 2^26 = 67,108,864, a
// 8192 × 8192 picture. Checked from the header, before any pixel is decoded or
// any buffer for them allocated, so a small file declaring a huge image costs
// nothing. `--max-image-pixels N` changes it.
inline constexpr int64_t kDefaultMaxImagePixels = int64_t(1) << 26;
// The largest pixel limit that may be set: 2^32, a 65536 × 65536 picture (JPEG's
// own maximum side is 65535), already 12 GiB of RGB.
inline constexpr int64_t kMaxImagePixelsLimit = int64_t(1) << 32;

// 8-bit pixels, interleaved and row-major: pixels[(y · width + x) · channels + c].
struct Image {
  int64_t height = 0, width = 0, channels = 0;  // channels: 1 (grey) or 3 (RGB)
  std::vector<uint8_t> pixels;
};

// The image in bytes[0, n), converted to `channels` (1 or 3): grey is repeated
// into RGB; RGB becomes grey by stb_image's integer luma, (77 R + 150 G + 29 B) >> 8
// (ITU-R BT.601's 0.299, 0.587, 0.114 in 8-bit fixed point); an alpha channel is
// dropped (not composited). 16-bit PNG samples are scaled to 8 bits; a PNG with
// gamma information is converted to sRGB (libpng's simplified API).
//
// Errors (a loom::Error "<name>: <reason>", never a crash): an unknown format
// (not PNG, JPEG or BMP), more than max_pixels pixels (naming the format and the
// width × height), a damaged or truncated file (the library's message), a
// progressive JPEG of more than 500 scans (libjpeg-turbo's own bound against
// files that take minutes to decode), a BMP that is compressed (RLE), has
// bit masks wider than 8 bits or is shorter than its header declares.
Image decode_image(const uint8_t* bytes, size_t n, const std::string& name, int64_t channels,
                   int64_t max_pixels = kDefaultMaxImagePixels);

// The image file at path, decoded as decode_image does. The file must be a
// regular file (InputFile: a FIFO or a device is refused without being opened)
// of at most 8 bytes per allowed pixel plus 1 MiB (twice an uncompressed RGBA
// image of that size, with room for its metadata; a larger file is refused
// unread) and at most 2 GiB; errors name the path.
Image read_image(const std::string& path, int64_t channels, int64_t max_pixels = kDefaultMaxImagePixels);

}  // namespace loom::data
