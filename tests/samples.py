"""One valid payload per event type, used by the catalogue tests and the browser tests."""

from events.catalogue import EventType

STATS = {
    "host": "test-host",
    "cpu_percent": 12.5,
    "cpu_per_core": [10.0, 15.0],
    "load_1": 0.5,
    "load_5": 0.4,
    "load_15": 0.3,
    "mem_percent": 40.0,
    "mem_used": 4 * 2**30,
    "mem_total": 10 * 2**30,
    "swap_percent": 0.0,
    "disk_path": "/data",
    "disk_percent": 50.0,
    "disk_used": 50 * 2**30,
    "disk_free": 50 * 2**30,
    "disk_total": 100 * 2**30,
    "disk_read_bps": 1000.0,
    "disk_write_bps": 2000.0,
    "net_sent_bps": 300.0,
    "net_recv_bps": 400.0,
    "process_rss": 100 * 2**20,
    "interval_s": 1.0,
}

PIPELINE = {
    "id": 7,
    "name": "iris-rf",
    "dataset_id": 3,
    "target": "species",
    "model": "random_forest",
    "params": {"n_estimators": 50},
    "features": None,
    "created_at": "2026-11-26T10:00:00Z",
    "updated_at": "2026-11-26T10:00:00Z",
}

DATASET = {
    "id": 3,
    "name": "iris",
    "version": 1,
    "filename": "iris.csv",
    "size_bytes": 2048,
    "rows": 150,
    "columns": [{"name": "sepal_length", "dtype": "float64", "missing": 0}],
    "created_at": "2026-11-26T10:00:00Z",
    "updated_at": "2026-11-26T10:00:00Z",
}

SAMPLE_PAYLOADS = {
    EventType.TRAINING_PROGRESS: {"job_id": "j1", "step": 3, "total": 10, "fraction": 0.3, "metrics": {"loss": 0.5}},
    EventType.TRAINING_COMPLETE: {"job_id": "j1", "model_id": 1, "metrics": {"accuracy": 0.9}, "duration_s": 2.5},
    EventType.TRAINING_ERROR: {"job_id": "j2", "error": "the target has one class"},
    EventType.SYSTEM_STATS: STATS,
    EventType.HEALTH_CHANGE: {"component": "disk", "status": "degraded", "previous": "healthy", "message": "low", "overall": "degraded"},
    EventType.UPLOAD_PROGRESS: {"upload_id": "u1", "filename": "iris.csv", "stage": "receiving", "bytes_received": 10, "bytes_total": 100, "fraction": 0.1},
    EventType.UPLOAD_COMPLETE: {"upload_id": "u1", "dataset_id": 3, "filename": "iris.csv", "rows": 150, "columns": 5},
    EventType.UPLOAD_ERROR: {"upload_id": "u2", "filename": "bad.csv", "error": "the file is empty"},
    EventType.ACTIVITY_UPDATE: {"message": "Dataset iris uploaded", "category": "dataset", "level": "success"},
    EventType.MODEL_STATUS: {"model_id": 1, "pipeline_id": 7, "version": 1, "status": "ready", "previous": "training"},
    EventType.PIPELINE_CREATED: PIPELINE,
    EventType.PIPELINE_UPDATED: PIPELINE,
    EventType.PIPELINE_DELETED: {"id": 7, "name": "iris-rf"},
    EventType.DATASET_CREATED: DATASET,
    EventType.DATASET_UPDATED: dict(DATASET, version=2),
    EventType.PREDICTION_VOLUME: {"model_id": 1, "count": 5, "total": 50, "interval_s": 1.0, "latency_p50_ms": 1.2, "latency_p95_ms": 3.4},
    EventType.MODEL_DEPLOYED: {"model_id": 1, "pipeline_id": 7, "version": 1},
}
