# One image for all four services; the command picks the service (see docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
RUN pip install --no-cache-dir . && useradd --system --uid 10001 escalation
USER escalation
ENV ESCALATION_CONFIG_DIR=/config
ENTRYPOINT ["escalation"]
