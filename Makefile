# Lifecycle CRM: `make run` starts the app with demo data, `make test` runs the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_CUSTOMERS ?= 2000
HOST ?= 127.0.0.1:8000

.PHONY: run test lint messages clean

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit("Python >= 3.11 is required") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

run: export DEBUG ?= true
# Links in e-mails (login links, surveys, referral shares) point at the server `make run` starts.
run: export SITE_URL ?= http://$(HOST)
run: $(VENV)/.installed
	$(PY) manage.py migrate --no-input -v0
	$(PY) manage.py seed_demo --customers $(DEMO_CUSTOMERS) --seed 42 --if-empty
	$(PY) manage.py recompute_clv --sync
	$(PY) manage.py evaluate_lifecycle
	@# Celery beat runs the scheduled jobs (loyalty's order feed, outbox delivery, the hourly lifecycle
	@# evaluation...) beside the server; without a broker each job runs in a thread of the beat process.
	@echo "E-mail the app sends goes to files in dev-email/ (one per delivery batch; unless EMAIL_URL is set),"
	@echo "not to this terminal; the staff Outbox page and each customer's send log list every message."
	$(VENV)/bin/celery -A config beat -l warning & beat=$$!; \
	trap 'kill $$beat 2>/dev/null' EXIT INT TERM; \
	$(PY) manage.py runserver $(HOST)

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

# The lint rules CI enforces (ruff.toml).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

# Translators' loop (needs GNU gettext); the compiled .mo files are committed so run/test need none.
# --no-location keeps parallel branches from conflicting over line numbers in the .po file.
messages: export DEBUG ?= true
messages: $(VENV)/.installed
	$(PY) manage.py makemessages -l zh_Hans --no-location --no-obsolete --ignore=.venv --ignore=staticfiles
	$(PY) manage.py compilemessages --ignore=.venv

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles dev-email
