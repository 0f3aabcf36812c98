# The two commands of the README quickstart. Each creates .venv on first use (every
# framework, CPU builds, pinned by constraints.txt) and reuses it afterwards.
PYTHON ?= python3.11
VENV := .venv

.PHONY: run test lint

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip uninstall -y -q tensorflow-cpu 2>/dev/null || true  # replaced by tensorflow (tf-keras needs it)
	@# A download of several hundred MB from PyPI sometimes breaks off mid-file, and pip does not
	@# resume it: the install is tried three times (pip's cache keeps the files that did arrive).
	@for attempt in 1 2 3; do \
	  $(VENV)/bin/python -m pip install --disable-pip-version-check -q -c constraints.txt -e '.[all,test]' && break; \
	  if [ $$attempt = 3 ]; then echo "pip install failed 3 times" >&2; exit 1; fi; \
	  echo "pip install failed (attempt $$attempt of 3); retrying in 15 s" >&2; sleep 15; \
	done
	touch $@

run: $(VENV)/.installed  ## the main job: every adapter's suites and benchmarks, then the reports
	$(VENV)/bin/normbench run

# The tests in two passes of one suite: first the ones marked serial, alone (they time something or
# take the machine lock exclusively); then the others on every core (pytest-xdist; the tests that read
# one module's end-to-end run stay on one worker). The passes share one folder of the end-to-end runs
# several modules read (tests/conftest.py: once), so each runs once. Plain `pytest` runs them all too.
test: $(VENV)/.installed  ## the project's own tests; every framework must be really exercised
	shared=$$(mktemp -d) || exit 1; trap 'rm -rf "$$shared"' EXIT; \
	export NORMBENCH_REQUIRE_ALL=1 NORMBENCH_TEST_SHARED="$$shared"; \
	$(VENV)/bin/python -m pytest -m serial; serial=$$?; \
	$(VENV)/bin/python -m pytest -m "not serial" -n auto --maxprocesses 4 --dist loadgroup; rest=$$?; \
	[ $$serial -eq 0 ] && [ $$rest -eq 0 ]

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check normbench tests examples
