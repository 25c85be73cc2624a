-- Runs once, on an empty data directory: a database for Langfuse (profile `observability`) beside kvchat's.
CREATE DATABASE langfuse;
