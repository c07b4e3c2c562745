# klp-rs: the Linux livepatch core in Rust. See README.md.
#   make run     build, boot under QEMU, show a livepatch at work
#   make shell   build, boot to an interactive shell in the guest
#   make check   every test; ends with "N passed, N failed"
#   make check-debug  the guest tests again on the debug kernel
#   make check-klp-build  a module made by the kernel's klp-build, on klp-rs
#   make bench   benchmarks on the C and the Rust core, side by side
#   make fuzz    fuzz the livepatch name parsers (FUZZ_SECONDS=60)
# Knobs: KLP_IMPL=rust|c  KLP_CACHE=dir  TESTS=a.sh,b.sh  KLP_DEBUG=1

export KLP_IMPL ?= rust
export KLP_CACHE ?= $(HOME)/.cache/klp-rs
H := harness

.PHONY: all deps tree kernel run shell check check-debug check-klp-build bench fuzz clean

all: kernel

deps:
	@$(H)/deps.sh

tree: deps
	@$(H)/fetch-tree.sh

kernel: deps
	@$(H)/build.sh

run: kernel
	@$(H)/run-guest.sh demo

shell: kernel
	@$(H)/run-guest.sh shell

check:
	@$(H)/check.sh

check-debug:
	@KLP_DEBUG=1 $(H)/check.sh

check-klp-build:
	@$(H)/klp-build.sh

bench:
	@$(H)/bench.sh

fuzz:
	@$(H)/fuzz.sh

clean:
	rm -rf "$(KLP_CACHE)/$(KLP_IMPL)" "$(KLP_CACHE)/$(KLP_IMPL)-debug"
