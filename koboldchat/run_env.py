"""The environment `make run` serves with: production mode over plain HTTP on this machine
(debug off, a secret key generated once and kept in the run folder, the hosts of
KOBOLDCHAT_HOSTS), and the checks that refuse a dangerous start. `make dev`: debug on."""

import ipaddress
import os
from pathlib import Path

import environ
from django.core.management.utils import get_random_secret_key

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HOSTS = "localhost,127.0.0.1"


def run_dir() -> Path:
    """The git-ignored local data folder (KOBOLDCHAT_RUN_DIR, default `.run/`)."""
    return Path(os.environ.get("KOBOLDCHAT_RUN_DIR") or ROOT / ".run")


def secret_key(folder: Path) -> str:
    """The secret key kept in `folder`/secret_key, made on the first start (sessions and
    password-reset links outlive a restart)."""
    path = folder / "secret_key"
    if path.exists():
        return path.read_text().strip()
    folder.mkdir(parents=True, exist_ok=True)
    key = get_random_secret_key()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(key + "\n")
    return key


def apply_run_environment() -> None:
    """Fill os.environ with the run command's defaults; what the environment or `.env`
    already says wins. Debug off (unless DJANGO_DEBUG says otherwise) over plain HTTP:
    no redirect to https, no HSTS, cookies without Secure (DJANGO_HTTPS=off)."""
    env = os.environ
    dotenv = ROOT / ".env"
    if dotenv.is_file():
        environ.Env.read_env(dotenv)  # never overrides what is already set
    env.setdefault("DJANGO_DEBUG", "off")
    if environ.Env().bool("DJANGO_DEBUG"):
        return
    env.setdefault("DJANGO_HTTPS", "off")
    env.setdefault("DJANGO_ALLOWED_HOSTS", env.get("KOBOLDCHAT_HOSTS") or DEFAULT_HOSTS)
    if not env.get("DJANGO_SECRET_KEY"):
        env["DJANGO_SECRET_KEY"] = secret_key(run_dir())


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def start_refusal(bind: str, local_user: str) -> str | None:
    """Why the server must not start as configured, or None."""
    if local_user and not is_loopback(bind):
        return (
            f"KOBOLDCHAT_LOCAL_USER={local_user} lets requests from this machine in "
            f"without a password, so it is refused with KOBOLDCHAT_BIND={bind} "
            "(not a loopback address). Unset one of them."
        )
    return None
