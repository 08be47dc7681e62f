FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY cvm cvm
COPY customers customers
COPY services services
COPY valuation valuation
RUN pip install --no-cache-dir .
COPY . .
RUN useradd --create-home cvm && chown -R cvm /app
USER cvm
EXPOSE 8000
