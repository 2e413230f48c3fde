"""Commits in isolation: each exported into a clean folder, timed by its own worker processes.

An export is ``git archive`` of the commit (no .git, no untracked files),
kept under the work folder by its full hash so a later comparison reuses it
together with its Numba cache (``NUMBA_CACHE_DIR`` inside the export). A
worker runs the benchmark suite given to it with ``PYTHONPATH`` set to the
export, so ``import fastbp`` finds that commit's code; the worker checks it.
"""
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def git(repo, *args):
    proc = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def resolve(repo, rev):
    """The full hash of commit ``rev`` of ``repo``."""
    return git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")


def default_workdir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "fastbp-perf-compare")


def export(repo, sha, workdir, fresh=False):
    """A clean copy of commit ``sha`` under ``workdir`` (made once, reused); its path."""
    dest = os.path.join(workdir, sha)
    done = os.path.join(dest, ".perf-export-complete")
    if fresh and os.path.exists(dest):
        shutil.rmtree(dest)
    if os.path.exists(done):
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    archive = subprocess.Popen(["git", "-C", repo, "archive", "--format=tar", sha],
                               stdout=subprocess.PIPE)
    untar = subprocess.run(["tar", "-x", "-C", dest], stdin=archive.stdout)
    archive.stdout.close()
    if archive.wait() != 0 or untar.returncode != 0:
        shutil.rmtree(dest, ignore_errors=True)
        raise RuntimeError(f"could not export commit {sha}")
    open(done, "w").close()
    return dest


def worker_env(source, one_thread):
    env = dict(os.environ)
    env["PYTHONPATH"] = source
    env["FASTBP_PERF_SOURCE"] = source
    env["NUMBA_CACHE_DIR"] = os.path.join(source, ".numba-cache")
    env.pop("FASTBP_NUMBA_CACHE", None)
    if one_thread:
        env.update({v: "1" for v in THREAD_VARS})
    return env


class Worker:
    """One benchmark process for one commit (see worker.py for the protocol)."""

    def __init__(self, python, source, bench_dir, one_thread=True, log=None):
        self.proc = subprocess.Popen(
            [python, os.path.join(HERE, "worker.py"), bench_dir], cwd=source, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log or subprocess.DEVNULL,
            env=worker_env(source, one_thread))

    def ask(self, **req):
        self.send(**req)
        return self.receive()

    def send(self, **req):
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()

    def receive(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark worker died (exit {self.proc.wait()}); "
                               "see the log (--log)")
        return json.loads(line)

    def close(self):
        try:
            self.proc.stdin.write('{"op": "quit"}\n')
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def python_with_deps():
    """This interpreter if it can import NumPy, SciPy and Numba; else .venv's, if any."""
    try:
        import numba  # noqa: F401
        import numpy  # noqa: F401
        import scipy  # noqa: F401
        return sys.executable
    except ImportError:
        venv = os.path.join(os.getcwd(), ".venv", "bin", "python")
        return venv if os.path.exists(venv) else sys.executable
