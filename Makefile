# sessiond build.
#
#   make              install the build dependencies if missing, build ./sessiond (release)
#   make test         + the test dependencies; build, run unit + integration tests
#   make test SANITIZE=1        the same under AddressSanitizer + UBSan
#   make test SANITIZE=thread   the concurrency subset under ThreadSanitizer
#   make demo         run sessiond in front of the demo backend on 127.0.0.1:8080
#   make e2e          the demo in headless Chromium (plain HTTP, then over TLS with a test CA)
#   make bench        the benchmark against nginx (scripts/bench.sh)
#   make fuzz         every libFuzzer target for FUZZ_SECONDS
#   make install      PREFIX=/usr/local, DESTDIR= (binary, man pages, unit, examples, completion)
#   make deb          build/sessiond_VERSION_ARCH.deb (scripts/make-deb.sh)
#   make clean
#
# Each target installs only the Debian packages it needs, through named sets
# of scripts/install-deps.sh: `make` the build set, `make test` the test set
# (redis-server, nodejs...), `make e2e` chromium, and so on.
#
# Parallel by default: -j<number of cores> unless -j is given. One short line
# per step ("  CXX src/x.cc"); V=1 shows the full commands.
#
# Each variant builds in its own directory (build/release, build/san,
# build/tsan) so switching SANITIZE never mixes objects. ./sessiond is the
# release binary; tests find the binary of their variant through SESSIOND_BIN.
# The release binary carries no debug info: it goes to build/release/sessiond.debug
# (objcopy --only-keep-debug), linked by .gnu_debuglink for gdb.

# Only at the top level (sub-makes share its job slots), and not with
# `clean` among the goals: `make clean all` must not run both at once.
ifeq ($(MAKELEVEL)$(filter clean,$(MAKECMDGOALS)),0)
  MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
endif
MAKEFLAGS += --no-print-directory

ifeq ($(V),1)
  Q :=
  say :=
else
  Q := @
  say = @printf '  %-5s %s\n' $(1) $(2);
endif

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
OBJCOPY ?= objcopy
PKGS := libevent openssl yaml-cpp hiredis nlohmann_json zlib
# Only the unit tests use libevent's locking (tests/unit/store_test_util.cc).
TEST_PKGS := libevent_pthreads

# Recursive (=) so pkg-config runs only when a recipe needs it, after `deps`.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS = $(shell pkg-config --libs $(PKGS))

CPPFLAGS := -Isrc -MMD -MP
CXXFLAGS := -std=c++17 $(OPT) -g -Wall -Wextra -Werror -Wno-unused-parameter $(SANFLAGS)
LDFLAGS := $(SANFLAGS)
LDLIBS = $(PKG_LIBS) -lpthread

SRCS := $(shell find src -name '*.cc' | sort)
MAIN_SRC := src/main.cc
LIB_SRCS := $(filter-out $(MAIN_SRC),$(SRCS))
LIB_OBJS := $(LIB_SRCS:%.cc=$(BUILD)/obj/%.o)
MAIN_OBJ := $(MAIN_SRC:%.cc=$(BUILD)/obj/%.o)
TEST_SRCS := $(shell find tests/unit -name '*.cc' | sort)
TEST_OBJS := $(TEST_SRCS:%.cc=$(BUILD)/obj/%.o)

BIN := $(BUILD)/sessiond
UNIT := $(BUILD)/unit_tests

# --- what --version shows (src/base/build_info.cc) ---------------------------
# The commit and versions go to build_info.cc alone, through a stamp file that
# changes only when they do, so a new commit recompiles one file. The build
# date is taken when that file compiles (SOURCE_DATE_EPOCH wins, for
# reproducible packages).
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
GIT_COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell \
  git rev-parse --git-dir >/dev/null 2>&1 && ! git diff --quiet HEAD -- src 2>/dev/null && echo -dirty)
YAML_CPP_VERSION = $(shell pkg-config --modversion yaml-cpp 2>/dev/null || echo unknown)
BUILD_INFO_STAMP := $(BUILD)/build_info.stamp
BUILD_INFO_OBJ := $(BUILD)/obj/src/base/build_info.o
build_date = $(shell date -u -d @$${SOURCE_DATE_EPOCH:-$$(date +%s)} +%Y-%m-%dT%H:%M:%SZ)

.PHONY: all deps build build-tests test demo bench fuzz e2e soak install deb clean FORCE

all: deps
	@$(MAKE) build SANITIZE=$(SANITIZE)

# Installs whatever of the build set is missing (apt); a no-op in well under
# a second otherwise.
deps:
	@scripts/install-deps.sh build

build: $(BIN)
ifeq ($(VARIANT),release)
	@ln -sf $(BIN) sessiond
endif

build-tests: $(BIN) $(UNIT)

$(BUILD_INFO_STAMP): FORCE
	@mkdir -p $(@D)
	@echo '$(VERSION) $(GIT_COMMIT) $(YAML_CPP_VERSION)' | cmp -s - $@ \
	  || echo '$(VERSION) $(GIT_COMMIT) $(YAML_CPP_VERSION)' > $@

$(BUILD_INFO_OBJ): $(BUILD_INFO_STAMP)
$(BUILD_INFO_OBJ): CPPFLAGS += -DSESSIOND_VERSION='"$(VERSION)"' -DSESSIOND_COMMIT='"$(GIT_COMMIT)"' \
  -DSESSIOND_BUILD_DATE='"$(build_date)"' -DSESSIOND_YAML_CPP_VERSION='"$(YAML_CPP_VERSION)"'

$(BIN): $(LIB_OBJS) $(MAIN_OBJ)
	$(call say,LD,$@)
	$(Q)$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)
ifeq ($(VARIANT),release)
	$(Q)$(OBJCOPY) --only-keep-debug $@ $@.debug
	$(Q)$(OBJCOPY) --strip-debug --add-gnu-debuglink=$@.debug $@
endif

$(UNIT): $(LIB_OBJS) $(TEST_OBJS)
	$(call say,LD,$@)
	$(Q)$(CXX) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs $(TEST_PKGS)) $(LDLIBS)

$(BUILD)/obj/%.o: %.cc
	@mkdir -p $(dir $@)
	$(call say,CXX,$<)
	$(Q)$(CXX) $(CPPFLAGS) $(PKG_CFLAGS) $(CXXFLAGS) -c -o $@ $<

test:
	@scripts/install-deps.sh build test
	@$(MAKE) build-tests SANITIZE=$(SANITIZE)
	@scripts/run-tests.sh $(VARIANT)

demo:
	@scripts/install-deps.sh build demo
	@$(MAKE) build
	@scripts/demo.sh

bench:
	@scripts/install-deps.sh build bench
	@$(MAKE) build
	@scripts/bench.sh

# libFuzzer (clang-14): every target for FUZZ_SECONDS, two at a time.
FUZZ_SECONDS ?= 60
fuzz:
	@scripts/install-deps.sh build fuzz
	@scripts/fuzz.sh $(FUZZ_SECONDS)

# Mixed traffic against Redis for SOAK_DURATION, RSS and fds every 10 s.
SOAK_DURATION ?= 10m
soak:
	@scripts/install-deps.sh build test bench
	@$(MAKE) build
	@scripts/soak.sh $(SOAK_DURATION)

# The demo in headless Chromium (installs chromium and chromium-driver).
e2e:
	@scripts/install-deps.sh build demo e2e
	@$(MAKE) build
	@tests/e2e/run.sh

# --- installation ---------------------------------------------------------------
# make install [PREFIX=/usr/local] [DESTDIR=] [SYSCONFDIR=$(PREFIX)/etc]
# The binary installed is INSTALL_BIN (default: the release build, built if
# needed). The configuration file is installed only where none exists, so a
# re-install never overwrites an edited one; the examples always are.
PREFIX ?= /usr/local
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
BINDIR := $(PREFIX)/bin
MANDIR := $(PREFIX)/share/man
DOCDIR := $(PREFIX)/share/doc/sessiond
UNITDIR ?= $(PREFIX)/lib/systemd/system
COMPLETIONDIR := $(PREFIX)/share/bash-completion/completions
INSTALL_BIN ?= build/release/sessiond
INSTALL := install
EXAMPLE_CONFIGS := $(wildcard config/sessiond.*.yaml)

install: $(INSTALL_BIN)
	$(call say,INST,$(DESTDIR)$(PREFIX))
	$(Q)$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
	  $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(UNITDIR) $(DESTDIR)$(COMPLETIONDIR) $(DESTDIR)$(SYSCONFDIR)/sessiond
	$(Q)$(INSTALL) -m 0755 $(INSTALL_BIN) $(DESTDIR)$(BINDIR)/sessiond
	$(Q)$(INSTALL) -m 0644 man/sessiond.8 $(DESTDIR)$(MANDIR)/man8/sessiond.8
	$(Q)$(INSTALL) -m 0644 man/sessiond.yaml.5 $(DESTDIR)$(MANDIR)/man5/sessiond.yaml.5
	$(Q)$(INSTALL) -m 0644 sessiond.yaml.example README.md CHANGELOG.md LICENSE $(DESTDIR)$(DOCDIR)/
	$(Q)$(INSTALL) -m 0644 $(EXAMPLE_CONFIGS) $(DESTDIR)$(DOCDIR)/examples/
	$(Q)sed -e 's#/usr/local/bin/sessiond#$(BINDIR)/sessiond#g' -e 's#/etc/sessiond/#$(SYSCONFDIR)/sessiond/#g' \
	  config/sessiond.service > $(DESTDIR)$(UNITDIR)/sessiond.service
	$(Q)chmod 0644 $(DESTDIR)$(UNITDIR)/sessiond.service
	$(Q)$(INSTALL) -m 0644 scripts/completion/sessiond.bash $(DESTDIR)$(COMPLETIONDIR)/sessiond
	$(Q)[ -e $(DESTDIR)$(SYSCONFDIR)/sessiond/sessiond.yaml ] \
	  || $(INSTALL) -m 0644 sessiond.yaml.example $(DESTDIR)$(SYSCONFDIR)/sessiond/sessiond.yaml

# A Debian package built with dpkg-deb from `make install` (scripts/make-deb.sh).
deb:
	@scripts/install-deps.sh build deb
	@$(MAKE) $(INSTALL_BIN)
	@scripts/make-deb.sh $(INSTALL_BIN)

clean:
	rm -rf build sessiond

FORCE:

-include $(shell find build -name '*.d' 2>/dev/null)
