"""The activity feed: every domain change as one plain sentence, stored and pushed as ``activity_update``."""

from __future__ import annotations

from typing import Any

from events.hub import Hub
from storage.db import Database
from storage.models import Activity


class ActivityFeed:
    def __init__(self, db: Database, hub: Hub):
        self.db = db
        self.hub = hub

    def record(
        self,
        message: str,
        *,
        category: str,
        level: str = "info",
        subject_type: str | None = None,
        subject_id: Any = None,
        source_type: str | None = None,
    ) -> dict[str, Any]:
        """Store the sentence, then publish it; the stored row is the feed's truth across restarts."""
        with self.db.session() as session:
            row = Activity(
                category=category,
                level=level,
                message=message,
                subject_type=subject_type,
                subject_id=None if subject_id is None else str(subject_id),
                actor=self.hub.actor(),
            )
            session.add(row)
            session.flush()
            item = row.to_dict()
        self.hub.announce(
            "activity_update",
            {
                "id": item["id"],
                "message": message,
                "category": category,
                "level": level,
                "subject_type": subject_type,
                "subject_id": item["subject_id"],
                "source_type": source_type,
            },
        )
        return item

    def list(self, limit: int = 50, before: int | None = None) -> list[dict[str, Any]]:
        """Newest first; ``before`` is the id of the last item of the previous page."""
        with self.db.session() as session:
            return [row.to_dict() for row in session.scalars(Activity.newest_first(limit, before))]
