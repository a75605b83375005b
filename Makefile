# falab: the two commands a new user needs are `sudo make up` and `make test`.
GO      ?= go
BIN     := bin/falab
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo devel)
PKGS    := ./...

.PHONY: all build install test test-short bench fuzz lint up down clean

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/falab

# Unit tests need no root; the end-to-end tests build real namespaces when
# run as root (CI is root) and skip, saying so, otherwise.
# The end-to-end package runs after the others, alone: its labs use fixed
# namespace names and `down --all` must not meet another package's tests.
test: lint
	$(GO) test -count=1 -timeout 10m $$($(GO) list ./... | grep -v /e2e)
	$(GO) test -count=1 -timeout 14m ./e2e/

# Quick, no root needed; even as root it creates no namespace (every
# root-only test skips under -short).
test-short:
	$(GO) test -short -count=1 $(PKGS)

# Benchmarks print figures (ns/packet, ms per lab up/down, ...) beside
# their targets; they assert nothing.
# `falab bench` (lab-level figures, as root) then the Go benchmarks of the
# packages (ns/packet, allocations, codec and TUI frame times).
bench: build
	./$(BIN) bench
	$(GO) test -run '^$$' -bench . -benchtime 1x -count 1 ./e2e/
	$(GO) test -run '^$$' -bench . -benchmem $$($(GO) list ./... | grep -v -e /e2e -e /labbench)

# Each fuzz target for FUZZTIME (go test fuzzes one target at a time).
FUZZTIME ?= 15s
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) ./scripts/fuzz.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# Install falab on the PATH (PREFIX=/usr/local: /usr/local/bin/falab), so
# that `falab status` works from any directory.
PREFIX ?= /usr/local
install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/falab

# Install falab, then build and launch a lab (needs root: sudo make up;
# LAB=name for another built-in lab or a lab file).
LAB ?= default
up: install
	./$(BIN) up $(LAB)

# Remove that one lab (LAB=name), never another's: `falab down --all`
# removes every lab on the machine.
down: build
	./$(BIN) down $(LAB)

clean:
	rm -rf bin
