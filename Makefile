# The two commands a new machine needs (see README.md):
#   make demo   install, bring the minicloud up with a few servers, move one to a chosen host
#   make test   install and run every test (unit + acceptance on the minicloud)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test unit acceptance install system-deps os-venv bench down clean

$(BIN)/novamove: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -U pip
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

install: $(BIN)/novamove

system-deps:
	./scripts/system-deps.sh

# The minicloud's OpenStack services go into their own pinned venv (not this one).
os-venv: install
	$(BIN)/python -c "from novamove.minicloud import venv; venv.ensure(venv.default_path())"

demo: install system-deps os-venv
	./scripts/demo.sh

test: install system-deps os-venv
	$(BIN)/python -m pytest -ra tests/unit tests/acceptance

unit: install
	$(BIN)/python -m pytest -q tests/unit

acceptance: install system-deps os-venv
	$(BIN)/python -m pytest -ra tests/acceptance

down:
	$(BIN)/novamove minicloud down

clean: down
	rm -rf $(VENV)
