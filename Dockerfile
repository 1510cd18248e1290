# Query service / indexer image: onnxruntime serving only (no PyTorch). Models are mounted at /models.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MMSEARCH_STATE_DIR=/var/lib/mmsearch
WORKDIR /app
COPY pyproject.toml README.md ./
COPY mmsearch ./mmsearch
COPY onnx_models ./onnx_models
COPY indexer ./indexer
COPY mappings ./mappings
COPY query_service ./query_service
RUN pip install --no-cache-dir ".[cpu]" && useradd --system --create-home mmsearch && mkdir -p /var/lib/mmsearch \
    && chown mmsearch /var/lib/mmsearch
USER mmsearch
EXPOSE 8080
CMD ["mmsearch", "serve", "--host", "0.0.0.0", "--port", "8080"]
