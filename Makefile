# Files API — a FastCGI worker (bin/files-fcgi) and its admin tool (bin/filesctl).
#   make            build          make test       install deps, build, run every test
#   make run        serve locally  make install    PREFIX=/usr/local STATEDIR=/var/lib/files-api DESTDIR=
#   make test SANITIZE=1           build and test with ASan+UBSan
#   make bench / make fuzz FUZZ_SECONDS=N / make soak SECONDS=N CLIENTS=M

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SYSCONFDIR ?= $(PREFIX)/etc
DATADIR    ?= $(PREFIX)/share
DOCDIR     ?= $(DATADIR)/doc/files-api
STATEDIR   ?= /var/lib/files-api
DESTDIR    ?=

CC      ?= cc
PKGS    := fcgi libcjson sqlite3 nettle libxxhash
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Iinclude \
           -DFILES_API_SYSCONFDIR='"$(SYSCONFDIR)"'
LDLIBS  += -lfcgi -lcjson -lsqlite3 -lnettle -lxxhash -pthread

ifeq ($(SANITIZE),1)
BUILD   := build/san
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined \
           -DFILES_API_TEST_HOOKS
LDFLAGS += -fsanitize=address,undefined
else
BUILD   := build/release
endif
BIN     := $(BUILD)/bin

# The core library: every module except the two programs' own files.
CTL_SRCS  := $(wildcard src/filesctl*.c)
CORE_SRCS := $(filter-out src/worker.c $(CTL_SRCS),$(wildcard src/*.c))
CORE_OBJS := $(CORE_SRCS:src/%.c=$(BUILD)/obj/%.o)
CTL_OBJS  := $(CTL_SRCS:src/%.c=$(BUILD)/obj/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BIN)/%)

FUZZ_SECONDS ?= 30
# make test builds its three configurations with one job per core.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS    := $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)
# What each fuzz target links besides itself (route includes src/route.c).
FUZZ_SRCS_multipart := src/multipart.c
FUZZ_SRCS_jsonl     := src/jsonl.c src/jsonl_ids.c
FUZZ_SRCS_route     := src/http.c src/linger.c src/ids.c src/errors.c src/json_writer.c
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
               -fno-sanitize-recover=undefined -Iinclude

.PHONY: all bin deps run test unit integration install clean fmt bench fuzz soak
all: $(BIN)/files-fcgi $(BIN)/filesctl bin

# bin/ always points at the last configuration built, so scripts need one path.
bin: $(BIN)/files-fcgi $(BIN)/filesctl
	@ln -sfn $(BIN) bin

$(BUILD)/obj/%.o: src/%.c $(wildcard include/*.h) | $(BUILD)/obj
	$(CC) $(CFLAGS) -c -o $@ $<

# The configuration file's default path is compiled into config.c: a build
# with another SYSCONFDIR (or PREFIX) rewrites this file, and so remakes it.
SYSCONFDIR_STAMP := $(BUILD)/sysconfdir
$(shell mkdir -p $(BUILD) && [ "$$(cat $(SYSCONFDIR_STAMP) 2>/dev/null)" = '$(SYSCONFDIR)' ] || \
        printf '%s' '$(SYSCONFDIR)' >$(SYSCONFDIR_STAMP))
$(BUILD)/obj/config.o $(BIN)/test_config: $(SYSCONFDIR_STAMP)

$(BIN)/files-fcgi: $(BUILD)/obj/worker.o $(CORE_OBJS) | $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/filesctl: $(CTL_OBJS) $(CORE_OBJS) | $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests #include the module's .c files (src/M.c and src/M_*.c) to reach
# their static functions.
$(BIN)/test_%: tests/unit/test_%.c tests/unit/testlib.h $(CORE_OBJS) $(wildcard src/*.c include/*.h) | $(BIN)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< \
		$(filter-out $(BUILD)/obj/$*.o $(BUILD)/obj/$*_%.o,$(CORE_OBJS)) $(LDLIBS)

# The pipeline's threads, also under ThreadSanitizer (run with the sanitizer suite).
build/san/bin/test_pipeline_tsan: tests/unit/test_pipeline.c tests/unit/testlib.h src/pipeline.c include/pipeline.h
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=thread -Iinclude -Itests/unit -o $@ $< -pthread

$(BUILD)/obj $(BIN):
	mkdir -p $@

deps:
	@scripts/install-deps.sh

run: deps
	@$(MAKE) -s --no-print-directory all
	@scripts/run-dev.sh

unit: $(UNIT_BINS) all
integration: all

# The whole suite: release build (unit, integration, SDK, fuzzing), then the
# same unit and integration tests built with ASan+UBSan. SANITIZE=1 runs only
# the sanitizer build.
ifeq ($(SANITIZE),1)
test: deps
	@$(MAKE) --no-print-directory all $(UNIT_BINS)
	@scripts/run-tests.sh $(BIN) unit integration
else
test: deps
	@$(MAKE) --no-print-directory -j$(JOBS) all $(UNIT_BINS) $(FUZZ_BINS)
	@$(MAKE) --no-print-directory -j$(JOBS) SANITIZE=1 build/san/bin/files-fcgi build/san/bin/filesctl \
		$(UNIT_SRCS:tests/unit/%.c=build/san/bin/%) build/san/bin/test_pipeline_tsan
	@ln -sfn $(BIN) bin
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/run-tests.sh $(BIN) unit integration servers sdk \
		soak fuzz sanitize:build/san/bin
endif

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(wildcard src/*.c include/*.h)
	@mkdir -p build/fuzz
	clang $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_SRCS_$*) $(LDLIBS)

fuzz: deps $(FUZZ_BINS)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/run-tests.sh $(BIN) fuzz

install: $(BIN)/files-fcgi $(BIN)/filesctl
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSCONFDIR)/files-api $(DESTDIR)$(DOCDIR)/examples/systemd
	install -m 0755 $(BIN)/files-fcgi $(BIN)/filesctl $(DESTDIR)$(BINDIR)/
	@# An operator's edited configuration is kept: the new default goes beside it.
	@# Its data_dir is STATEDIR, where the systemd units' workers and filesctl
	@# run by hand both find the data (./var would depend on the directory).
	@conf=$(DESTDIR)$(SYSCONFDIR)/files-api/files-api.conf; \
	if [ -e "$$conf" ] || [ -L "$$conf" ]; then \
		echo "install: $(SYSCONFDIR)/files-api/files-api.conf kept; the new default is files-api.conf.new"; \
		if grep -qx 'data_dir = ./var' "$$conf"; then \
			echo "install: warning: its data_dir is ./var, relative to each program's directory;" \
				"the systemd units use $(STATEDIR)" >&2; \
		fi; \
		conf=$$conf.new; \
	fi; \
	sed 's|^data_dir = \./var$$|data_dir = $(STATEDIR)|' conf/files-api.conf >"$$conf" && \
	chmod 0644 "$$conf" && grep -qx 'data_dir = $(STATEDIR)' "$$conf"
	install -m 0644 README.md $(wildcard docs/*.md) $(DESTDIR)$(DOCDIR)/
	install -m 0644 conf/*-files-api.conf $(DESTDIR)$(DOCDIR)/examples/
	install -m 0644 conf/systemd/* $(DESTDIR)$(DOCDIR)/examples/systemd/
	install -d $(DESTDIR)$(DATADIR)/files-api/errors
	install -m 0644 conf/errors/*.json $(DESTDIR)$(DATADIR)/files-api/errors/
	@# lighttpd's server.errorfile-prefix wants status-NNN.html
	for page in conf/errors/*.json; do \
		install -m 0644 $$page $(DESTDIR)$(DATADIR)/files-api/errors/status-$$(basename $$page .json).html; \
	done

SECONDS ?= 60
CLIENTS ?= 16
soak: deps all
	@FILES_API_BIN=$(abspath $(BIN)) python3 tests/soak/soak.py $(SECONDS) $(CLIENTS)

bench: deps all
	@bench/run.sh $(abspath $(BIN))

clean:
	rm -rf build bin

fmt:
	clang-format -i src/*.c include/*.h tests/unit/*.c tests/unit/*.h
