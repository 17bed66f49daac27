# Front door of the KVM memcg-aware shrinker fork.  The work happens in
# tooling/kfork.py; caches and build output live in $(KFORK_HOME)
# (default ~/.cache/kvm-fork), never in this repository.
#
#   make demo     build the fork, boot it, show it working (both tracks)
#   make check    build what is stale and run every test (both tracks)
#   make bench    the baseline kernel (our option off) against ours
#   make stress   30 minutes of everything at once in the debug kernel
#   make series-check  checkpatch, every commit built (Rust on and off), lints
#
# Other targets: setup fetch assemble kernel selftests vm export pull
#                host-test help.  VARIANT=debug selects the lockdep/KASAN
#                kernel.  FORCE=1 lets assemble set local tree work aside.
#                BASE=7.3 or BASE=6.12 picks a track (below).

# BASE=7.3 (mainline, the source of truth) or BASE=6.12 (Debian 13's
# kernel series, the backport); see README.md, 'Two tracks'.  Without BASE,
# check, demo, bench, stress and series-check run both, mainline first, the
# other targets 7.3.
BASE ?=
KFORK := KFORK_BASE=$(BASE) python3 tooling/kfork.py
VARIANT ?= qemu
V_ARGS := --variant $(VARIANT) $(if $(FORCE),--force)

.PHONY: help setup fetch assemble kernel selftests vm export pull check demo bench stress series-check host-test kmake realvmm

help:
	@sed -n '1,/^$$/p' Makefile | sed 's/^# \{0,1\}//'

setup:
	@tooling/setup.sh

fetch: setup
	@$(KFORK) fetch

assemble: setup
	@$(KFORK) assemble $(V_ARGS)

kernel: setup
	@$(KFORK) kernel $(V_ARGS)

selftests: kernel
	@$(KFORK) selftests $(V_ARGS)

# make vm CMD='cat /proc/version'   (runs in the last built kernel)
# make vm NUMA=sparse CMD='...'     (node map 0,2: node 1 is not possible)
# make vm NPT=1 CMD='...'           (kvm_amd npt=1: TDP, nested shadow pages)
vm: setup
	@$(KFORK) vm $(V_ARGS) $(if $(TIMEOUT),--timeout $(TIMEOUT)) $(if $(filter sparse,$(NUMA)),--sparse-numa) $(if $(filter 1,$(NPT)),--npt) '$(CMD)'

export: setup
	@$(KFORK) export $(V_ARGS) $(if $(OUT),--out $(OUT))

pull:
	@$(KFORK) pull

check: setup
	@$(KFORK) check $(V_ARGS) $(if $(VERBOSE),--verbose)

demo: setup
	@$(KFORK) demo $(V_ARGS)

# make stress MINUTES=3   (per track; default 30)
stress: setup
	@$(KFORK) stress $(if $(MINUTES),--minutes $(MINUTES))

series-check: setup
	@$(KFORK) series-check $(if $(FORCE),--force)

# make realvmm [BASE=6.12] [VARIANT=debug] [NPT=1] [RUNS=4] [DEBUGOPTS=1]:
# Debian's QEMU running Linux guests inside the fork
# (tooling/guest/realvmm.sh); DEBUGOPTS=1 runs any variant the way the
# debug kernel runs (qboot, the plain kernel in the guests)
realvmm: setup
	@$(KFORK) realvmm $(V_ARGS) $(if $(RUNS),--runs $(RUNS)) $(if $(filter 1,$(NPT)),--npt) $(if $(filter 1,$(DEBUGOPTS)),--debug-options)

# make bench RUNS=5   (benchmark runs per kernel; default 3)
bench: setup
	@$(KFORK) bench $(if $(FORCE),--force) $(if $(RUNS),--runs $(RUNS))

# make kmake ARGS='rustdoc'   (kbuild in the build dir, fork toolchain)
kmake: setup
	@$(KFORK) kmake --variant $(VARIANT) $(ARGS)

host-test:
	@python3 -m unittest discover -s tooling/tests -t tooling
