"""Model training and serving helpers that run without the web app: no Flask, database or events."""
