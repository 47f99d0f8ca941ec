"""Input files: declared schemas, vectorised validation, loading into the store and history."""
