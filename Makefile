# The two commands a new machine needs (see README.md):
#   make demo   install, bring the minicloud up with a few servers, move one to a chosen host
#   make test   install and run every test (unit + acceptance on the minicloud)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test unit acceptance acceptance-doctor acceptance-preflight acceptance-rebalance acceptance-stall acceptance-shared-journal acceptance-budget acceptance-campaign-view acceptance-minicloud faults-random faults-shared-journal install system-deps os-venv bench down clean docs package-check test-floor faults compat

# PYTHONWARNINGS hushes the one notice setuptools prints for every editable flat-layout install.
$(BIN)/novamove: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -U pip
	PYTHONWARNINGS='ignore:Editable installation' $(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

install: $(BIN)/novamove

system-deps:
	./scripts/system-deps.sh

# The minicloud's OpenStack services go into their own pinned venv (not this one).
os-venv: install
	$(BIN)/python -c "from novamove.minicloud import venv; venv.ensure(venv.default_path())"

demo: install system-deps os-venv
	./scripts/demo.sh

# The Debian packages first (a no-op once installed): a few unit tests drive Debian's promtool,
# Pushgateway and headless Chromium (the observability outputs), and in CI a skipped test fails.
# Then the unit tests, before the OpenStack venv: a broken unit fails before minutes of set-up.
test: install system-deps
	$(BIN)/python -m pytest -ra --durations=10 -n 4 tests/unit
	$(MAKE) os-venv
	$(BIN)/python -m pytest -ra --durations=25 tests/acceptance

unit: install system-deps
	$(BIN)/python -m pytest -q -n 4 tests/unit

acceptance: install system-deps os-venv
	$(BIN)/python -m pytest -ra tests/acceptance

# Every doctor drift class on the minicloud, also those made through Nova's database or
# Placement's API and the killed drain (`make test` runs the realistic causes only).
acceptance-doctor: install system-deps os-venv
	NOVAMOVE_DOCTOR_ACCEPTANCE=all $(BIN)/python -m pytest -ra --durations=10 tests/acceptance/test_doctor.py

# Rebalance on the minicloud beyond the one spread test of `make test`: pack --disable-emptied
# and a SIGKILLed rebalance recovered (docs/testing.md).
acceptance-rebalance: install system-deps os-venv
	NOVAMOVE_REBALANCE_ACCEPTANCE=all $(BIN)/python -m pytest -ra --durations=10 tests/acceptance/test_rebalance.py

# Live migrations that never converge: --on-stall abort and the intents (make test runs the default policy only).
acceptance-stall: install system-deps os-venv
	NOVAMOVE_STALL_ACCEPTANCE=all $(BIN)/python -m pytest -ra --durations=10 tests/acceptance/test_stall.py

# A move, a drain and a campaign killed on machine A and recovered from machine B with the
# journal on the minicloud's MariaDB and on PostgreSQL (`make test` runs the move's MariaDB case
# only; docs/testing.md).
acceptance-shared-journal: install system-deps os-venv
	NOVAMOVE_SHARED_JOURNAL_ACCEPTANCE=all $(BIN)/python -m pytest -ra --durations=10 tests/acceptance/test_shared_journal.py

# Cloud-wide budgets: two concurrent drains sharing a budget, /os-migrations watched (not in `make test`).
acceptance-budget: install system-deps os-venv
	NOVAMOVE_BUDGET_ACCEPTANCE=all $(BIN)/python -m pytest -ra --durations=10 tests/acceptance/test_budget.py

# A server booted onto a campaign's next destination during a hook is planned around (~40 s,
# outside `make test`'s budget; the unit test of the same rule runs there).
acceptance-campaign-view: install system-deps os-venv
	NOVAMOVE_CAMPAIGN_VIEW_ACCEPTANCE=1 $(BIN)/python -m pytest -ra --durations=10 tests/acceptance/test_campaign_view.py

# The slow checks of the minicloud itself: up again / status / down leaving nothing, a TLS
# minicloud of its own (its CA, clients with and without it, options kept across a second
# start-up, TLS switched off and on), the control plane restarted under a server boot, a failed
# start cleaned up (~7 min; `make test` runs the cheap ones, and TLS through its CLI and Ansible
# tests).
acceptance-minicloud: install system-deps os-venv
	NOVAMOVE_MINICLOUD_ACCEPTANCE=all $(BIN)/python -m pytest -ra --durations=10 tests/acceptance/test_minicloud_tls.py \
		tests/acceptance/test_minicloud_control.py tests/acceptance/test_minicloud_lifecycle.py

# The pre-flight fixture: >= 10 causes of refusal made real with the fake driver's inventory and
# traits (~5 min: it restarts computes); prints the share refused before any request.
acceptance-preflight: install system-deps os-venv
	NOVAMOVE_PREFLIGHT_ACCEPTANCE=1 $(BIN)/python -m pytest -ra -s --durations=5 tests/acceptance/test_preflight.py

# Man pages generated from the click definitions (read one: man -l build/man/novamove-migrate.1).
MAN_DIR ?= build/man
docs: install
	rm -rf $(MAN_DIR) && mkdir -p $(MAN_DIR)
	$(BIN)/python docs/man.py $(MAN_DIR)

# The unit tests against the lowest version pyproject.toml allows of every direct dependency
# (runtime and the ansible, docs and osc extras; scripts/floor_constraints.py writes the pins)
# in a fresh virtualenv. Not part of `make test`: it installs a second set of dependencies
# (a few minutes); no minicloud move (docs/testing.md).
FLOOR_DIR ?= build/floor
test-floor:
	rm -rf $(FLOOR_DIR) && mkdir -p $(FLOOR_DIR)
	$(PYTHON) scripts/floor_constraints.py > $(FLOOR_DIR)/constraints.txt
	$(PYTHON) -m venv $(FLOOR_DIR)/venv
	$(FLOOR_DIR)/venv/bin/pip install -q --disable-pip-version-check -c $(FLOOR_DIR)/constraints.txt '.[test]'
	$(FLOOR_DIR)/venv/bin/pip list --disable-pip-version-check | grep -iE '^(openstacksdk|click|rich|pyyaml|cryptography|ansible-core|click-man|python-openstackclient|sqlalchemy|alembic|pymysql|psycopg) '
	cd $(FLOOR_DIR) && venv/bin/python -m pytest -q -p no:cacheprovider --rootdir=$(CURDIR) $(CURDIR)/tests/unit

# Build the sdist, the wheel (from the sdist) and the collection tarball, install them into a clean
# venv and run them from there; run the unit tests from the unpacked sdist; install the wheel with
# the floor versions beside python-openstackclient (NOVAMOVE_PACKAGE_CHECK=full: the last two are
# not part of the test_packaging.py run inside `make test`).
package-check: install
	NOVAMOVE_PACKAGE_CHECK=full $(BIN)/python -m pytest -q -s -p no:cacheprovider tests/acceptance/test_packaging.py

# The whole crash-point matrix (make test runs a subset of it): every journaled step x
# kill/error/timeout x before/after, each followed by recover and the invariants, then the
# control-plane faults during a drain (RabbitMQ, nova-conductor, nova-api, keystone restarted;
# nova-scheduler stopped in an isolate window) (222 points + 7: 79 min on a quiet 2-core machine).
# FAULTS_ONLY='maintain or evacuate' runs the points whose id matches (pytest -k), e.g. one
# scenario. The randomized kill on A / recover on B is its own target (faults-random, 1-2 h), so
# that this one stays within 3 h.
FAULTS_ONLY ?=
faults: install system-deps os-venv
	NOVAMOVE_FAULT_MATRIX=full $(BIN)/python -m pytest -ra --durations=20 \
		$(if $(FAULTS_ONLY),-k "$(FAULTS_ONLY)") tests/acceptance/test_fault_matrix.py \
		$(if $(FAULTS_ONLY),,tests/acceptance/test_drain_under_stress.py)

# A kill before and after every journaled step of an isolate cold move, a drain and a campaign on
# machine A, finished from machine B, with the journal on MariaDB and on PostgreSQL (52 points,
# ~40 min; docs/testing.md).
faults-shared-journal: install system-deps os-venv
	NOVAMOVE_SHARED_JOURNAL_ACCEPTANCE=every $(BIN)/python -m pytest -ra -s --durations=10 \
		tests/acceptance/test_shared_journal.py -k test_fleet_run_killed_on_a_ends_clean_from_b

# A run on machine A SIGKILLed at a random moment, recovered from machine B with the journal on
# MariaDB and on PostgreSQL: RANDOM_KILLS trials per backend (issue 19: 100; ~15-35 s a trial,
# so 1-2 h for the default), RANDOM_KILLS_SEED to replay (docs/testing.md).
RANDOM_KILLS ?= 100
faults-random: install system-deps os-venv
	NOVAMOVE_RANDOM_KILLS=$(RANDOM_KILLS) $(if $(RANDOM_KILLS_SEED),NOVAMOVE_RANDOM_KILLS_SEED=$(RANDOM_KILLS_SEED)) \
		$(BIN)/python -m pytest -ra tests/acceptance/test_random_kills.py

# A representative acceptance subset on the oldest tested OpenStack release (2024.1, nova 29;
# docs/minicloud.md "Tested Nova releases"): native and isolate moves, drain + undrain
# --move-back, maintain campaigns (one host out; two sharing a drain), an evacuation. Not part
# of `make test`: the first run installs the release's own OpenStack venv (a few minutes); the
# minicloud it starts is 2024.1 (~15 min).
COMPAT_RELEASE ?= 2024.1
COMPAT_TESTS := \
	tests/acceptance/test_migrate.py::test_native_cold_move_lands_on_the_target \
	tests/acceptance/test_migrate.py::test_native_live_move_lands_and_accepts_a_hypervisor_hostname \
	tests/acceptance/test_migrate.py::test_isolate_lands_with_concurrent_tenant_boots_and_leaves_services_as_they_were \
	"tests/acceptance/test_migrate.py::test_a_cap_below_2_56_refuses_auto_and_isolate_runs_when_asked[2.55]" \
	tests/acceptance/test_drain.py::test_drain_kill_rerun_undrain \
	tests/acceptance/test_drain_honest.py::test_move_back_returns_only_the_servers_of_the_drain_being_undone \
	tests/acceptance/test_maintain.py::test_campaign_restarts_each_compute_empty \
	tests/acceptance/test_maintain.py::test_hosts_out_together_are_drained_in_one_drain \
	tests/acceptance/test_evacuate.py::test_killed_twice_recover_finishes_then_unfence_brings_everything_back
compat: install system-deps
	NOVAMOVE_OS_RELEASE=$(COMPAT_RELEASE) $(BIN)/python -c "from novamove.minicloud import venv; venv.ensure(venv.default_path(venv.chosen_release()), release=venv.chosen_release())"
	NOVAMOVE_OS_RELEASE=$(COMPAT_RELEASE) $(BIN)/python -m pytest -ra --durations=10 $(COMPAT_TESTS)

down:
	$(BIN)/novamove minicloud down

clean: down
	rm -rf $(VENV)
