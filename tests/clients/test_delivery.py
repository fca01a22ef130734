"""The camera client's buffer, sender and delivery loop, against `ApiPeer` (a scripted
stand-in for the API)."""

import threading
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import requests

from clients import camera_client as cc
from tests.clients.helpers import image, letterbox, photo_frame, quiet_console, recognized

# --- The buffer ----------------------------------------------------------------------


def frames_at(*seconds: float) -> list[cc.PendingFrame]:
    start = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    return [cc.PendingFrame(b"jpeg %g" % s, start + timedelta(seconds=s)) for s in seconds]


def drain(buffer: cc.FrameBuffer) -> list[cc.PendingFrame]:
    taken = []
    while (frame := buffer.pop_oldest()) is not None:
        taken.append(frame)
    return taken


def test_a_full_buffer_drops_its_oldest_frames_and_says_how_many():
    buffer = cc.FrameBuffer(capacity=3)
    frames = frames_at(0, 1, 2, 3, 4)

    dropped = [buffer.put(frame) for frame in frames]

    assert dropped == [None, None, None, frames[0], frames[1]]
    assert (len(buffer), buffer.dropped) == (3, 2)
    assert drain(buffer) == frames[2:]  # oldest first


def test_a_frame_put_back_stays_the_oldest_and_goes_first_when_the_buffer_overflows():
    buffer = cc.FrameBuffer(capacity=2)
    first, second, third = frames_at(0, 1, 2)
    buffer.put(first)
    taken = buffer.pop_oldest()  # in flight ...
    buffer.put(second)
    assert buffer.requeue(taken) is None  # ... and back: still first in line
    assert drain(buffer) == [first, second]

    buffer.put(second)
    buffer.put(third)
    assert buffer.requeue(first) is first  # full: the oldest is the one that goes
    assert buffer.dropped == 1
    assert drain(buffer) == [second, third]


def test_a_blocking_put_waits_for_room_instead_of_dropping():
    buffer = cc.FrameBuffer(capacity=1)
    first, second = frames_at(0, 1)
    buffer.put(first, block=True)
    writer = threading.Thread(target=buffer.put, args=(second,), kwargs={"block": True})
    writer.start()
    writer.join(0.5)
    assert writer.is_alive() and len(buffer) == 1  # waiting for room

    assert buffer.pop_oldest() is first
    writer.join(5)
    assert not writer.is_alive()
    assert drain(buffer) == [second] and buffer.dropped == 0


def test_a_blocked_put_gives_up_waiting_when_the_client_stops():
    buffer = cc.FrameBuffer(capacity=1)
    first, second = frames_at(0, 1)
    stop = threading.Event()
    buffer.put(first, block=True, stop=stop)
    writer = threading.Thread(target=buffer.put, args=(second,), kwargs={"block": True, "stop": stop})
    writer.start()
    stop.set()
    writer.join(5)
    assert not writer.is_alive()
    assert drain(buffer) == [first, second]  # kept for the final flush, not lost


def test_frames_count_as_buffered_once_while_the_api_is_unreachable():
    buffer = cc.FrameBuffer(capacity=10)
    early, during, after = frames_at(0, 1, 2)
    buffer.put(early)
    buffer.hold(True)  # the API went away: what waits now is buffered
    buffer.put(during)
    buffer.hold(True)
    buffer.hold(False)
    buffer.put(after)
    assert buffer.buffered == 2
    assert [f.buffered for f in drain(buffer)] == [True, True, False]


def test_the_sender_posts_the_jpeg_with_its_capture_time_camera_and_key(peer):
    captured_at = datetime(2026, 11, 22, 10, 0, 1, 250000, tzinfo=UTC)
    frame = photo_frame("img4.jpg", captured_at)
    sender = cc.Sender(peer.url + "/", "secret-key", camera=7, wait=5)

    outcome = sender.send(frame)

    assert isinstance(outcome, cc.Delivered) and outcome.body["status"] == "done"
    [request] = peer.requests
    assert request["path"] == "/api/v1/frames/" and request["query"] == {"wait": ["5"]}
    assert request["headers"]["Authorization"] == "Api-Key secret-key"
    assert request["headers"]["Idempotency-Key"] == frame.key
    fields = request["fields"]
    assert datetime.fromisoformat(fields["captured_at"]) == captured_at
    assert fields["camera"] == "7"
    sent = cv2.imdecode(np.frombuffer(fields["image"], np.uint8), cv2.IMREAD_COLOR)
    assert sent.shape == (480, 640, 3)
    assert cc.MotionGate.signature(sent).astype(int).mean() > 10  # the photo, not a blank frame
    assert cv2.absdiff(cc.MotionGate.signature(sent), cc.MotionGate.signature(letterbox(image("img4.jpg")))).mean() < 1


def test_results_are_printed_one_line_per_frame_with_faces():
    frame = cc.PendingFrame(b"", datetime(2026, 11, 22, 10, 0, 1, tzinfo=UTC))
    when = "2026-11-22T10:00:01.000+00:00"
    assert cc.describe(frame, recognized(4, "x")) == ("out", f"{when} id01 (0.97), unknown")
    assert cc.describe(frame, {"id": 5, "status": "done", "faces": []}) is None
    queued = cc.describe(frame, {"id": 6, "status": "queued", "url": "http://api/api/v1/frames/6/"})
    assert queued == ("out", f"{when} accepted as frame 6 (queued); result at http://api/api/v1/frames/6/")
    failed = {"id": 7, "status": "failed", "error": {"code": "image_invalid", "message": "truncated"}}
    assert cc.describe(frame, failed) == ("err", f"{when} frame 7 failed: image_invalid: truncated")


def test_frames_wait_while_the_api_is_unreachable_and_go_out_in_order_when_it_returns(peer):
    buffer, console = cc.FrameBuffer(capacity=10), quiet_console()
    delivery = cc.Delivery(buffer, cc.Sender(peer.url, "k", wait=5), console)
    start = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    frames = [photo_frame(name, start + timedelta(seconds=i)) for i, name in enumerate(["img4.jpg", "img20.jpg"])]
    for frame in frames:
        buffer.put(frame)

    peer.down = True
    assert delivery.step() == 1.0  # 503: keep it, wait 1 s
    peer.stop()
    assert delivery.step() == 2.0  # nobody listens: connection refused, wait longer
    late = photo_frame("img13.jpg", start + timedelta(seconds=2))
    buffer.put(late)  # captured during the outage
    assert (len(buffer), delivery.sent, delivery.unsent) == (3, 0, 3)

    peer.down = False
    peer.start()
    assert [delivery.step() for _ in range(4)] == [0.0, 0.0, 0.0, None]  # all three, then nothing left

    assert [r["headers"]["Idempotency-Key"] for r in peer.delivered()] == [f.key for f in [*frames, late]]
    assert [datetime.fromisoformat(r["fields"]["captured_at"]) for r in peer.delivered()] == [
        start + timedelta(seconds=i) for i in range(3)
    ]
    assert peer.requests[0]["headers"]["Idempotency-Key"] == frames[0].key  # the 503 was a try of the same frame
    assert (delivery.sent, buffer.buffered, buffer.dropped) == (3, 3, 0)
    notes = console.err.getvalue()
    assert "API unreachable (503 unavailable: down)" in notes
    assert "API still unreachable (ConnectionError: [Errno 111] Connection refused)" in notes
    assert "API answers again; sending 2 buffered frames" in notes
    lines = console.out.getvalue().splitlines()
    assert lines == [f"{cc.stamp(f.captured_at)} id01 (0.97), unknown" for f in [*frames, late]]

    buffer.put(photo_frame("img14.jpg", start + timedelta(seconds=3)))
    peer.down = True
    assert delivery.step() == 1.0  # the next outage starts again from a short wait


def test_429_is_retried_after_retry_after_and_a_refused_frame_is_not_retried(peer):
    buffer, console = cc.FrameBuffer(capacity=10), quiet_console()
    delivery = cc.Delivery(buffer, cc.Sender(peer.url, "k", wait=0), console)
    busy, bad, good = frames_at(0, 1, 2)
    bad.jpeg = b"not a jpeg"
    busy.jpeg = good.jpeg = photo_frame("img4.jpg", busy.captured_at).jpeg
    for frame in (busy, bad, good):
        buffer.put(frame)
    throttled = {"error": {"code": "throttled", "message": "slow down"}}
    invalid = {"error": {"code": "image_invalid", "message": "not an image"}}
    queued = {"id": 9, "status": "queued", "url": "http://api/api/v1/frames/9/"}
    peer.script.extend(
        [(429, throttled, {"Retry-After": "7"}), (202, queued, {}), (400, invalid, {}), (200, queued, {})]
    )

    assert delivery.step() == 7.0  # Retry-After honoured; the frame keeps its place
    assert buffer.pop_oldest() is busy and buffer.requeue(busy) is None
    assert [delivery.step() for _ in range(3)] == [0.0, 0.0, 0.0]

    keys = [r["headers"]["Idempotency-Key"] for r in peer.requests]
    assert keys == [busy.key, busy.key, bad.key, good.key]  # the refused frame was tried once
    assert (delivery.sent, delivery.rejected, delivery.unsent) == (2, 1, 0)
    assert "refused: 400 image_invalid: not an image" in console.err.getvalue()
    assert "accepted as frame 9 (queued)" in console.out.getvalue()


def test_a_refused_api_key_stops_the_client(peer):
    buffer, console = cc.FrameBuffer(capacity=10), quiet_console()
    stopped = threading.Event()
    delivery = cc.Delivery(buffer, cc.Sender(peer.url, "wrong", wait=0), console, on_fatal=stopped.set)
    buffer.put(photo_frame("img4.jpg", datetime.now(UTC)))
    peer.script.append((401, {"error": {"code": "authentication_failed", "message": "Invalid API key."}}, {}))

    delivery.start()
    assert stopped.wait(10)
    assert delivery.fatal == "401 authentication_failed: Invalid API key."
    assert not delivery.close(1) and delivery.unsent == 1
    assert len(peer.requests) == 1  # not hammered with the same bad key


def test_retry_after_as_an_http_date():
    later = datetime.now(UTC) + timedelta(seconds=30)
    response = requests.Response()
    response.headers["Retry-After"] = later.strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 25 <= cc.retry_after(response) <= 31
