"""Batch jobs as Ray tasks (optional extra ``ray``): the only module that imports Ray.

Every job is one Ray task asking for ``cpus_per_job`` CPUs and ``gpus_per_job`` GPUs
(fractions allowed: four fits share one card at 0.25). Ray runs them on a local
instance it starts (``address=None``) or on a running cluster (``host:port`` of its
head, ``ray://host:port`` for Ray Client, or ``auto``); every node needs wisp-shacira
installed and the inputs and output folder at the same paths (a shared file system).

A task whose worker dies (killed, out of memory, a lost node) or that raises anything
but a user error is retried once by Ray (``max_retries=1``, ``retry_exceptions``); a
user error (:class:`~wisp_shacira.errors.ShaciraError`: bad input, config, output)
comes back as a failed row at once, since it would fail again.
"""
from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Iterator
from urllib.parse import urlsplit

from wisp_shacira.batch.jobs import Job, failed_row, run_job
from wisp_shacira.errors import ConfigError
from wisp_shacira.extras import require

logger = logging.getLogger(__name__)


@dataclass
class RayOptions:
    """Where and how batch jobs run on Ray.

    Attributes:
        address: a running cluster (``host:port``, ``ray://host:port``, ``auto``);
            None starts a local instance.
        cpus: CPUs of the local instance (None: every core); ignored with ``address``.
        cpus_per_job: CPUs each job asks for (also its torch threads, at least 1).
        gpus_per_job: GPUs each job asks for (0 = CPU jobs; fractions share a GPU).
        retries: attempts after the first for a job whose worker died or that raised.
        connect_timeout: seconds the cluster at ``address`` has to answer.
        runtime_env: extra Ray runtime environment of the workers.
    """

    address: str | None = None
    cpus: int | None = None
    cpus_per_job: float = 1.0
    gpus_per_job: float = 0.0
    retries: int = 1
    connect_timeout: float = 15.0
    runtime_env: dict = field(default_factory=dict)

    def check(self) -> None:
        if self.cpus is not None and self.cpus < 1:
            raise ConfigError(f"--cpus must be >= 1, got {self.cpus}")
        if self.cpus_per_job <= 0 or self.gpus_per_job < 0:
            raise ConfigError(f"--cpus-per-job must be > 0 and --gpus-per-job >= 0, got "
                              f"{self.cpus_per_job} and {self.gpus_per_job}")
        if self.retries < 0 or self.connect_timeout <= 0:
            raise ConfigError("--retries must be >= 0 and --connect-timeout > 0")


def probe(address: str, timeout: float) -> None:
    """Check that something listens at a cluster address before Ray tries it (Ray
    itself would wait a long time for a head that is not there).

    Raises:
        ConfigError: the address is malformed or nothing answers within ``timeout``.
    """
    if address == "auto":
        return
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise ConfigError(f"--ray {address}: not host:port ({exc})") from exc
    if not host or port is None:
        raise ConfigError(f"--ray {address}: expected host:port or ray://host:port")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ConfigError(f"no Ray cluster answers at {address} within {timeout:g} s ({reason}); "
                          f"start one with `ray start --head` or drop the address to run "
                          f"a local instance") from None


def _worker(job: Job, threads: int) -> dict:
    """A Ray task: a user error is a failed row, anything else raises (Ray retries)."""
    return run_job(job, threads)


def _one_line(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[-1] if lines else type(exc).__name__
    return f"{type(exc).__name__}: {text}"


class RayPool:
    """A context manager: connects to (or starts) Ray, runs jobs, shuts down.

    Raises:
        MissingExtraError: Ray is not installed.
        ConfigError: the cluster does not answer.
    """

    def __init__(self, options: RayOptions) -> None:
        options.check()
        self.options = options
        self.ray = None

    def __enter__(self) -> "RayPool":
        ray = require("ray", "ray", "batch compression on Ray (--ray)")
        opts = self.options
        if opts.address is not None:
            probe(opts.address, opts.connect_timeout)
        env = {"env_vars": {"TQDM_DISABLE": "1", **opts.runtime_env.get("env_vars", {})},
               **{k: v for k, v in opts.runtime_env.items() if k != "env_vars"}}
        kwargs = {"num_cpus": opts.cpus} if opts.address is None else {"address": opts.address}
        try:
            ray.init(**kwargs, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING, runtime_env=env)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"Ray at {opts.address or 'a local instance'} could not be "
                              f"used: {_one_line(exc)}") from None
        self.ray = ray
        return self

    def __exit__(self, *exc_info) -> None:
        if self.ray is not None:
            self.ray.shutdown()
            self.ray = None

    def describe(self) -> dict:
        """Where the jobs ran: address, the cluster's CPUs and GPUs, the per-job request."""
        resources = self.ray.cluster_resources()
        return {"executor": "ray", "ray_version": self.ray.__version__,
                "address": self.options.address or "local",
                "cluster_cpus": resources.get("CPU", 0), "cluster_gpus": resources.get("GPU", 0),
                "cpus_per_job": self.options.cpus_per_job,
                "gpus_per_job": self.options.gpus_per_job}

    def run(self, jobs: list[Job]) -> Iterator[dict]:
        """Submit every job; yield each row as its task ends (failed after the retries)."""
        ray, opts = self.ray, self.options
        remote = ray.remote(num_cpus=opts.cpus_per_job, num_gpus=opts.gpus_per_job,
                            max_retries=opts.retries, retry_exceptions=True)(_worker)
        threads = max(1, int(opts.cpus_per_job))
        pending = {remote.remote(job, threads): job for job in jobs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(done[0])
            try:
                yield ray.get(done[0])
            except ray.exceptions.RayError as exc:
                logger.warning("%s failed after %d attempts: %s", job.name, opts.retries + 1,
                               _one_line(exc))
                yield failed_row(job, _one_line(exc))


def local_cpus() -> int:
    """CPUs this process may use (the local instance's default size)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
