// JPEG files for tests and fuzz seeds, written by libjpeg. (Not stb_image_write:
// its JPEG writer shifts negative ints left, which UBSan stops on.)
#pragma once

#include <cstdint>
#include <cstdio>  // before jpeglib.h, which uses FILE and size_t without including what declares them
#include <cstdlib>
#include <vector>

#include <jpeglib.h>

namespace loom::testing {

// A JPEG of w × h pixels of `channels` (1 or 3) interleaved in px, at quality 90:
// baseline; progressive with libjpeg's default scans when `progressive`; or
// progressive by the given `scans`. libjpeg's default error handler ends the
// process on an error (not expected for these inputs).
inline std::vector<uint8_t> jpeg_bytes(int w, int h, int channels, const std::vector<uint8_t>& px,
                                       bool progressive = false, const std::vector<jpeg_scan_info>& scans = {}) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* out = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &out, &size);
  c.image_width = static_cast<JDIMENSION>(w);
  c.image_height = static_cast<JDIMENSION>(h);
  c.input_components = channels;
  c.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 90, TRUE);
  if (!scans.empty()) {
    c.scan_info = scans.data();
    c.num_scans = static_cast<int>(scans.size());
  } else if (progressive) {
    jpeg_simple_progression(&c);
  }
  jpeg_start_compress(&c, TRUE);
  for (int y = 0; y < h; ++y) {
    JSAMPROW row = const_cast<uint8_t*>(px.data()) + static_cast<size_t>(y) * w * channels;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  std::vector<uint8_t> bytes(out, out + size);
  jpeg_destroy_compress(&c);
  std::free(out);
  return bytes;
}

}  // namespace loom::testing
