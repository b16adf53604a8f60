# adcorre - build, test, install.
# Honours the LuaRocks variables (CC, CFLAGS, LIBFLAG, LUA_INCDIR, INST_LIBDIR,
# INST_LUADIR) so `luarocks make` and plain `make` build the same thing.

CC        ?= gcc
LUA       ?= lua5.4
BUSTED    ?= /usr/bin/busted
PYTHON    ?= /usr/bin/python3
LUA_INCDIR ?= /usr/include/lua5.4
OPENBLAS_INCDIR ?= /usr/include/x86_64-linux-gnu
CFLAGS    ?= -O2 -fPIC
LIBFLAG   ?= -shared
OPT       := -O3 -march=x86-64-v2 -mtune=native -fno-math-errno -fno-trapping-math
WARN      := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wno-unused-parameter
INCS      := -I$(OPENBLAS_INCDIR) -I$(OPENBLAS_INCDIR)/openblas-pthread -I/usr/include/stb -Icsrc
# HDF5 (Keras model files): Debian keeps it under hdf5/serial.
HDF5_CFLAGS ?= $(shell pkg-config --cflags hdf5 2>/dev/null || echo -I/usr/include/hdf5/serial)
HDF5_LIBS   ?= $(shell pkg-config --libs hdf5 2>/dev/null || echo -L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5)
LIBS      := -lopenblas -llapacke -ljpeg -lpng -lstb $(HDF5_LIBS) -lpthread -lm
ALL_CFLAGS = $(CFLAGS) $(OPT) -fPIC -std=gnu11 $(WARN) $(INCS)
# Only the bindings see Lua's headers.
build/obj/lua/%.o build-asan/obj/lua/%.o: INCS += -I$(LUA_INCDIR)
build/obj/io/hdf5.o build-asan/obj/io/hdf5.o build/fuzz/obj/io/hdf5.o build/fuzz/objall/io/hdf5.o: INCS += $(HDF5_CFLAGS)

# csrc/<area>/ holds the kernels (no Lua inside); csrc/lua/ the bindings.
# csrc/dist/ and its binding csrc/lua/lua_dist.c need MPI: they go into
# build/adcorre/distributed_core.so (built when Open MPI's pkg-config file is
# present), so that core.so itself runs without MPI.
DIST_SRCS := $(wildcard csrc/dist/*.c) csrc/lua/lua_dist.c
SRCS := $(sort $(filter-out $(DIST_SRCS),$(wildcard csrc/*/*.c)))
HDRS := $(wildcard csrc/*/*.h)
OBJS := $(SRCS:csrc/%.c=build/obj/%.o)
ASAN_OBJS := $(SRCS:csrc/%.c=build-asan/obj/%.o)
LIB  := build/adcorre/core.so
ASAN_LIB := build-asan/adcorre/core.so
MPI_CFLAGS := $(shell pkg-config --cflags ompi 2>/dev/null)
MPI_LIBS   := $(shell pkg-config --libs ompi 2>/dev/null)
DIST_OBJS := $(DIST_SRCS:csrc/%.c=build/obj/%.o)
DIST_LIB  := $(if $(MPI_LIBS),build/adcorre/distributed_core.so)
build/obj/dist/%.o build/obj/lua/lua_dist.o: INCS += $(MPI_CFLAGS)

# Build and run time: what the library links or loads.
DEBIAN_PKGS := lua5.4 liblua5.4-dev libopenblas-dev liblapacke-dev libstb-dev libjpeg62-turbo-dev libpng-dev \
               lua-busted luarocks lua-argparse lua-cjson lua-dkjson lua-filesystem \
               libhdf5-dev libopenmpi-dev openmpi-bin opencv-data ffmpeg \
               gcc make pkg-config valgrind
# The independent implementations and tools the comparison specs and
# benchmarks run against (CI installs them too, so no comparison is skipped).
DEV_PKGS := python3-torch python3-numpy python3-pil python3-h5py python3-opencv opencv-data python3-onnx \
            python3-skimage opencv-doc ffmpeg clang libclang-rt-14-dev hyperfine dataset-fashion-mnist \
            python3-scipy

INST_LIBDIR ?= /usr/local/lib/lua/5.4
INST_LUADIR ?= /usr/local/share/lua/5.4

.PHONY: all deps deps-dev ort test test-mpi test-mpi-accuracy asan install clean bench bench-face bench-scaling bench-e2e demo leakcheck
all: $(LIB) $(DIST_LIB)

$(LIB): $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) -o $@ $(OBJS) $(LIBS)

$(DIST_LIB): $(DIST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) -o $@ $(DIST_OBJS) $(MPI_LIBS) -ldl

build/obj/%.o: csrc/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Installs the Debian packages that are missing; a no-op when all are present.
define install_missing
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	else echo "$(2): all present"; fi
endef
deps:
	$(call install_missing,$(DEBIAN_PKGS),deps)

# Reference implementations used by the comparison specs and benchmarks.
deps-dev:
	$(call install_missing,$(DEV_PKGS),deps-dev)
	$(MAKE) --no-print-directory ort

# ONNX Runtime for the ONNX checks and benchmarks (npm; the package carries
# its CPU library, so no download happens at install time).
ORT_VERSION := 1.30.0
ORT_DIR     ?= build/ort
ort: $(ORT_DIR)/node_modules/onnxruntime-node/package.json
$(ORT_DIR)/node_modules/onnxruntime-node/package.json:
	mkdir -p $(ORT_DIR)
	cd $(ORT_DIR) && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund --no-save onnxruntime-node@$(ORT_VERSION)

test: $(LIB)
	$(LUA) $(BUSTED)

# The MPI specs (spec_mpi/) on 2 ranks of one machine, then the 2-rank
# train.lua checks (tools/mpi_train_check.sh). Needs openmpi-bin.
MPIRUN ?= mpirun --allow-run-as-root --oversubscribe
MPI_ENV := LUA_PATH_5_4="./lua/?.lua;./lua/?/init.lua;./spec/?.lua;;" LUA_CPATH_5_4="./build/?.so;;" OMP_NUM_THREADS=1
test-mpi: $(LIB) $(DIST_LIB)
	@test -n "$(DIST_LIB)" || { echo "test-mpi: Open MPI not found (install openmpi-bin libopenmpi-dev: make deps)"; exit 1; }
	$(MPI_ENV) $(MPIRUN) -np 2 -x LUA_PATH_5_4 -x LUA_CPATH_5_4 sh tools/mpi_busted.sh
	MPIRUN="$(MPIRUN)" sh tools/mpi_train_check.sh

# 3 seeds of a 2-rank train.lua against one process with the same global
# batch (several minutes; figures in doc/distributed.md).
test-mpi-accuracy: $(LIB) $(DIST_LIB)
	MPIRUN="$(MPIRUN)" sh tools/mpi_accuracy.sh

# The same specs against an AddressSanitizer + UndefinedBehaviorSanitizer build.
ASAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
build-asan/obj/%.o: csrc/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) -fPIC -std=gnu11 $(WARN) $(INCS) $(ASAN_FLAGS) -c -o $@ $<
$(ASAN_LIB): $(ASAN_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared $(ASAN_FLAGS) -o $@ $(ASAN_OBJS) $(LIBS)
asan: $(ASAN_LIB)
	LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	AC_SANITIZED=1 $(LUA) $(BUSTED) --cpath=./build-asan/?.so

# The tensor API under valgrind --leak-check=full: no definite leak, no error.
leakcheck: $(LIB)
	sh tools/valgrind_check.sh 3

install: $(LIB)
	mkdir -p $(INST_LIBDIR)/adcorre $(INST_LUADIR)/adcorre
	cp $(LIB) $(INST_LIBDIR)/adcorre/core.so
	$(if $(DIST_LIB),cp $(DIST_LIB) $(INST_LIBDIR)/adcorre/distributed_core.so)
	cd lua && find adcorre -name '*.lua' -exec install -D -m 644 {} $(INST_LUADIR)/{} \;

bench: $(LIB)
	$(LUA) bench/run.lua

# ac.face.detect against OpenCV's detectMultiScale on a 2-megapixel picture.
bench-face: $(LIB)
	$(PYTHON) bench/face_bench.py

# Images/s and peak RSS against batch size, threads and input size (doc/performance.md).
bench-scaling: $(LIB)
	$(LUA) bench/scaling.lua

# examples/train.lua's images/s (loader and augmentation on) against the pure
# training step, both models, alternating (doc/performance.md).
bench-e2e: $(LIB)
	sh bench/train_e2e.sh minixception 3
	sh bench/train_e2e.sh xception 2

# The main job on a fresh machine: synthetic faces as a fer2013.csv, an Ad-Corre
# mini-Xception trained through the FER-2013 loader, test accuracy, confusion
# matrix, model and plots under out/, and predictions on a few images.
demo: deps $(LIB)
	LUA_PATH_5_4="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH_5_4="./build/?.so;;" $(LUA) examples/demo.lua $(DEMO_ARGS)

clean:
	rm -rf build build-asan

# libFuzzer harnesses (fuzz/*.c) for the readers of outside data, linked with
# the kernels (csrc/*/*.c except the bindings in csrc/lua/) built with clang, ASan and
# UBSan. Needs clang and libclang-rt-14-dev (`make deps-dev`). Seeds come from
# fuzz/make_corpus.py; corpora grow in build/fuzz/corpus/<name>.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_NAMES   := npy safetensors csv image onnx
FUZZ_SRCS    := $(filter-out csrc/lua/%.c,$(SRCS))
FUZZ_OBJS    := $(FUZZ_SRCS:csrc/%.c=build/fuzz/obj/%.o)
FUZZ_BINS    := $(FUZZ_NAMES:%=build/fuzz/fuzz_%)
FUZZ_FLAGS   := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
.PHONY: fuzz fuzz-run
.SECONDARY: $(FUZZ_OBJS)
fuzz: $(FUZZ_BINS)
build/fuzz/obj/%.o: csrc/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=gnu11 $(INCS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<
build/fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_util.h $(FUZZ_OBJS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=gnu11 $(INCS) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) $(LIBS)
# The metadata path of ac.load (fuzz/fuzz_model_meta.c) runs the Lua modules
# in an embedded Lua 5.4, so it links every object, bindings included.
FUZZ_LUA_OBJS := $(SRCS:csrc/%.c=build/fuzz/objall/%.o)
.SECONDARY: $(FUZZ_LUA_OBJS)
build/fuzz/objall/%.o: csrc/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=gnu11 $(INCS) -I$(LUA_INCDIR) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<
build/fuzz/fuzz_model_meta: fuzz/fuzz_model_meta.c $(FUZZ_LUA_OBJS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=gnu11 $(INCS) -I$(LUA_INCDIR) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LUA_OBJS) $(LIBS) -llua5.4
fuzz: build/fuzz/fuzz_model_meta
# Runs each harness for FUZZ_SECONDS, one after the other (see fuzz/run.sh).
fuzz-run: $(FUZZ_BINS)
	FUZZ_SECONDS=$(FUZZ_SECONDS) sh fuzz/run.sh

