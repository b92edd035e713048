"""The key that signs login cookies, CSRF tokens and share links."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

FILE_NAME = "secret_key"


def load_or_create(configured: str, data_dir: Path) -> str:
    """``MLOPS_SECRET_KEY`` when set; else the key kept in ``<data dir>/secret_key`` (mode 0600).

    The first process to start writes it; every later one (a restart, other gunicorn workers on the
    same data dir) reads the same key, so logins and share links survive restarts and work on every
    worker. The file appears whole or not at all (written aside, then hard-linked into place).
    """
    if configured:
        return configured
    path = Path(data_dir) / FILE_NAME
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
        try:
            os.link(temp, path)  # fails if another process won the race: then its key is the key
        except FileExistsError:
            pass
        finally:
            temp.unlink()
    key = path.read_text().strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} holds no usable key: delete it (logins and share links then end) or set MLOPS_SECRET_KEY")
    return key
