"""Database layer: models, engine and the named queries. Knows nothing of GraphQL."""
