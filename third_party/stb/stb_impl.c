/* Instantiates stb_image and stb_image_write from the system headers (libstb-dev).
   stb_image decodes BMP only, and only files models/data/image.cpp has checked whole:
   PNG and JPEG from outside go to libpng and libjpeg-turbo. Its PNG decoder stays for
   the tests, which read back the grids loom writes. */
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_BMP
#define STBI_ONLY_PNG
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image.h>
#include <stb_image_write.h>
