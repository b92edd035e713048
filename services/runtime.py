"""Everything one dashboard process runs: the event log, the hub, live state and background services."""

from __future__ import annotations

import logging

from config import Settings
from events.hub import Hub
from events.log import open_event_log
from events.ws import SocketGuard
from services.accounts import Accounts
from services.activity import ActivityFeed
from services.datasets import Datasets
from services.health import HealthChecks, HealthMonitor
from services.live_state import LiveState
from services.pipelines import Pipelines
from services.registry import Registry
from services.serving import Serving
from services.secret_key import load_or_create
from services.system_stats import StatsSampler
from services.training import Training
from storage.db import Database, default_url

log = logging.getLogger(__name__)


class Runtime:
    def __init__(self, settings: Settings):
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.log = open_event_log(
            settings.event_log, settings.history, settings.history_max_age_s, max_bytes=int(settings.history_max_mb * 2**20)
        )
        self.hub = Hub(self.log, bootstrap_events=settings.history)
        self.state = LiveState(settings.chart_points)
        self.hub.listeners.append(self.state)
        self.db = Database(settings.database_url or default_url(settings.data_dir))
        self.db.upgrade()  # Alembic migrations to head: creates or upgrades the schema, keeps the data
        self.secret_key = load_or_create(settings.secret_key, settings.data_dir)
        self.accounts = Accounts(self.db, self.secret_key)
        self.sockets = SocketGuard(self.accounts.still_valid)
        self.activity = ActivityFeed(self.db, self.hub)
        self.datasets = Datasets(self.db, self.hub, self.activity, settings.data_dir, settings.max_upload_mb * 2**20)
        self.pipelines = Pipelines(self.db, self.hub, self.activity)
        api_base = f"{settings.url_prefix}api/v1"
        self.registry = Registry(self.db, self.hub, self.activity, settings.data_dir, api_base)
        self.serving = Serving(self.db, self.hub)
        self.registry.serving = self.serving
        self.hub.listeners.append(self.serving)
        self.training = Training(
            self.db, self.hub, self.activity, self.registry,
            workers=settings.training_workers, queue_limit=settings.training_queue, stall_s=settings.training_stall_s,
        )
        self.health = HealthChecks(
            self.hub, self.state, settings.data_dir, settings.stats_interval_s, settings.min_free_disk_mb, self.db
        )
        self.sampler = StatsSampler(self.hub, settings.data_dir, settings.stats_interval_s)
        self.monitor = HealthMonitor(self.health, interval_s=max(1.0, settings.stats_interval_s))
        self.started = False

    def start(self) -> Runtime:
        if self.started:
            return self
        self.hub.start()
        self.serving.start()
        self.training.start()
        if self.settings.background:
            self.sampler.start()
            self.monitor.start()
        self.started = True
        log.info("event log %s, epoch %s, seq %d", self.log.describe(), *self.hub.position())
        return self

    def stop(self) -> None:
        if not self.started:
            return
        self.sockets.stop()
        self.sampler.stop()
        self.monitor.stop()
        self.training.stop()
        self.serving.stop()
        self.hub.stop()
        self.db.close()
        self.log.close()
        self.started = False

    def publish(self, kind, data=None):
        return self.hub.publish(kind, data)
