# Two commands: `make demo` boots the default system, `make test` runs every test.
SWIFT ?= swift
export PATH := /opt/swift/usr/bin:$(PATH)

.PHONY: setup linux build demo guests-demo linux-demo test fuzz fuzz-host bench clean

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

# Every test, then each host fuzzer a short while from its corpus, then the core's host tests again
# with the address sanitizer (the core only: the test framework is not ours to check).
test: setup linux
	$(SWIFT) run tern build
	$(SWIFT) test
	scripts/fuzz-host.sh --seconds 20
	TERN_ASAN=1 ASAN_OPTIONS=detect_leaks=0 $(SWIFT) test --build-path .build-asan --filter TernCoreTests

# Fuzzing domains beside a canary under QEMU, seed after seed until stopped (CTRL-C); each run's
# report goes to results/fuzz.md, and a failure prints the one command that reproduces it.
fuzz: build
	$(SWIFT) run tern fuzz --soak --ops 500000

# The host fuzzers (libFuzzer, address sanitizer), 5 minutes each; scripts/fuzz-host.sh says more.
fuzz-host: setup
	scripts/fuzz-host.sh --seconds 300

clean:
	rm -rf .build .build-metal .build-fuzz .build-asan
