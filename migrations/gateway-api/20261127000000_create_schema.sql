-- The schema this migration runs in belongs to gateway-api alone (see adloop-service-kit::postgres).
-- Tables arrive with the features that need them; this first migration records the schema's creation.
CREATE TABLE service_schema_created (
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO service_schema_created DEFAULT VALUES;
