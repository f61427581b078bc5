# Two commands: `make demo` boots the default system, `make test` runs every test.
SWIFT ?= swift
export PATH := /opt/swift/usr/bin:$(PATH)

.PHONY: setup linux build demo guests-demo linux-demo test bench clean

setup:
	@scripts/setup.sh

# Debian's arm64 kernel and a busybox initramfs for the Linux guests, and Xen 4.17's toolstack from
# Debian in a control-domain initramfs (cached in .cache/linux).
linux: setup
	@scripts/fetch-linux.sh
	@scripts/fetch-toolstack.sh

build: setup
	$(SWIFT) build --product tern
	$(SWIFT) run tern build

# Linux dom0 with Xen 4.17's own toolstack creates, lists, pauses and destroys two Linux domUs with xl.
demo: build linux
	$(SWIFT) run tern run examples/xl-demo.cfg --timeout 400

# Tern's own guests only (no downloads): dom0 and two domUs.
guests-demo: build
	$(SWIFT) run tern run examples/dom0.cfg examples/hello.cfg examples/hello-psci.cfg --timeout 120

linux-demo: build linux
	$(SWIFT) run tern run examples/linux-dom0.cfg examples/hello.cfg examples/linux-pv.cfg --timeout 300

# Measurements, never pass/fail: results/ (git-ignored) gets JSON and Markdown.
bench: build linux
	@scripts/fetch-linux.sh --xen
	$(SWIFT) run tern bench --runs 3

test: setup linux
	$(SWIFT) run tern build
	$(SWIFT) test

clean:
	rm -rf .build .build-metal
