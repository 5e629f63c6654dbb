"""The local stack: real Kafka and PostgreSQL and the four services, without Docker."""
