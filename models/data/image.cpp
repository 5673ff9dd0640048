#include "models/data/image.h"

// libjpeg's headers need FILE and size_t declared first.
#include <csetjmp>
#include <cstdio>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>
#include <stb_image.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <initializer_list>

#include "autograd/io/input_file.h"
#include "kernels/base.h"

namespace loom::data {

namespace {

// libjpeg-turbo's bound on progressive scans (its djpeg -maxscans and fuzzers
// use the same idea): a file of thousands of tiny scans decodes for minutes.
constexpr int kMaxJpegScans = 500;

void check_pixels(const std::string& name, const char* format, int64_t width, int64_t height, int64_t max_pixels) {
  LOOM_CHECK(width >= 1 && height >= 1, name, ": the ", format, " header declares a ", width, " x ", height,
             " image");
  // Each side is below 2^31 here (PNG's and BMP's int32, JPEG's 16 bits), so the product cannot overflow.
  LOOM_CHECK(width * height <= max_pixels, name, ": a ", width, " x ", height, " ", format, " image (",
             width * height, " pixels) is over the limit of ", max_pixels,
             " pixels (--max-image-pixels N raises it)");
}

// Interleaved pixels of `from` channels (1 grey, 2 grey + alpha, 3 RGB, 4 RGBA)
// as `to` channels (1 or 3), alpha dropped; the grey of RGB is stb's luma.
Image convert(const uint8_t* src, int64_t height, int64_t width, int64_t from, int64_t to) {
  Image out;
  out.height = height;
  out.width = width;
  out.channels = to;
  const int64_t count = height * width;
  out.pixels.resize(static_cast<size_t>(count * to));
  uint8_t* dst = out.pixels.data();
  const bool colour = from >= 3;
  for (int64_t i = 0; i < count; ++i, src += from, dst += to) {
    if (to == 3) {
      dst[0] = src[0];
      dst[1] = src[colour ? 1 : 0];
      dst[2] = src[colour ? 2 : 0];
    } else {
      dst[0] = colour ? static_cast<uint8_t>((src[0] * 77 + src[1] * 150 + src[2] * 29) >> 8) : src[0];
    }
  }
  return out;
}

// ---- PNG: libpng's simplified API, which keeps its setjmp to itself -------------------
Image decode_png(const uint8_t* bytes, size_t n, const std::string& name, int64_t channels, int64_t max_pixels) {
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  // Frees libpng's state on every way out; a no-op once libpng has freed it after an error.
  struct Release {
    png_image* p;
    ~Release() { png_image_free(p); }
  } release{&png};
  LOOM_CHECK(png_image_begin_read_from_memory(&png, bytes, n), name, ": not a readable PNG: ", png.message);
  check_pixels(name, "PNG", png.width, png.height, max_pixels);
  // Only after begin_read (which sets flags): 16-bit samples without gamma
  // information are sRGB like 8-bit ones, not linear light, as every other
  // reader takes them.
  png.flags |= PNG_IMAGE_FLAG_16BIT_sRGB;
  // 8-bit grey or RGB, with alpha when the file has it (dropped by convert, not composited).
  png.format &= PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA;
  const int64_t file_channels = PNG_IMAGE_PIXEL_CHANNELS(png.format);
  // (PNG_IMAGE_SIZE would wrap in 32 bits past 4 GiB.)
  std::vector<uint8_t> raw(static_cast<size_t>(png.width) * png.height * static_cast<size_t>(file_channels));
  LOOM_CHECK(png_image_finish_read(&png, nullptr, raw.data(), 0, nullptr), name, ": damaged PNG: ", png.message);
  return convert(raw.data(), png.height, png.width, file_channels, channels);
}

// ---- JPEG: libjpeg-turbo ---------------------------------------------------------------
// libjpeg reports a fatal error by calling error_exit, which must not return;
// its documented recovery (libjpeg.txt, example.c) is a longjmp back to the
// caller. Everything libjpeg touches lives in a JpegJob owned by decode_jpeg,
// and the only function between setjmp and libjpeg, run_jpeg, holds no object
// with a destructor, so the jump skips no C++ cleanup; decode_jpeg's guard then
// frees libjpeg's memory on every path.
struct JpegJob {
  jpeg_decompress_struct cinfo;
  jpeg_error_mgr errors;
  jpeg_progress_mgr progress;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  int64_t max_pixels;
  const std::string* name;
  std::vector<uint8_t>* raw;  // the decoded pixels: output_components per pixel
  bool too_large;             // run_jpeg stopped at the pixel limit
};

JpegJob& job_of(j_common_ptr c) { return *static_cast<JpegJob*>(c->client_data); }

[[noreturn]] void jpeg_fail(j_common_ptr c) {
  JpegJob& j = job_of(c);
  c->err->format_message(c, j.message);
  std::longjmp(j.jump, 1);
}

// Warnings are not printed. Missing image data is an error: at "Premature end of
// JPEG file" or "premature end of data segment" libjpeg would fill the rest with
// grey and call the image whole (a 369-byte file then decodes to 50 megapixels).
void jpeg_warning(j_common_ptr c, int level) {
  if (level < 0 && (c->err->msg_code == JWRN_JPEG_EOF || c->err->msg_code == JWRN_HIT_MARKER)) jpeg_fail(c);
}

void jpeg_progress(j_common_ptr c) {
  JpegJob& j = job_of(c);
  if (c->is_decompressor && j.cinfo.input_scan_number > kMaxJpegScans) {
    std::snprintf(j.message, sizeof j.message, "a progressive JPEG of more than %d scans", kMaxJpegScans);
    std::longjmp(j.jump, 1);
  }
}

// false on a libjpeg error (j.message says which), or when the image is over
// the pixel limit (j.too_large).
bool run_jpeg(JpegJob& j, const uint8_t* bytes, size_t n) {
  if (setjmp(j.jump)) return false;
  jpeg_create_decompress(&j.cinfo);
  j.cinfo.client_data = &j;
  j.cinfo.progress = &j.progress;
  jpeg_mem_src(&j.cinfo, bytes, static_cast<unsigned long>(n));
  jpeg_read_header(&j.cinfo, TRUE);
  const int64_t w = j.cinfo.image_width, h = j.cinfo.image_height;
  if (w < 1 || h < 1 || w * h > j.max_pixels) {
    j.too_large = true;
    return false;
  }
  // Grey stays grey; everything else (YCbCr, RGB) comes out as RGB. CMYK is an
  // error from libjpeg ("Unsupported color conversion request").
  j.cinfo.out_color_space = j.cinfo.jpeg_color_space == JCS_GRAYSCALE ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&j.cinfo);
  const size_t stride = static_cast<size_t>(j.cinfo.output_width) * static_cast<size_t>(j.cinfo.output_components);
  j.raw->resize(stride * j.cinfo.output_height);
  while (j.cinfo.output_scanline < j.cinfo.output_height) {
    JSAMPROW row = j.raw->data() + stride * j.cinfo.output_scanline;
    jpeg_read_scanlines(&j.cinfo, &row, 1);
  }
  jpeg_finish_decompress(&j.cinfo);
  return true;
}

Image decode_jpeg(const uint8_t* bytes, size_t n, const std::string& name, int64_t channels, int64_t max_pixels) {
  std::vector<uint8_t> raw;
  JpegJob job{};
  job.cinfo.err = jpeg_std_error(&job.errors);
  job.errors.error_exit = jpeg_fail;
  job.errors.emit_message = jpeg_warning;
  job.progress.progress_monitor = jpeg_progress;
  job.max_pixels = max_pixels;
  job.name = &name;
  job.raw = &raw;
  struct Destroy {
    jpeg_decompress_struct* c;
    ~Destroy() { jpeg_destroy_decompress(c); }
  } destroy{&job.cinfo};
  if (!run_jpeg(job, bytes, n)) {
    if (job.too_large) check_pixels(name, "JPEG", job.cinfo.image_width, job.cinfo.image_height, max_pixels);
    throw Error(str(name, ": damaged JPEG: ", job.message));
  }
  return convert(raw.data(), job.cinfo.output_height, job.cinfo.output_width, job.cinfo.output_components, channels);
}

// ---- BMP: the header checked here, then stb_image ---------------------------------------
uint32_t le32(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }
uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }

// Checks everything stb_image's BMP reader trusts, so that only a file it
// reads safely and quickly reaches it (the layout: Microsoft's BITMAPFILEHEADER,
// then a BITMAPCOREHEADER (12 bytes), BITMAPINFOHEADER (40), its 56-byte
// variant, BITMAPV4HEADER (108) or BITMAPV5HEADER (124)).
Image decode_bmp(const uint8_t* bytes, size_t n, const std::string& name, int64_t channels, int64_t max_pixels) {
  auto bad = [&](const std::string& why) { return Error(str(name, ": unreadable BMP: ", why)); };
  if (n < 26) throw bad(str("the file is ", n, " bytes, shorter than the BMP headers"));
  const uint64_t offset = le32(bytes + 10), header = le32(bytes + 14);
  if (header != 12 && header != 40 && header != 56 && header != 108 && header != 124)
    throw bad(str("unknown header size ", header, " (12, 40, 56, 108 or 124)"));
  if (n < 14 + header) throw bad(str("the file is ", n, " bytes, shorter than its ", header, "-byte header"));
  const uint8_t* h = bytes + 14;
  int64_t width = 0, height = 0;
  int bpp = 0;
  uint32_t compression = 0;
  if (header == 12) {
    width = le16(h + 4), height = le16(h + 6);
    if (le16(h + 8) != 1) throw bad("planes is not 1");
    bpp = le16(h + 10);
  } else {
    // Signed: a negative height is a top-down image.
    width = static_cast<int32_t>(le32(h + 4)), height = static_cast<int32_t>(le32(h + 8));
    if (le16(h + 12) != 1) throw bad("planes is not 1");
    bpp = le16(h + 14);
    compression = le32(h + 16);
  }
  if (height < 0) height = -height;  // from int32: cannot overflow int64
  check_pixels(name, "BMP", width, height, max_pixels);
  if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32)
    throw bad(str(bpp, " bits per pixel (1, 4, 8, 16, 24 or 32)"));
  if (compression != 0 && !(compression == 3 && (bpp == 16 || bpp == 32)))
    throw bad(str("compression ", compression, " (only uncompressed, and bit fields at 16 or 32 bits per pixel)"));
  // Channel masks: stb scales each channel from its mask's bits and requires 8
  // at most. Those of a V4/V5 header are read whatever the compression (alpha
  // even at 16 bits); a 40- or 56-byte header has three after it with bit fields.
  uint64_t masks_at = 0, mask_count = 0;
  if (header >= 108) masks_at = 14 + 40, mask_count = 4;
  else if (compression == 3) masks_at = 14 + header, mask_count = 3;
  if (masks_at + 4 * mask_count > n) throw bad("the file ends inside its bit masks");
  for (uint64_t i = 0; i < mask_count; ++i) {
    const uint32_t m = le32(bytes + masks_at + 4 * i);
    if (std::popcount(m) > 8) throw bad(str("a channel mask of ", std::popcount(m), " bits (at most 8)"));
  }
  // The pixel rows, each padded to 4 bytes, must all be in the file.
  const uint64_t row = (static_cast<uint64_t>(width) * static_cast<uint64_t>(bpp) + 31) / 32 * 4;
  const uint64_t need = row * static_cast<uint64_t>(height);
  if (offset > n || need > n - offset)
    throw bad(str("a ", width, " x ", height, " image of ", bpp, " bits per pixel needs ", need,
                  " bytes of pixels from byte ", offset, ", but the file is ", n, " bytes"));

  int w = 0, hh = 0, file_channels = 0;
  stbi_uc* pixels = stbi_load_from_memory(bytes, static_cast<int>(n), &w, &hh, &file_channels, 0);
  if (!pixels) throw bad(stbi_failure_reason() ? stbi_failure_reason() : "unknown error");
  struct Free {
    stbi_uc* p;
    ~Free() { stbi_image_free(p); }
  } free_pixels{pixels};
  if (w != width || hh != height) throw bad(str("stb_image read it as ", w, " x ", hh));
  return convert(pixels, height, width, file_channels, channels);
}

bool starts_with(const uint8_t* bytes, size_t n, std::initializer_list<uint8_t> magic) {
  return n >= magic.size() && std::equal(magic.begin(), magic.end(), bytes);
}

}  // namespace

Image decode_image(const uint8_t* bytes, size_t n, const std::string& name, int64_t channels, int64_t max_pixels) {
  LOOM_CHECK(channels == 1 || channels == 3, "decode_image: ", name, ": channels must be 1 or 3, got ", channels);
  LOOM_CHECK(max_pixels >= 1 && max_pixels <= kMaxImagePixelsLimit, "decode_image: ", name,
             ": the pixel limit must be in [1, ", kMaxImagePixelsLimit, "], got ", max_pixels);
  LOOM_CHECK(n <= static_cast<size_t>(INT32_MAX), name, ": ", n, " bytes are more than an image file may have (2^31 - 1)");
  if (starts_with(bytes, n, {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'}))
    return decode_png(bytes, n, name, channels, max_pixels);
  if (starts_with(bytes, n, {0xFF, 0xD8, 0xFF})) return decode_jpeg(bytes, n, name, channels, max_pixels);
  if (starts_with(bytes, n, {'B', 'M'})) return decode_bmp(bytes, n, name, channels, max_pixels);
  throw Error(str(name, ": not a PNG, JPEG or BMP image (its first bytes are none of theirs)"));
}

Image read_image(const std::string& path, int64_t channels, int64_t max_pixels) {
  LOOM_CHECK(max_pixels >= 1 && max_pixels <= kMaxImagePixelsLimit, "read_image: ", path,
             ": the pixel limit must be in [1, ", kMaxImagePixelsLimit, "], got ", max_pixels);
  const uint64_t max_bytes = std::min<uint64_t>(8 * static_cast<uint64_t>(max_pixels) + (1 << 20), INT32_MAX);
  const std::string bytes = read_file(path, "read_image", max_bytes);
  return decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path, channels, max_pixels);
}

}  // namespace loom::data
