"""Import a definitions.py against the stand-in `dagster` and print what it defines, as JSON."""
import json
import runpy
import sys

defs = runpy.run_path(sys.argv[1])["defs"]
print(json.dumps({
    "assets": [
        {
            "name": a.kw["name"],
            "keys": [s.key.path for s in a.kw["specs"]],
            "groups": [s.group_name for s in a.kw["specs"]],
            "skippable": [s.skippable for s in a.kw["specs"]],
            "retry": {"max_retries": a.kw["retry_policy"].max_retries, "delay": a.kw["retry_policy"].delay, "backoff": a.kw["retry_policy"].backoff},
            "op_tags": a.kw["op_tags"],
        }
        for a in defs.assets
    ],
    "jobs": [{"name": j.name, "selection": [k.path for k in j.selection.keys], "tags": j.tags} for j in defs.jobs],
    "schedules": [
        {
            "name": s.name,
            "job": s.job.name,
            "cron_schedule": s.cron_schedule,
            "execution_timezone": s.execution_timezone,
            "default_status": s.default_status,
            "tags": s.tags,
        }
        for s in defs.schedules
    ],
}))
