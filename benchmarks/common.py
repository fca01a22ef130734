"""What every section uses: the shared photos as camera frames, a small enrolled
gallery, percentiles and the machine's description. Imported after django.setup()."""

import json
import os
import platform
import sys
from pathlib import Path

import cv2
import numpy as np
import psutil
from django.core.files.base import ContentFile

from apps.gallery.models import FaceImage, Person
from apps.gallery.services import face_image_enroll
from apps.recognition.pipeline.images import decode_image, encode_jpeg

FACES_DIR = Path(os.environ.get("FACES_DIR", Path(__file__).resolve().parents[2] / "shared" / "datasets" / "faces"))


def percentile(values, q) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def camera_frames(count: int) -> list[bytes]:
    """The shared photos as a camera would send them: JPEG, long side 640 px."""
    files = sorted(FACES_DIR.glob("*.jpg"))
    if not files:
        sys.exit(f"No photos in {FACES_DIR} (set FACES_DIR).")
    frames = []
    for path in files:
        image = decode_image(path.read_bytes(), max_bytes=1 << 30, max_pixels=1 << 30)
        scale = 640 / max(image.shape[:2])
        small = cv2.resize(
            image, (round(image.shape[1] * scale), round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA
        )
        frames.append(encode_jpeg(small))
    return [frames[i % len(frames)] for i in range(count)]


def enroll_gallery(organization) -> None:
    """id01 and id03 enrolled in the service's own way, in this process."""
    for name, files in {"id01": ["img1.jpg", "img2.jpg"], "id03": ["img13.jpg", "img14.jpg"]}.items():
        person = Person.objects.create(organization=organization, name=name)
        for file in files:
            face_image = FaceImage(organization=organization, person=person)
            face_image.image.save(file, ContentFile((FACES_DIR / file).read_bytes()), save=False)
            face_image.save()
            face_image_enroll(face_image_id=face_image.pk)


def machine() -> dict:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def write_report(out: Path, stem: str, report: dict, text: str) -> None:
    """OUT/<stem>.json and OUT/<stem>.md, and the Markdown on the terminal."""
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2))
    (out / f"{stem}.md").write_text(text)
    print(text)
