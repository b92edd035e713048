"""Storage of the data plane: SQLAlchemy models, the database (SQLite or PostgreSQL) and migrations.

    db = Database(settings.database_url or default_url(settings.data_dir))
    db.upgrade()                      # at every start: Alembic migrations to head, see storage.schema
    with db.session() as session:     # committed at the end of the block, rolled back if it raises
        session.add(Dataset(name="customers"))
"""

from storage.db import Database, default_url, normalize_url
from storage.errors import SchemaError, StorageError, StorageUnavailable
from storage.models import (
    Activity,
    Alert,
    Base,
    ComponentHealth,
    Dataset,
    DatasetVersion,
    Model,
    Pipeline,
    TrainingJob,
)

__all__ = [
    "Activity",
    "Alert",
    "Base",
    "ComponentHealth",
    "Database",
    "Dataset",
    "DatasetVersion",
    "Model",
    "Pipeline",
    "SchemaError",
    "StorageError",
    "StorageUnavailable",
    "TrainingJob",
    "default_url",
    "normalize_url",
]
