# The project's own image: creditgraph with the dask extra, for the compose `cluster` profile
# (Dask scheduler, workers and the `creditgraph` command all run this same image, so the
# client and the workers unpickle the same code).
FROM python:3.11.11-slim-bookworm

WORKDIR /app
COPY pyproject.toml README.md ./
COPY creditgraph ./creditgraph
COPY graph ./graph
COPY ingest ./ingest
COPY scoring ./scoring
COPY queries ./queries
RUN pip install --no-cache-dir '.[dask]' && useradd --create-home --uid 1000 creditgraph \
    && mkdir /data && chown creditgraph /data
USER creditgraph
ENV CREDITGRAPH_DATA_DIR=/data
ENTRYPOINT ["creditgraph"]
