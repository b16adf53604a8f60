rockspec_format = "3.0"
package = "adcorre"
version = "scm-1"
source = {
  url = "git+https://example.invalid/adcorre.git",
}
description = {
  summary = "Facial-expression recognition with the Ad-Corre loss: C tensor, layer, loss, image and data kernels for Lua 5.4",
  detailed = [[
adcorre trains and runs facial-expression-recognition networks (Xception,
mini-Xception) with the Ad-Corre loss (Fard & Mahoor, IEEE Access 2022).
Every inner loop is C on OpenBLAS/LAPACK; images come in through
libjpeg-turbo (JPEG), libpng (PNG), the library's own netpbm decoder
(PNM) and stb_image (BMP, TGA, GIF).
]],
  license = "MIT",
}
-- The Lua libraries are Debian's (apt: lua-dkjson lua-cjson lua-filesystem
-- lua-argparse; `make deps` installs them). LuaRocks does not see Debian's
-- packages, so offline `luarocks make --deps-mode=none` builds against them;
-- with a rocks server, plain `luarocks make` fetches these rocks instead.
dependencies = {
  "lua >= 5.4",
  "dkjson >= 2.5",         -- adcorre.json: writing and reading values
  "lua-cjson >= 2.1",      -- adcorre.json: strict syntax check when reading
  "luafilesystem >= 1.8",  -- adcorre.fs: folders
  "argparse >= 0.7",       -- adcorre.cli: the programs' command lines
}
-- cblas.h sits in a multiarch subdirectory on Debian, which LuaRocks does not
-- search; the Makefile adds it to the include path itself.
external_dependencies = {
  OPENBLAS = { library = "openblas" },
  LAPACKE = { library = "lapacke" },
  -- JPEG decoding (Debian: libjpeg62-turbo-dev)
  JPEG = { header = "jpeglib.h", library = "jpeg" },
  -- PNG decoding with CRC and Adler-32 checks (Debian: libpng-dev)
  PNG = { header = "png.h", library = "png" },
  -- Keras HDF5 files (Debian: libhdf5-dev). Its headers sit in
  -- /usr/include/hdf5/serial, which LuaRocks does not search: the Makefile
  -- asks pkg-config (falling back to that folder); the library is found here.
  HDF5 = { library = "hdf5_serial" },
}
build = {
  type = "make",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LIBFLAG = "$(LIBFLAG)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    LUA = "$(LUA)",
    HDF5_LIBS = "-L$(HDF5_LIBDIR) -lhdf5_serial",
  },
  install_variables = {
    INST_LIBDIR = "$(LIBDIR)",
    INST_LUADIR = "$(LUADIR)",
  },
}
test = {
  type = "command",
  command = "make test",
}
