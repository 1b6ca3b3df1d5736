-- Mounted into /docker-entrypoint-initdb.d: the postgres image runs it once, when the
-- data volume is empty, with psql as POSTGRES_USER (a superuser). Each statement is
-- guarded so the script also works if POSTGRES_USER/POSTGRES_DB are changed.
-- (CREATE DATABASE cannot run in a DO block, hence SELECT ... \gexec.) The image
-- initialises the cluster as UTF-8, which Airflow requires.

-- Airflow metadata DB (normally already made from POSTGRES_USER/POSTGRES_DB).
SELECT 'CREATE ROLE airflow LOGIN PASSWORD ''airflow'''
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'airflow')\gexec
SELECT 'CREATE DATABASE airflow OWNER airflow'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'airflow')\gexec

-- MLflow tracking/registry store, with its own role.
SELECT 'CREATE ROLE mlflow LOGIN PASSWORD ''mlflow'''
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mlflow')\gexec
SELECT 'CREATE DATABASE mlflow OWNER mlflow'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'mlflow')\gexec

-- Provider data (postgres_default connection), owned by the airflow role.
SELECT 'CREATE DATABASE mlops OWNER airflow'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'mlops')\gexec

-- PG15+ no longer grants CREATE on schema public to everyone; database owners keep it
-- (public is owned by pg_database_owner), so owning the database is enough.
