"""The command line on many processes: ``gradfit fit --nproc N`` and ``torchrun ... -m gradfit fit``.

:func:`fit_hook` (called first by ``gradfit fit``) either launches N local processes of the same fit
(:func:`launch_local`), or, inside torchrun's environment, joins the process group and fits this
process's shard (rank 0 prints and saves; a lost peer becomes one line and exit code 1).

The launcher hosts the rendezvous store itself (as torchrun's agent does, ``TORCHELASTIC_USE_AGENT_STORE``),
so no port is guessed. Rank 0's output is passed through; when any process exits with an error the
others are stopped at once and one line says which process failed and why.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Sequence

from gradfit.cli.errors import is_user_error
from gradfit.distributed.session import (DEFAULT_TIMEOUT, DistributedError, Session, first_line, is_comm_failure,
                                         topology_from_env)

ARGS_ENV = "GRADFIT_WORKER_ARGS"
GRACE_S = 5.0
BLAME_S = 2.0  # after a process fails, how long the others may take to say whether it was a bad input
LOST = "lost contact with the others"  # what a process that lost its peers says (then it exits 1)


LAUNCHER_ENV = "GRADFIT_LAUNCHER_PID"
LOOPBACK = "127.0.0.1"


def worker_env(rank: int, world: int, port: int, threads: int | None = None) -> dict[str, str]:
    env = dict(os.environ, WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank),
               LOCAL_WORLD_SIZE=str(world), GROUP_RANK="0", MASTER_ADDR=LOOPBACK, MASTER_PORT=str(port),
               TORCHELASTIC_USE_AGENT_STORE="True")
    env[LAUNCHER_ENV] = str(os.getpid())
    loopback = _loopback_interface()
    if loopback and "GLOO_SOCKET_IFNAME" not in os.environ:  # gloo's own sockets on this machine only, too
        env["GLOO_SOCKET_IFNAME"] = loopback
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    elif "OMP_NUM_THREADS" not in os.environ:  # as torchrun: do not let N processes fight over the cores
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // world))
    return env


def spawn(command: Sequence[str], nproc: int, *, timeout: float = 60.0, extra_env: dict | None = None,
          threads: int | None = None, stdout=None) -> tuple[int, int | None, list[str]]:
    """Run ``command`` as ranks 0..nproc-1 of one process group on this machine.

    Returns (exit code, first failed rank or None, each rank's stderr). Rank 0's stdout goes to
    ``stdout`` (default: this process's ``sys.stdout``); the other ranks' is discarded.
    """
    store = local_store(nproc, timeout)
    out = stdout if stdout is not None else sys.stdout
    procs, errs = [], []
    try:
        for rank in range(nproc):
            env = worker_env(rank, nproc, store.port, threads)
            env.update(extra_env or {})
            err = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")
            errs.append(err)
            procs.append(subprocess.Popen(list(command), env=env, stderr=err, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.PIPE if rank == 0 else subprocess.DEVNULL,
                                          text=True, start_new_session=True))
        pump = threading.Thread(target=_copy_lines, args=(procs[0].stdout, out), daemon=True)
        pump.start()
        failed = _watch(procs, lambda rank: _read(errs[rank]))
        pump.join(timeout=GRACE_S)
        code = procs[failed].returncode if failed is not None else 0
        return code, failed, [_read(err) for err in errs]
    finally:
        _stop(procs)
        for err in errs:
            err.close()
        del store


def local_store(world: int, timeout: float):
    """The rendezvous store, listening on 127.0.0.1 only. (A TCPStore given a port binds every interface,
    so that anyone who can reach this machine could join or read the group; here it is handed a socket
    already bound to the loopback address, torch's ``master_listen_fd``.)"""
    from torch.distributed import TCPStore
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((LOOPBACK, 0))
        sock.listen(max(128, world))
        port = sock.getsockname()[1]
    except OSError:
        sock.close()
        raise
    return TCPStore(LOOPBACK, port, world_size=world, is_master=True, wait_for_workers=False,
                    timeout=datetime.timedelta(seconds=timeout), master_listen_fd=sock.detach())


def _loopback_interface() -> str | None:
    try:
        names = [name for _, name in socket.if_nameindex()]
    except (OSError, AttributeError):
        return None
    return next((n for n in ("lo", "lo0") if n in names), None)


def _copy_lines(src, dst) -> None:
    for line in src:
        dst.write(line)
        dst.flush()


def _watch(procs: list[subprocess.Popen], said: Callable[[int], str] = lambda rank: "") -> int | None:
    """Wait for every process; at the first non-zero exit return the rank to blame (the rest are stopped
    by the caller). ``said(rank)`` is what an exited process wrote to stderr."""
    while True:
        running = False
        for rank, p in enumerate(procs):
            rc = p.poll()
            if rc is None:
                running = True
            elif rc != 0:
                return _blame(procs, rank, said)
        if not running:
            return None
        time.sleep(0.02)


def _blame(procs: list[subprocess.Popen], first: int, said: Callable[[int], str] = lambda rank: "") -> int:
    """Which process to name when ``first`` was seen to fail first (``said``: an exited one's stderr).

    A process that stopped on a bad input (exit code 2) is named before one that lost contact with it,
    and so is one that died of its own cause (any other code): the others get ``BLAME_S`` to exit after
    the first failure. A process that lost contact is known by its line, not only by its exit code 1:
    torch's teardown can still abort it (SIGABRT) after it said so.
    """
    if procs[first].returncode == 2:
        return first

    def follower(rank: int) -> bool:
        return procs[rank].returncode == 1 or LOST in said(rank)
    lost = follower(first)
    start = time.monotonic()
    while True:
        codes = [p.poll() for p in procs]
        if 2 in codes:
            return codes.index(2)
        own = [rank for rank, c in enumerate(codes) if c not in (None, 0) and not follower(rank)]
        done = None not in codes or time.monotonic() - start >= BLAME_S
        if done:
            return own[0] if lost and own else first
        time.sleep(0.02)


def _stop(procs: list[subprocess.Popen]) -> None:
    alive = [p for p in procs if p.poll() is None]
    for p in alive:
        _signal(p, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    for p in alive:
        try:
            p.wait(max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            _signal(p, signal.SIGKILL)
            p.wait()


def _signal(p: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(p.pid, sig)  # the worker and anything it started
    except (ProcessLookupError, PermissionError):
        pass


def _read(err) -> str:
    err.seek(0)  # only of a process that has exited: the offset is shared with its stderr
    return err.read()


def _error_line(text: str) -> str | None:
    lines = [ln for ln in text.splitlines() if ln.startswith("gradfit: error: ")]
    return lines[-1][len("gradfit: error: "):] if lines else None


def launch_local(args, nproc: int) -> int:
    """``gradfit fit --nproc N``: the same fit in N processes of this machine; rank 0 prints and saves."""
    if nproc > 64:
        raise ValueError(f"--nproc {nproc} is more processes than one machine should run; use torchrun for clusters")
    payload = {k: v for k, v in vars(args).items() if k not in ("dist",)}
    payload["nproc"] = 1
    timeout = float(getattr(args, "timeout", 60.0) or 60.0)
    command = [sys.executable, "-m", "gradfit.cli.worker"]
    with _terminate_as_interrupt():  # killed with SIGTERM (timeout, kill): stop the workers first
        code, failed, texts = spawn(command, nproc, timeout=timeout,
                                    extra_env={ARGS_ENV: json.dumps(payload, default=str)})
    if failed is None:
        sys.stderr.write(texts[0])  # rank 0's warnings
        return 0
    line = _error_line(texts[failed])
    if line is None and texts[failed].strip():
        sys.stderr.write(texts[failed])  # not a known error: show everything it said (a traceback)
    if line is None:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        line = f"process {failed} of {nproc} {how} before finishing"
    print(f"gradfit: error: {line}; the other processes were stopped and nothing was written"
          if "nothing was written" not in line else f"gradfit: error: {line}", file=sys.stderr)
    return 2 if code == 2 else 1


@contextlib.contextmanager
def _terminate_as_interrupt():
    """SIGTERM raises KeyboardInterrupt (as Ctrl-C does), so that the launcher stops its workers
    before it exits; the workers also die with it on their own (see die_with_launcher)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt("stopped by SIGTERM")
    old = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def die_with_launcher() -> None:
    """In a worker: exit when the launcher that started it is gone, never outliving it to write a file.

    Linux: the kernel sends SIGTERM when the parent dies (prctl PR_SET_PDEATHSIG); elsewhere a
    watchdog thread polls the parent id. SIGTERM raises SystemExit, so a half-written temporary
    file is removed on the way out and nothing is saved after it.
    """
    launcher = int(os.environ.get(LAUNCHER_ENV, "0") or 0)
    signal.signal(signal.SIGTERM, _exit_on_term)
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):
            pass
    if launcher and os.getppid() != launcher:  # it died before prctl took effect
        raise SystemExit(143)
    if launcher:
        threading.Thread(target=_watchdog, args=(launcher,), daemon=True).start()


def _exit_on_term(signum, frame):
    raise SystemExit(143)


def _watchdog(launcher: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != launcher:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(GRACE_S)
            os._exit(143)  # SIGTERM could not unwind it (stuck in a C call): go now, nothing written


# -- the command line ---------------------------------------------------------------------------------
def fit_hook(args, cmd_fit: Callable) -> int | None:
    """Run ``gradfit fit`` distributed when asked; None means "go on with one process".

    ``--nproc N`` (N >= 2) outside torchrun launches N local processes; inside torchrun's environment
    this process joins the group, reads its shard (``args.dist``), stays silent unless it is rank 0,
    and turns a lost peer into one line and exit code 1.
    """
    if getattr(args, "dist", None) is not None:
        return None
    topology = topology_from_env()
    nproc = int(getattr(args, "nproc", 1))
    if float(getattr(args, "timeout", DEFAULT_TIMEOUT)) <= 0:
        raise ValueError(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
    if topology is None:
        if nproc < 1:
            raise ValueError(f"--nproc must be at least 1, got {nproc}")
        if nproc == 1:
            return None
        return launch_local(args, nproc)
    if nproc > 1:
        raise ValueError(f"--nproc cannot be used under torchrun, which already started {topology.world} "
                         "processes; drop --nproc")
    return _run_worker(args, topology, cmd_fit)


def _run_worker(args, topology, cmd_fit: Callable) -> int:
    session = Session(topology, timeout=getattr(args, "timeout", DEFAULT_TIMEOUT) or DEFAULT_TIMEOUT,
                      backend=getattr(args, "backend", "auto") or "auto", device=getattr(args, "device", "cpu"))
    args.dist, args.device = session, str(session.device)
    quiet = topology.rank != 0
    if quiet:  # rank 0 prints and writes the outputs
        args.save, args.quiet = None, True
    failure = None
    with open(os.devnull, "w") as sink, contextlib.ExitStack() as stack:
        if quiet:
            stack.enter_context(contextlib.redirect_stdout(sink))
            stack.enter_context(contextlib.redirect_stderr(sink))
        try:
            session.start()
            return cmd_fit(args)
        except DistributedError as exc:
            failure = str(exc)
        except Exception as exc:  # noqa: BLE001 - a collective that failed because a peer is gone
            if is_user_error(exc) or not is_comm_failure(exc):
                raise
            failure = (f"process {topology.rank} of {topology.world} {LOST} "
                       f"({first_line(exc)}); stopped, nothing was written")
        finally:
            if failure is None:
                session.close()
    print(f"gradfit: error: {failure}", file=sys.stderr, flush=True)
    return 1  # the process leaves at once (cli.entry.leave): the group's teardown could abort

