"""postlab.graph: the supervisor's routing, budget, loop guard and the lab's state."""

from typing import Any

__all__ = ["build_graph"]


def __getattr__(name: str) -> Any:
    # Lazy: graph.state is imported by the agents, and the builder imports the agents.
    if name == "build_graph":
        from postlab.graph.builder import build_graph

        return build_graph
    raise AttributeError(f"module 'postlab.graph' has no attribute {name!r}")
