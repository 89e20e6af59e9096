"""postlab.graph: routing, budget, loop guard, and the graph that wires the agents."""

from postlab.graph.builder import build_graph

__all__ = ["build_graph"]
