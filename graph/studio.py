"""The graph LangGraph Studio serves (no checkpointer or store: `langgraph dev` brings its own)."""

from postlab.graph.builder import build_graph

graph = build_graph()
