"""How a training worker's process starts: its command (one process or torchrun's group), its
environment, its own temporary folder, and whether it is forked warm or started cold."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from postlab.tools.tracking.trackers import start_cold, training_tracker_env
from postlab.tools.training.devices import visible_gpus
from postlab.tools.training.processes import WORKER_MODULE
from postlab.tools.training.spec import TrainingSpec
from postlab.tools.training.warm_start import WarmProcess, prewarm, start_warm, warm_enabled

# The worker's temporary files (datasets' map caches among them) live in a folder of its own in
# its output folder and go when it ends: a worker forked warm leaves by os._exit, so its
# libraries' exit-time clean-ups never run, and a killed worker runs none either.
WORKER_TMP_PREFIX = ".worker-tmp-"


def worker_command(spec: TrainingSpec, spec_path: Path) -> list[str]:
    """The command that runs the worker: one process, or torchrun's data-parallel group."""
    worker = ["-m", WORKER_MODULE, str(spec_path)]
    if spec.num_processes == 1:
        return [sys.executable, *worker]
    launcher = ["-m", "torch.distributed.run", "--nproc_per_node", str(spec.num_processes)]
    # A free port per launch: two runs on one machine must not join each other's group.
    rendezvous = ["--master_addr", "127.0.0.1", "--master_port", str(free_port())]
    return [sys.executable, *launcher, *rendezvous, *worker]


def free_port() -> int:
    """A TCP port on the loopback nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def base_env() -> dict[str, str]:
    """This process's environment as every worker and launcher starts from it."""
    env = dict(os.environ)
    env["TOKENIZERS_PARALLELISM"] = "false"
    env["PYTHONUNBUFFERED"] = "1"
    # Progress bars redraw with carriage returns, which would flood the line-oriented log.
    env["TQDM_DISABLE"] = "1"
    env["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    return env


def _worker_env(spec: TrainingSpec, out_dir: Path, temporary: Path) -> dict[str, str]:
    env = base_env()
    log_dir = Path(spec.tracker_dir) if spec.tracker_dir else out_dir
    env.update(training_tracker_env(spec.tracker, log_dir, spec.tracker_project))
    env["TMPDIR"] = str(temporary)
    if spec.threads is not None:
        # Thread pools size themselves at import time, before the worker can call set_num_threads.
        env["OMP_NUM_THREADS"] = str(spec.threads_per_process)
        env["MKL_NUM_THREADS"] = str(spec.threads_per_process)
    return env


def _forks_warm() -> bool:
    # CUDA must not be forked: on a GPU every worker starts cold.
    return warm_enabled() and not visible_gpus()


def prewarm_workers(tokenizer_dirs: tuple[str, ...] = ()) -> None:
    """Start the warm launcher now when workers here will fork from it, so its imports (and
    the tokenizers in `tokenizer_dirs`) load while other work goes on; a no-op where workers
    start cold."""
    if _forks_warm():
        prewarm(base_env(), tokenizer_dirs)


def start_python(
    module: str, args: list[str], env: dict[str, str], cwd: Path, output: int
) -> subprocess.Popen | WarmProcess:
    """`module`'s main with `args` in a process of its own, its stdout and stderr into the
    descriptor `output`, under this process's environment with `env` over it: forked from the
    warm launcher where workers are and one listens (its libraries, wandb's among them, are
    imported already), else started cold."""
    full_env = {**base_env(), **env}
    if _forks_warm():
        with contextlib.suppress(OSError):
            return start_warm(module, args, full_env, str(cwd), output, start_launcher=False)
    return start_cold(module, args, full_env, cwd, output)


def remove_left_temporaries(out_dir: Path) -> None:
    """Remove the temporary folders a killed run's worker left in `out_dir` (it is ended first)."""
    for left in out_dir.glob(f"{WORKER_TMP_PREFIX}*"):
        shutil.rmtree(left, ignore_errors=True)


def start_worker(
    spec: TrainingSpec, spec_path: Path, out_dir: Path
) -> tuple[subprocess.Popen | WarmProcess, Path]:
    """The worker's process and the temporary folder made for it (removed if it cannot start)."""
    temporary = Path(tempfile.mkdtemp(prefix=WORKER_TMP_PREFIX, dir=out_dir))
    try:
        env = _worker_env(spec, out_dir, temporary)
        return _start_process(spec, spec_path, env, out_dir), temporary
    except OSError:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _start_process(
    spec: TrainingSpec, spec_path: Path, env: dict[str, str], out_dir: Path
) -> subprocess.Popen | WarmProcess:
    """The worker's process, in its own session and working in its output folder: forked warm
    for one CPU process (imports already done), else started cold."""
    # Unsloth must patch before transformers is imported: it starts cold.
    if spec.num_processes == 1 and not spec.use_unsloth and _forks_warm():
        with contextlib.suppress(OSError):  # no launcher here: the cold start still works
            return start_warm(WORKER_MODULE, [str(spec_path)], env, str(out_dir))
    return subprocess.Popen(
        worker_command(spec, spec_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=out_dir,
        start_new_session=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        bufsize=1,
    )
