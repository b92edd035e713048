"""Errors the storage layer raises on purpose, so callers can map them once at the edge."""


class StorageError(RuntimeError):
    """Base of the storage layer's own errors."""


class StorageUnavailable(StorageError):
    """The database cannot be reached right now; callers retry or degrade."""


class SchemaError(StorageError):
    """The database schema cannot be brought to what this code expects."""
