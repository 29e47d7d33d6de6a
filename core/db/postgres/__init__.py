"""The PostgreSQL back end of the store ports (psycopg 3, the `postgres` extra)."""
