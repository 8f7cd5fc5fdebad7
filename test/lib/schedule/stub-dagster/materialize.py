"""Run the named assets of a definitions.py once each (as a first attempt) and print, as JSON,
what each yielded or raised and what it logged as warnings."""
import json
import runpy
import sys

from dagster import Failure

module = runpy.run_path(sys.argv[1])


class Log:
    def __init__(self):
        self.warnings = []

    def warning(self, msg):
        self.warnings.append(msg)

    def info(self, msg):
        pass

    def debug(self, msg):
        pass


class Context:
    def __init__(self):
        self.log = Log()
        self.retry_number = 0


out = {}
for name in sys.argv[2:]:
    ctx = Context()
    entry = {"warnings": ctx.log.warnings}
    try:
        entry["results"] = [{"key": r.asset_key.path, "metadata": r.metadata} for r in module["ASSETS"][name].fn(ctx)]
    except Failure as f:
        entry["failure"] = {"description": f.description, "allow_retries": f.allow_retries, "metadata": f.metadata}
    out[name] = entry
print(json.dumps(out))
