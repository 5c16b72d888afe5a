"""The fault schedule: a pure function of the seed (and the run's length), so that
`scripts/chaos --seed S` replays the same faults, in the same order, with the same parameters.
(Wall-clock interleavings with the traffic still differ from run to run; the auditor's checks
hold for every interleaving.)"""

import random
from dataclasses import dataclass, field
from typing import List

NODES = 3
#: Clients the lane runs: native WebSocket (the last one reads slowly) and socket.io-client.
NATIVE_CLIENTS = 7
SIO_CLIENTS = 3
#: Events published on the hot channel while a node is cut from the broker: more than one page
#: (1,000) of the gap fill, so the node must read the gap page by page.
HOT_BURST = 2500
#: Events published on one user's channel during a fault: more than that channel's history
#: (200), so a client away for the whole burst is told its channel is unrecovered.
USER_BURST = 400

KINDS = [
    "node_kill", "node_freeze", "broker_cut", "broker_stall", "broker_delay", "broker_reset",
    "store_cut", "store_stall", "store_delay", "broker_restart", "store_restart",
    "rolling_restart", "reconnect_storm", "slow_client",
]

#: The kinds that strike one node (the others strike a shared server or every client).
NODE_KINDS = {"node_kill", "node_freeze", "broker_cut", "broker_stall", "broker_delay", "broker_reset",
              "store_cut", "store_stall", "store_delay"}


@dataclass
class Fault:
    at: float  # seconds after the fault phase began (a target: faults run one after another)
    kind: str
    node: int = 0
    seconds: float = 0.0
    params: dict = field(default_factory=dict)

    def describe(self) -> str:
        where = f" n{self.node}" if self.kind in NODE_KINDS else ""
        extra = "".join(f" {k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.kind}{where} {self.seconds:.1f}s{extra}"


def fault(rng: random.Random, kind: str, at: float) -> Fault:
    """One fault of `kind` with its parameters drawn from `rng`."""
    f = Fault(at=at, kind=kind, node=rng.randrange(NODES))
    if kind == "node_kill":
        f.seconds = rng.uniform(0.5, 3)
    elif kind == "node_freeze":
        f.seconds = rng.uniform(2, 7)
    elif kind == "broker_cut":
        f.seconds = rng.uniform(3, 6)
        f.params = {"hot_burst": HOT_BURST, "user_burst": USER_BURST}
    elif kind in ("broker_stall", "store_cut", "store_stall"):
        f.seconds = rng.uniform(2, 6)
    elif kind in ("broker_delay", "store_delay"):
        f.seconds = rng.uniform(3, 6)
        f.params = {"ms": rng.choice([20, 100, 300, 800])}
    elif kind in ("broker_restart", "store_restart"):
        f.seconds = rng.uniform(0.5, 3)
        if kind == "store_restart":
            f.params = {"mode": rng.choice(["fast", "immediate"])}
    elif kind == "slow_client":
        f.seconds = rng.uniform(3, 10)
        f.params = {"client": rng.randrange(NATIVE_CLIENTS + SIO_CLIENTS), "user_burst": USER_BURST}
    return f


def make_schedule(seed: int, fault_seconds: float) -> List[Fault]:
    """Every kind once, in a seeded order, then seeded random kinds until `fault_seconds` is
    planned. Planned time counts each fault's duration plus a pause of 1-3 s after it."""
    rng = random.Random(seed)
    kinds = KINDS[:]
    rng.shuffle(kinds)
    faults: List[Fault] = []
    at = 0.0
    for i in range(10_000):  # bounded; the time budget ends it long before
        kind = kinds[i] if i < len(kinds) else rng.choice(KINDS)
        f = fault(rng, kind, at)
        if i >= len(kinds) and at + f.seconds > fault_seconds:
            break
        faults.append(f)
        at += f.seconds + expected_overhead(kind) + rng.uniform(1, 3)
    return faults


def expected_overhead(kind: str) -> float:
    """Seconds a fault takes beyond its own duration (restarts, waiting for readiness)."""
    return {"rolling_restart": 9.0, "node_kill": 1.0, "broker_cut": 2.0, "broker_restart": 1.0,
            "store_restart": 2.0}.get(kind, 0.0)
