# sessiond build.
#
#   make              build ./sessiond (release: -O2)
#   make test         install missing deps, build, run unit + integration tests
#   make test SANITIZE=1        the same under AddressSanitizer + UBSan
#   make test SANITIZE=thread   the concurrency subset under ThreadSanitizer
#   make demo         run sessiond in front of the demo backend on 127.0.0.1:8080
#   make bench        the benchmark against nginx (scripts/bench.sh)
#   make clean
#
# Each variant builds in its own directory (build/release, build/san,
# build/tsan) so switching SANITIZE never mixes objects. ./sessiond is the
# release binary; tests find the binary of their variant through SESSIOND_BIN.

SANITIZE ?=
ifeq ($(SANITIZE),)
  VARIANT := release
  OPT := -O2
  SANFLAGS :=
else ifeq ($(SANITIZE),thread)
  VARIANT := tsan
  OPT := -O1
  SANFLAGS := -fsanitize=thread
else
  VARIANT := san
  OPT := -O1
  SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
endif

BUILD := build/$(VARIANT)
CXX ?= g++
PKGS := libevent openssl yaml-cpp hiredis nlohmann_json
# Only the unit tests use libevent's locking (tests/unit/store_test_util.cc).
TEST_PKGS := libevent_pthreads

# Recursive (=) so pkg-config runs only when a recipe needs it, after `deps`.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS = $(shell pkg-config --libs $(PKGS))

CPPFLAGS := -Isrc -MMD -MP
CXXFLAGS := -std=c++17 $(OPT) -g -Wall -Wextra -Werror -Wno-unused-parameter $(SANFLAGS)
LDFLAGS := $(SANFLAGS)
LDLIBS = $(PKG_LIBS) -lhttp_parser -lpthread

SRCS := $(shell find src -name '*.cc' | sort)
MAIN_SRC := src/main.cc
LIB_SRCS := $(filter-out $(MAIN_SRC),$(SRCS))
LIB_OBJS := $(LIB_SRCS:%.cc=$(BUILD)/obj/%.o)
MAIN_OBJ := $(MAIN_SRC:%.cc=$(BUILD)/obj/%.o)
TEST_SRCS := $(shell find tests/unit -name '*.cc' | sort)
TEST_OBJS := $(TEST_SRCS:%.cc=$(BUILD)/obj/%.o)

BIN := $(BUILD)/sessiond
UNIT := $(BUILD)/unit_tests

.PHONY: all deps build build-tests test demo bench fuzz e2e soak clean

all: deps
	@$(MAKE) --no-print-directory build SANITIZE=$(SANITIZE)

# Installs whatever is missing (apt); a no-op in well under a second otherwise.
deps:
	@scripts/install-deps.sh

build: $(BIN)
ifeq ($(VARIANT),release)
	@ln -sf $(BIN) sessiond
endif

build-tests: $(BIN) $(UNIT)

$(BIN): $(LIB_OBJS) $(MAIN_OBJ)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(UNIT): $(LIB_OBJS) $(TEST_OBJS)
	$(CXX) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs $(TEST_PKGS)) $(LDLIBS)

$(BUILD)/obj/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(PKG_CFLAGS) $(CXXFLAGS) -c -o $@ $<

test: deps
	@$(MAKE) --no-print-directory build-tests SANITIZE=$(SANITIZE)
	@scripts/run-tests.sh $(VARIANT)

demo: deps
	@$(MAKE) --no-print-directory build
	@scripts/demo.sh

bench: deps
	@scripts/install-deps.sh bench
	@$(MAKE) --no-print-directory build
	@scripts/bench.sh

# libFuzzer (clang-14): every target for FUZZ_SECONDS, two at a time.
FUZZ_SECONDS ?= 60
fuzz: deps
	@scripts/install-deps.sh fuzz
	@scripts/fuzz.sh $(FUZZ_SECONDS)

# Mixed traffic against Redis for SOAK_DURATION, RSS and fds every 10 s.
SOAK_DURATION ?= 10m
soak: deps
	@scripts/install-deps.sh bench
	@$(MAKE) --no-print-directory build
	@scripts/soak.sh $(SOAK_DURATION)

# The demo in headless Chromium (installs chromium and chromium-driver).
e2e: deps
	@scripts/install-deps.sh e2e
	@$(MAKE) --no-print-directory build
	@tests/e2e/run.sh

clean:
	rm -rf build sessiond

-include $(shell find build -name '*.d' 2>/dev/null)
