"""Jobs run as processes on this machine."""

from byok8s.executors.base import Executor


class LocalExecutor(Executor):
    plugin = "local"
