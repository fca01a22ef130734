"""The recognition pipeline: plain Python on top of DeepFace, no Django, no Celery.

decode an image -> detect faces (on a reduced copy) -> align each face the way its
model was trained -> embed all faces of a frame in one model call -> match.
"""
