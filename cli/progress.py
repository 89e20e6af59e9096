"""Live progress of a run, built from the graph's own stream (custom events and node updates)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text


@dataclass
class ProgressView:
    """What the live panel shows; updated event by event."""

    run_id: str
    budget: int
    started: float = field(default_factory=time.monotonic)
    agent: str = "starting"
    action: str = ""
    step: int = 0
    best: float | None = None
    baseline: float | None = None
    training: dict[str, Any] = field(default_factory=dict)
    evaluating: dict[str, Any] = field(default_factory=dict)
    sampling: dict[str, Any] = field(default_factory=dict)
    last_decision: str = ""
    history: list[str] = field(default_factory=list)

    def handle(self, event: dict[str, Any]) -> None:
        """Fold one custom stream event into the view."""
        kind = event.get("type")
        if kind == "agent_started":
            self.agent, self.action = event["agent"], event["action"]
            self.step = event.get("budget_step", event["step"])
            self.training, self.evaluating, self.sampling = {}, {}, {}
        elif kind == "agent_finished":
            mark = "✓" if event["status"] == "ok" else "✗"
            self.history.append(f"{mark} {event['step']:>3} {event['agent']}: {event['summary']}")
            if event["agent"] == "evaluator" and event.get("score") is not None:
                if self.baseline is None:
                    self.baseline = event["score"]
                self.best = max(self.best or 0.0, event["score"])
        elif kind == "training" and event.get("event") == "log":
            # A line of a remote job's log (Hugging Face Jobs): shown as it arrives.
            self.history.append(f"☁ {event.get('job', 'job')}: {event['line']}")
        elif kind == "training":
            self.training = event
        elif kind == "evaluating":
            self.evaluating = event
        elif kind == "sampling":
            self.sampling = event
        elif kind == "decision":
            self.last_decision = f"→ {event['next']}: {event['reason']}"
        elif kind == "note":
            self.history.append(f"ℹ {event['agent']}: {event['note']}")
        elif kind == "guard":
            self.history.append(
                f"⚠ loop guard {event['pattern']} → {event['rung']}: {event['detail']}"
            )

    def render(self) -> Panel:
        """The panel: agent, step k/budget, best score, elapsed, training or evaluation progress."""
        elapsed = time.monotonic() - self.started
        header = Table.grid(padding=(0, 2))
        header.add_row(
            Text(f"agent: {self.agent} {self.action}", style="bold cyan"),
            Text(f"step {self.step}/{self.budget}"),
            Text(f"baseline {_fmt(self.baseline)}  best {_fmt(self.best)}", style="bold green"),
            Text(f"elapsed {elapsed:,.0f}s"),
        )
        parts: list[Any] = [header]
        if self.training.get("max_steps"):
            done, total = self.training.get("step", 0), self.training["max_steps"]
            loss = self.training.get("loss")
            line = Table.grid(padding=(0, 1))
            line.add_row(
                Text("training"),
                ProgressBar(total=total, completed=done, width=30),
                Text(f"{done}/{total}" + (f"  loss {loss:.3f}" if loss is not None else "")),
            )
            parts.append(line)
        if self.sampling.get("total"):
            name = f"sampling {self.sampling.get('recipe', '')}"
            parts.append(_counted(name, self.sampling["done"], self.sampling["total"]))
        if self.evaluating.get("total"):
            name = f"evaluating {self.evaluating.get('label', '')}"
            parts.append(_counted(name, self.evaluating["done"], self.evaluating["total"]))
        if self.last_decision:
            parts.append(Text(self.last_decision[:200], style="dim"))
        parts.extend(Text(line[:160]) for line in self.history[-8:])
        return Panel(Group(*parts), title=f"postlab {self.run_id}", border_style="blue")


def _counted(name: str, done: int, total: int) -> Table:
    line = Table.grid(padding=(0, 1))
    line.add_row(
        Text(name), ProgressBar(total=total, completed=done, width=30), Text(f"{done}/{total}")
    )
    return line


def _fmt(score: float | None) -> str:
    return "—" if score is None else f"{score:.2f}"
