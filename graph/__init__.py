"""postlab.graph: the supervisor's routing, budget, loop guard and the lab's state."""

from postlab.graph.builder import build_graph

__all__ = ["build_graph"]
