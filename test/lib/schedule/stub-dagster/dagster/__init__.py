"""A recording stand-in for the parts of the `dagster` package that a
`dativo dagster export` file uses (Dagster cannot be installed here). Each
constructor keeps its arguments so describe.py can report them; it checks
nothing a real Dagster would, beyond the names and keywords being accepted."""


class AssetKey:
    def __init__(self, path):
        self.path = list(path)


class AssetSpec:
    def __init__(self, key, *, group_name=None, description=None, tags=None, skippable=False):
        self.key = key
        self.group_name = group_name
        self.description = description
        self.tags = tags
        self.skippable = skippable


class Backoff:
    LINEAR = "LINEAR"
    EXPONENTIAL = "EXPONENTIAL"


class DefaultScheduleStatus:
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"


class RetryPolicy:
    def __init__(self, max_retries=1, delay=None, backoff=None, jitter=None):
        self.max_retries = max_retries
        self.delay = delay
        self.backoff = backoff
        self.jitter = jitter


class Failure(Exception):
    def __init__(self, description=None, metadata=None, allow_retries=None):
        super().__init__(description)
        self.description = description
        self.metadata = metadata or {}
        self.allow_retries = allow_retries


class MaterializeResult:
    def __init__(self, *, asset_key=None, metadata=None):
        self.asset_key = asset_key
        self.metadata = metadata or {}


class MetadataValue:
    @staticmethod
    def int(v):
        assert isinstance(v, int)
        return ("int", v)

    @staticmethod
    def text(v):
        assert isinstance(v, str)
        return ("text", v)

    @staticmethod
    def path(v):
        return ("path", str(v))


class AssetSelection:
    def __init__(self, keys):
        self.keys = keys

    @staticmethod
    def assets(*keys):
        return AssetSelection(list(keys))


class _Job:
    def __init__(self, name, selection, tags=None, description=None):
        self.name = name
        self.selection = selection
        self.tags = tags
        self.description = description


def define_asset_job(name, selection=None, tags=None, description=None):
    return _Job(name, selection, tags, description)


class ScheduleDefinition:
    def __init__(self, *, name, job, cron_schedule, execution_timezone=None, default_status=None, tags=None, description=None):
        self.name = name
        self.job = job
        self.cron_schedule = cron_schedule
        self.execution_timezone = execution_timezone
        self.default_status = default_status
        self.tags = tags
        self.description = description


class _MultiAsset:
    def __init__(self, fn, kw):
        self.fn = fn
        self.kw = kw


def multi_asset(*, name, specs, retry_policy=None, op_tags=None, can_subset=False):
    def wrap(fn):
        return _MultiAsset(fn, {"name": name, "specs": specs, "retry_policy": retry_policy, "op_tags": op_tags, "can_subset": can_subset})

    return wrap


class Definitions:
    def __init__(self, assets=None, jobs=None, schedules=None):
        self.assets = assets or []
        self.jobs = jobs or []
        self.schedules = schedules or []
