"""Standalone clients of the Faces API. They import neither Django nor anything of the
service, so that they run on a camera box with only OpenCV, NumPy and requests."""
