"""Accounts: users with roles, API tokens, and share links to one chart.

Passwords are hashed with argon2id (argon2-cffi); tokens are 256 random bits, of which only the
SHA-256 is stored (a fast hash is right for a secret that long: nothing to brute-force). Share links
carry a signed id (itsdangerous) and are checked against their row, so they can be revoked.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import secrets
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError

from events.serialize import iso_utc, utc_now
from services.errors import Conflict, DomainError, Invalid, NotFound
from services.validation import check_fields, name_problem
from storage.db import Database
from storage.models import ROLES, ApiToken, ShareLink, User

TOKEN_PREFIX = "mlops_"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")  # fullmatch: "$" would let a trailing "\n" in
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
MAX_DAYS = 3650
LAST_USED_EVERY = dt.timedelta(minutes=1)  # last_used_at is written at most this often per token

_TOKEN_LOOKUP = (
    select(ApiToken.id, ApiToken.expires_at, ApiToken.revoked_at, ApiToken.last_used_at, User.id, User.name, User.role)
    .join(User, User.id == ApiToken.user_id)
    .where(ApiToken.token_hash == bindparam("token_hash"))
)
_SESSION_LOOKUP = select(User.name, User.role, User.session_version).where(User.id == bindparam("user_id"))

_hasher = PasswordHasher()
# Verified when the user does not exist, so an unknown name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def rank(role: str | None) -> int:
    """0 for no role, then viewer < editor < admin."""
    return ROLES.index(role) + 1 if role in ROLES else 0


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who is making a request, and how they proved it.

    ``kind``: ``session`` (login cookie), ``token`` (bearer), ``basic`` (user:password), ``local``
    (MLOPS_AUTH=local: the one person at this machine) or ``share`` (a share link: one chart, read-only).
    """

    name: str
    role: str | None
    kind: str
    user_id: int | None = None
    token_id: int | None = None
    session_version: int | None = None
    share_id: int | None = None
    chart: str | None = None

    def can(self, role: str) -> bool:
        return rank(self.role) >= rank(role)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "auth": self.kind, "id": self.user_id}


LOCAL = Principal(name="local", role="admin", kind="local")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _expiry(days: Any, default: int | None) -> dt.datetime | None:
    if days is None:
        days = default
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, (int, float)) or not 0 < days <= MAX_DAYS:
        raise Invalid(
            f"expires_in_days must be a number of days from 1 to {MAX_DAYS}",
            details={"expires_in_days": f"a number in (0, {MAX_DAYS}]"},
        )
    return utc_now() + dt.timedelta(days=days)


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise Invalid(
            "a user name is 1 to 64 letters, digits or _ . @ -, starting with a letter or digit",
            details={"name": "1-64 of A-Z a-z 0-9 _ . @ -"},
        )
    return name


def _check_password(password: Any) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise Invalid(
            f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters",
            details={"password": f"{MIN_PASSWORD}-{MAX_PASSWORD} characters"},
        )
    return password


def _check_role(role: Any) -> str:
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}", details={"role": f"one of {', '.join(ROLES)}"})
    return role


def _check_label(value: Any, field: str) -> str:
    if (problem := name_problem(value, 255)) is not None:
        raise Invalid(f"{field}: {problem}", details={field: problem})
    return value.strip()


class Accounts:
    def __init__(self, db: Database, secret_key: str):
        self.db = db
        self._share_signer = URLSafeSerializer(
            secret_key, salt="mlops-share-link", signer_kwargs={"digest_method": hashlib.sha256}
        )

    # ---- users --------------------------------------------------------------------------------
    def count_users(self) -> int:
        with self.db.session() as session:
            return session.scalar(select(func.count()).select_from(User)) or 0

    def list_users(self) -> list[dict[str, Any]]:
        with self.db.session() as session:
            return [u.to_dict() for u in session.scalars(select(User).order_by(User.id))]

    def get_user(self, user_id: int) -> dict[str, Any]:
        with self.db.session() as session:
            return self._user(session, user_id).to_dict()

    def create_user(self, body: Any) -> dict[str, Any]:
        body = check_fields(body, {"name", "password", "role"}, {"name", "password", "role"})
        name, password, role = _check_name(body["name"]), _check_password(body["password"]), _check_role(body["role"])
        with self.db.session() as session:
            if session.scalar(select(User.id).where(func.lower(User.name) == name.lower())) is not None:
                raise Conflict(f"a user named {name!r} exists", code="name_taken")
            user = User(name=name, password_hash=_hasher.hash(password), role=role)
            session.add(user)
            session.flush()
            return user.to_dict()

    def update_user(self, user_id: int, body: Any) -> dict[str, Any]:
        body = check_fields(body, {"password", "role"})
        with self.db.session() as session:
            user = self._user(session, user_id, lock=True)
            changed = False
            if "role" in body and _check_role(body["role"]) != user.role:
                if user.role == "admin":
                    self._keep_an_admin(session, user.id)
                user.role, changed = body["role"], True
            if "password" in body:
                user.password_hash, changed = _hasher.hash(_check_password(body["password"])), True
            if changed:
                user.session_version += 1  # logins made before this change end
            return user.to_dict()

    def delete_user(self, user_id: int) -> None:
        with self.db.session() as session:
            user = self._user(session, user_id, lock=True)
            if user.role == "admin":
                self._keep_an_admin(session, user.id)
            session.delete(user)

    def ensure_admin(self, name: str, password: str) -> dict[str, Any]:
        """Create the admin ``name``, or make it an admin with this password (MLOPS_ADMIN_USER at start)."""
        _check_name(name)
        _check_password(password)
        for attempt in range(2):  # workers starting together race to create it: the loser updates
            try:
                with self.db.session() as session:
                    user = session.scalar(select(User).where(func.lower(User.name) == name.lower()))
                    if user is None:
                        user = User(name=name, password_hash=_hasher.hash(password), role="admin")
                        session.add(user)
                    elif user.role != "admin" or not self._verify(user.password_hash, password):
                        user.role = "admin"
                        user.password_hash = _hasher.hash(password)
                        user.session_version += 1
                    session.flush()
                    return user.to_dict()
            except IntegrityError:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def authenticate(self, name: str, password: str) -> Principal | None:
        """The user with this name and password, or None (after the same work either way)."""
        with self.db.session() as session:
            user = session.scalar(select(User).where(func.lower(User.name) == str(name).lower()))
            if user is None:
                self._verify(_DUMMY_HASH, password)
                return None
            if not self._verify(user.password_hash, password):
                return None
            if _hasher.check_needs_rehash(user.password_hash):
                user.password_hash = _hasher.hash(password)
            return Principal(user.name, user.role, "basic", user_id=user.id, session_version=user.session_version)

    def session_user(self, user_id: int, version: int) -> Principal | None:
        """The user of a login cookie, while it exists and its password and role are unchanged."""
        with self.db.engine.connect() as conn:  # every page request: a prebuilt Core query, no ORM session
            found = conn.execute(_SESSION_LOOKUP, {"user_id": user_id}).first()
        if found is None or found.session_version != version:
            return None
        return Principal(found.name, found.role, "session", user_id=user_id, session_version=version)

    @staticmethod
    def _verify(stored: str, password: str) -> bool:
        try:
            return _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    @staticmethod
    def _user(session, user_id: int, lock: bool = False) -> User:
        user = session.get(User, user_id, with_for_update=lock)
        if user is None:
            raise NotFound(f"no user {user_id}", code="user_not_found")
        return user

    @staticmethod
    def _keep_an_admin(session, leaving_id: int) -> None:
        others = session.scalar(select(func.count()).select_from(User).where(User.role == "admin", User.id != leaving_id))
        if not others:
            raise Conflict("this is the last admin: make another user an admin first", code="last_admin")

    # ---- API tokens ---------------------------------------------------------------------------
    def create_token(self, owner: Principal, body: Any) -> dict[str, Any]:
        if owner.user_id is None:
            raise DomainError(
                "tokens belong to accounts: with MLOPS_AUTH=local no token is needed (create users with "
                "'python app.py users create NAME' to use tokens)",
                code="no_account",
                status=409,
            )
        body = check_fields(body if body is not None else {}, {"name", "expires_in_days"}, {"name"})
        name = _check_label(body["name"], "name")
        expires_at = _expiry(body.get("expires_in_days"), None)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.db.session() as session:
            user = self._user(session, owner.user_id)
            row = ApiToken(user_id=user.id, name=name, token_hash=hash_token(token), expires_at=expires_at)
            session.add(row)
            session.flush()
            return self._token_dict(row, user) | {"token": token}

    def list_tokens(self, viewer: Principal) -> list[dict[str, Any]]:
        """The caller's own tokens; an admin sees everyone's. Revoked and expired ones are listed too."""
        with self.db.session() as session:
            query = select(ApiToken, User).join(User).order_by(ApiToken.id)
            if not viewer.can("admin"):
                query = query.where(ApiToken.user_id == viewer.user_id)
            return [self._token_dict(t, u) for t, u in session.execute(query)]

    def revoke_token(self, viewer: Principal, token_id: int) -> None:
        with self.db.session() as session:
            row = session.get(ApiToken, token_id)
            if row is None or (row.user_id != viewer.user_id and not viewer.can("admin")):
                raise NotFound(f"no token {token_id}", code="token_not_found")
            if row.revoked_at is None:
                row.revoked_at = utc_now()

    def token_principal(self, token: str) -> Principal | None:
        """Who a bearer token speaks for, or None when it is unknown, revoked or expired.

        On every API call: one prebuilt Core query, no ORM session and no transaction to commit
        (measured: 255 -> ~40 us), and a write only once a minute to keep ``last_used_at``.
        """
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        now = utc_now()
        with self.db.engine.connect() as conn:
            found = conn.execute(_TOKEN_LOOKUP, {"token_hash": hash_token(token)}).first()
        if found is None:
            return None
        token_id, expires_at, revoked_at, last_used_at, user_id, name, role = found
        if revoked_at is not None or (expires_at is not None and expires_at <= now):
            return None
        if last_used_at is None or now - last_used_at > LAST_USED_EVERY:
            with self.db.engine.begin() as conn:
                conn.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
        return Principal(name, role, "token", user_id=user_id, token_id=token_id)

    def still_valid(self, principals: list[Principal]) -> set[int]:
        """Indexes into ``principals`` whose token or login still stands (for open WebSockets)."""
        now = utc_now()
        token_ids = {p.token_id for p in principals if p.token_id is not None}
        user_ids = {p.user_id for p in principals if p.user_id is not None}
        share_ids = {p.share_id for p in principals if p.share_id is not None}
        with self.db.session() as session:
            live_tokens = set(session.scalars(select(ApiToken.id).where(
                ApiToken.id.in_(token_ids), ApiToken.revoked_at.is_(None),
                (ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > now),
            ))) if token_ids else set()
            users = {uid: version for uid, version in session.execute(
                select(User.id, User.session_version).where(User.id.in_(user_ids)))} if user_ids else {}
            live_shares = set(session.scalars(select(ShareLink.id).where(
                ShareLink.id.in_(share_ids), ShareLink.revoked_at.is_(None), ShareLink.expires_at > now,
            ))) if share_ids else set()
        valid = set()
        for index, p in enumerate(principals):
            if p.kind == "local":
                valid.add(index)
            elif p.kind == "share":
                if p.share_id in live_shares:
                    valid.add(index)
            elif p.user_id in users and (p.token_id is None or p.token_id in live_tokens):
                if p.session_version is None or users[p.user_id] == p.session_version:
                    valid.add(index)
        return valid

    @staticmethod
    def _token_dict(row: ApiToken, user: User) -> dict[str, Any]:
        now = utc_now()
        state = "revoked" if row.revoked_at else "expired" if row.expires_at and row.expires_at <= now else "active"
        return {
            "id": row.id, "name": row.name, "user": user.name, "user_id": user.id, "role": user.role,
            "created_at": iso_utc(row.created_at), "expires_at": iso_utc(row.expires_at) if row.expires_at else None,
            "last_used_at": iso_utc(row.last_used_at) if row.last_used_at else None,
            "revoked_at": iso_utc(row.revoked_at) if row.revoked_at else None, "state": state,
        }

    # ---- share links --------------------------------------------------------------------------
    def create_share(self, chart: str, actor: str, body: Any) -> tuple[dict[str, Any], str]:
        """A share row and the signed token for its URL."""
        body = check_fields(body if body is not None else {}, {"expires_in_days"})
        expires_at = _expiry(body.get("expires_in_days"), 30)
        with self.db.session() as session:
            row = ShareLink(chart=chart, created_by=actor, expires_at=expires_at)
            session.add(row)
            session.flush()
            return self._share_dict(row), self._share_signer.dumps([row.id, chart])

    def share_principal(self, token: str) -> Principal | None:
        """The read-only principal of a share link, or None when it is forged, revoked or expired."""
        try:
            share_id, chart = self._share_signer.loads(token)
        except (BadSignature, ValueError, TypeError):
            return None
        with self.db.session() as session:
            row = session.get(ShareLink, share_id) if isinstance(share_id, int) else None
            if row is None or row.chart != chart or row.revoked_at is not None or row.expires_at <= utc_now():
                return None
        return Principal(f"share:{share_id}", None, "share", share_id=share_id, chart=chart)

    def list_shares(self) -> list[dict[str, Any]]:
        with self.db.session() as session:
            return [self._share_dict(r) for r in session.scalars(select(ShareLink).order_by(ShareLink.id))]

    def revoke_share(self, share_id: int) -> None:
        with self.db.session() as session:
            row = session.get(ShareLink, share_id)
            if row is None:
                raise NotFound(f"no share link {share_id}", code="share_not_found")
            if row.revoked_at is None:
                row.revoked_at = utc_now()

    @staticmethod
    def _share_dict(row: ShareLink) -> dict[str, Any]:
        return {
            "id": row.id, "chart": row.chart, "created_by": row.created_by, "created_at": iso_utc(row.created_at),
            "expires_at": iso_utc(row.expires_at), "revoked_at": iso_utc(row.revoked_at) if row.revoked_at else None,
        }
