"""Every retry, backoff and wait policy of the project, each with the reason it exists.

Keeping them in one place makes the failure behaviour reviewable: a reader can
see at a glance how long anything may block and on which errors it gives up.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class BackoffPolicy:
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(cap, base * 2**n))."""

    max_attempts: int
    initial_delay_s: float
    max_delay_s: float
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.initial_delay_s < 0 or self.max_delay_s < self.initial_delay_s:
            raise ValueError("need 0 <= initial_delay_s <= max_delay_s")

    def delays(self) -> Iterator[float]:
        """Yield the sleep before each retry (max_attempts - 1 values)."""
        for attempt in range(self.max_attempts - 1):
            ceiling = min(self.max_delay_s, self.initial_delay_s * (2**attempt))
            yield random.uniform(0, ceiling) if self.jitter else ceiling


# Why: the Python client retries transient transport failures itself; 429 and
# 502-504 come from a busy or restarting node and usually clear in seconds.
# Three attempts keep an interactive query under its timeout budget.
ES_CLIENT_MAX_RETRIES = 3
ES_CLIENT_RETRY_ON_STATUS = (429, 502, 503, 504)

# Why: a shopper's search has one deadline (the engine's leg timeout plus slack). A search
# that timed out is not retried: against a hung node the retries would multiply the wait
# (4 x 7 s) for an answer that is a 503 anyway. Refused connections are still retried:
# they fail in microseconds, and a restarting node's other HTTP worker may take them.
SEARCH_RETRY_ON_TIMEOUT = False

# Why: /readyz must answer faster than an orchestrator's probe timeout (often 1-5 s). With
# the client defaults (30 s, retried on timeout) a frozen node would hold a worker for two
# minutes; one short attempt reads it as "not ready" at once.
READINESS_TIMEOUT_S = 3.0

# Why: bulk indexing is the one place ES pushes back on purpose (429 when the
# write queue is full). Backing off up to 30 s lets merges catch up instead of
# failing a 40k-document build; five attempts bound a dead cluster to ~1 min.
BULK_BACKOFF = BackoffPolicy(max_attempts=5, initial_delay_s=1.0, max_delay_s=30.0)

@dataclass(frozen=True)
class OutagePolicy:
    """Keep retrying for up to ``window_s`` of wall time; waits double from initial to max delay.

    A count of attempts says little about an outage: a restarting node refuses
    connections instantly, so attempts would be spent in milliseconds. A window
    says how long a run rides out an unreachable cluster before it gives up.
    """

    window_s: float
    initial_delay_s: float
    max_delay_s: float

    def __post_init__(self) -> None:
        if self.window_s < 0:
            raise ValueError("window_s must be >= 0")
        if self.initial_delay_s <= 0 or self.max_delay_s < self.initial_delay_s:
            raise ValueError("need 0 < initial_delay_s <= max_delay_s")

    def waits(self, clock: Callable[[], float] = time.monotonic) -> Iterator[float]:
        """Yield the sleep before each retry, as long as the retry would start inside the window."""
        deadline = clock() + self.window_s
        delay = self.initial_delay_s
        while True:
            remaining = deadline - clock()
            if remaining <= 0:
                return
            yield min(delay, remaining)
            delay = min(self.max_delay_s, delay * 2)


# Why: a node restart (an upgrade, an OOM kill, a moved VM) takes a JVM 20-60 s on a
# small machine; a 40k-document build must ride that out instead of failing. Two
# minutes covers a restart with room to spare; past it the build stops with the
# index name and the `--resume` command, because nothing acknowledged is lost and
# resuming skips what is already indexed. Waits stay <= 10 s so the build picks up
# within seconds of the node's return.
BUILD_OUTAGE = OutagePolicy(window_s=120.0, initial_delay_s=1.0, max_delay_s=10.0)

# Why: a JVM node on 2 cores needs 15-60 s to reach yellow; polling every
# half second notices readiness promptly without hammering the node.
NODE_STARTUP_TIMEOUT_S = 180.0
NODE_POLL_INTERVAL_S = 0.5
# Why: a graceful shutdown flushes translogs; after this we SIGKILL.
NODE_STOP_TIMEOUT_S = 60.0
# Why: a local cluster boots its JVMs at once, so on 2 cores each takes up to three times as long
# as a lone node, and the cluster forms only once a majority of master-eligible nodes is up.
CLUSTER_STARTUP_TIMEOUT_S = 420.0
# Why: once every node has joined, shards of existing indices are allocated within seconds. A
# yellow that lasts this long is replicas that cannot be placed (more replicas than other nodes, or
# allocation refused); start reports it as yellow with the unassigned count instead of waiting on.
CLUSTER_GREEN_GRACE_S = 30.0
# Why: SIGKILL ends a process at once; the kernel reaps it in milliseconds. Past this the
# process is stuck in the kernel (uninterruptible I/O) and a fault test must not go on as if it died.
NODE_KILL_TIMEOUT_S = 10.0

# Why: events are flushed in the background; a failed flush is retried a few
# times and the batch stays in memory (bounded) so clicks are not lost on a blip.
EVENTS_FLUSH_BACKOFF = BackoffPolicy(max_attempts=4, initial_delay_s=0.5, max_delay_s=5.0)

# Why: image URL fetching talks to arbitrary third-party hosts; one attempt
# with tight timeouts, because retrying a hostile or slow host only amplifies it.
URL_FETCH_CONNECT_TIMEOUT_S = 3.0
URL_FETCH_READ_TIMEOUT_S = 10.0

# Why: a 503 from the query service tells clients when to come back; five
# seconds matches the client's own retry of a restarting node.
SERVICE_RETRY_AFTER_S = 5


def ride_out(
    operation: Callable[[], T],
    policy: OutagePolicy,
    retry_if: Callable[[BaseException], bool],
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[BaseException, float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run ``operation``; while it fails with an exception ``retry_if`` accepts, wait per ``policy``
    and retry until the window ends. ``on_retry(error, delay)`` hears of each retry (counters, logs).
    """
    waits = policy.waits(clock)
    while True:
        try:
            return operation()
        except Exception as exc:
            delay = next(waits, None) if retry_if(exc) else None
            if delay is None:
                raise
            if on_retry is not None:
                on_retry(exc, delay)
            sleep(delay)


def retry_call(
    operation: Callable[[], T],
    policy: BackoffPolicy,
    retry_on: tuple[type[BaseException], ...],
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``operation``; on an exception in ``retry_on`` sleep per ``policy`` and try again."""
    delays = policy.delays()
    while True:
        try:
            return operation()
        except retry_on:
            delay = next(delays, None)
            if delay is None:
                raise
            sleep(delay)
