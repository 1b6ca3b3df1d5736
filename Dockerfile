# Airflow 3.3.2 image with airflow-provider-mlops installed; used by every service in
# docker-compose.yaml (Airflow components and the MLflow tracking server).
FROM apache/airflow:3.3.2-python3.11

ARG AIRFLOW_VERSION=3.3.2

# Directories that named volumes mount over. A new named volume copies the ownership
# of the image directory, so create them here, owned by airflow and writable by group 0
# (the image's convention for running under an arbitrary UID).
USER root
RUN mkdir -p /mlflow/artifacts /opt/airflow/mlops-data \
    && chown -R airflow:0 /mlflow /opt/airflow/mlops-data \
    && chmod -R g+rwX /mlflow /opt/airflow/mlops-data
USER airflow

# Only what the wheel build needs (hatchling reads pyproject.toml, README.md and src/), and the
# versions CI tested: deploy/constraints.txt is uv.lock exported (`make constraints`).
COPY --chown=airflow:0 pyproject.toml uv.lock README.md deploy/constraints.txt /opt/airflow/provider/
COPY --chown=airflow:0 src /opt/airflow/provider/src

# The MLOps pages of the Airflow UI ([core] plugins_folder is /opt/airflow/plugins in this image):
# a deployment from the image alone (Helm) has them; docker-compose.yaml mounts ./plugins over it.
COPY --chown=airflow:0 plugins/mlops_plugin.py /opt/airflow/plugins/mlops_plugin.py

# Pin apache-airflow so pip can never up- or downgrade the image's Airflow; every other package
# at its locked version. pandas<3: evidently 0.7 does not import on pandas 3.
RUN pip install --no-cache-dir \
        --constraint /opt/airflow/provider/constraints.txt \
        "apache-airflow==${AIRFLOW_VERSION}" \
        "/opt/airflow/provider[all]" \
        "pandas<3"
