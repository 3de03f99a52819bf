"""Delivering events to other software: a webhook (HTTP POST) and an MQTT broker, retried while they are down.

:class:`RetryingSender` is what both share: ``send(event)`` puts the event
in a bounded queue and returns at once (the frame loop never waits for the
network); a background thread delivers the events one by one, in order.
When a delivery fails (the receiver is down, refuses the connection, answers
5xx or times out) the thread waits and tries the same event again, the wait
doubling from ``initial_delay`` up to ``max_delay``, so no event is lost and
none overtakes another while the receiver is away for a while. Only when
more than ``queue_size`` events wait does the oldest go, with a warning
that says how many were dropped. :meth:`RetryingSender.close` delivers what
is left for at most ``close_timeout`` seconds and logs what it could not.

:class:`WebhookSink` POSTs each event as JSON (``urllib``); an HTTP 4xx
answer other than 408 and 429 means the receiver will never take that event,
so it is logged and skipped. :class:`MqttSink` publishes each event as JSON
to one topic with QoS 1 (``paho-mqtt``), and counts it delivered when the
broker acknowledges it (PUBACK). QoS 1 is *at least once*: an event whose
acknowledgement was lost when the broker went down is sent again, so a
consumer may see it twice (the ``time``, ``track_id`` and ``event`` fields
identify it).
"""
from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from typing import Optional

from tracker.checks import check_int, check_number

logger = logging.getLogger(__name__)

#: HTTP answers that mean "try again later" although they are 4xx.
RETRY_STATUSES = (408, 429)


class PermanentError(RuntimeError):
    """The receiver refused this event for good (HTTP 400, 404, ...): it is logged and skipped, not retried."""


def _payload(event: dict) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode("utf-8")


class RetryingSender:
    """A bounded queue of events and a thread that delivers them in order, retrying with back-off.

    Subclasses implement :meth:`deliver` (raise on failure) and may implement
    :meth:`disconnect`. ``delivered``, ``dropped`` and ``pending`` count the events.

    Parameters
    ----------
    queue_size : int
        Events kept while the receiver is down (>= 1); beyond it the oldest are dropped, with a warning.
    initial_delay : float
        Seconds before the first retry (> 0); doubled after each failure.
    max_delay : float
        Longest wait between retries, seconds (>= ``initial_delay``).
    close_timeout : float
        Seconds :meth:`close` goes on delivering what is queued (>= 0).
    """

    #: What the log lines call the receiver (subclasses name it).
    target = "event receiver"

    def __init__(self, *, queue_size: int = 10000, initial_delay: float = 0.5, max_delay: float = 10.0,
                 close_timeout: float = 10.0) -> None:
        self.queue_size = check_int("queue_size", queue_size, 1)
        self.initial_delay = check_number("initial_delay", initial_delay, 0, low_open=True)
        self.max_delay = check_number("max_delay", max_delay, self.initial_delay)
        self.close_timeout = check_number("close_timeout", close_timeout, 0)
        self.delivered = 0
        self.dropped = 0
        self._queue: deque = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._deadline: Optional[float] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def pending(self) -> int:
        """Events waiting to be delivered."""
        with self._cond:
            return len(self._queue)

    def start(self) -> None:
        """Start the delivery thread (subclasses call it at the end of their constructor)."""
        self._thread = threading.Thread(target=self._work, name=f"events:{self.target}", daemon=True)
        self._thread.start()

    def send(self, event: dict) -> None:
        """Queue ``event`` for delivery and return at once."""
        with self._cond:
            if self._closing:
                raise RuntimeError(f"{self.target}: send after close")
            if len(self._queue) >= self.queue_size:
                self._queue.popleft()
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 100 == 0:
                    logger.warning("%s is down and %d events wait: dropped the oldest (%d dropped so far; "
                                   "queue_size bounds the events kept)", self.target, self.queue_size, self.dropped)
            self._queue.append(_payload(event))
            self._cond.notify_all()

    def deliver(self, payload: bytes) -> None:  # pragma: no cover - abstract
        """Deliver one event's JSON; raise on failure (:class:`PermanentError`: never retry it)."""
        raise NotImplementedError

    def disconnect(self) -> None:
        """Release the connection (after the thread has stopped)."""

    def _next(self) -> Optional[bytes]:
        with self._cond:
            while not self._queue and not self._closing:
                self._cond.wait()
            return self._queue[0] if self._queue else None

    def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` (less when closing ends first); False when it is time to give up."""
        end = time.monotonic() + seconds
        with self._cond:
            while time.monotonic() < min(end, self._deadline or end):
                self._cond.wait(min(end, self._deadline or end) - time.monotonic())
            return self._deadline is None or time.monotonic() < self._deadline

    def _work(self) -> None:
        delay, failures = self.initial_delay, 0
        while True:
            payload = self._next()
            if payload is None:
                return
            try:
                self.deliver(payload)
            except PermanentError as exc:
                logger.error("%s refused an event, skipping it: %s", self.target, exc)
            except Exception as exc:  # noqa: BLE001 - every failure of the network is retried
                failures += 1
                if failures == 1:
                    logger.warning("%s unreachable (%s); keeping events and retrying", self.target, exc)
                if not self._wait(delay):
                    return
                delay = min(delay * 2, self.max_delay)
                continue
            else:
                self.delivered += 1
            if failures:
                logger.warning("%s reachable again after %d failed attempts", self.target, failures)
            delay, failures = self.initial_delay, 0
            with self._cond:
                if self._queue and self._queue[0] is payload:
                    self._queue.popleft()

    def close(self) -> None:
        """Deliver what is queued for at most ``close_timeout`` s, then stop (idempotent)."""
        if self._thread is None:
            return
        with self._cond:
            self._closing = True
            self._deadline = time.monotonic() + self.close_timeout
            self._cond.notify_all()
        self._thread.join(self.close_timeout + 5.0)
        self._thread = None
        left = self.pending
        if left:
            logger.error("%s: %d events not delivered within %g s of closing", self.target, left,
                         self.close_timeout)
        self.disconnect()


class WebhookSink(RetryingSender):
    """POST each event as JSON (``Content-Type: application/json``) to ``url``.

    Parameters
    ----------
    url : str
        ``http://`` or ``https://`` address of the receiver.
    timeout : float
        Seconds one request may take (> 0).
    **retry
        :class:`RetryingSender` keywords.
    """

    def __init__(self, url: str, *, timeout: float = 5.0, **retry) -> None:
        super().__init__(**retry)
        parts = urllib.parse.urlsplit(str(url))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook URL must be http://host[:port]/path or https://..., got {url!r}")
        self.url = str(url)
        self.timeout = check_number("timeout", timeout, 0, low_open=True)
        self.target = f"webhook {parts.scheme}://{parts.netloc}{parts.path}"
        self.start()

    def deliver(self, payload: bytes) -> None:
        request = urllib.request.Request(self.url, data=payload, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                answer.read()
        except urllib.error.HTTPError as exc:
            if 400 <= exc.code < 500 and exc.code not in RETRY_STATUSES:
                raise PermanentError(f"HTTP {exc.code} {exc.reason}") from None
            raise


def parse_mqtt_url(url: str):
    """``mqtt://[user:password@]host[:port]/topic`` -> (host, port, topic, user, password)."""
    parts = urllib.parse.urlsplit(str(url))
    topic = urllib.parse.unquote(parts.path.lstrip("/"))
    if parts.scheme != "mqtt" or not parts.hostname or not topic:
        raise ValueError(f"MQTT URL must be mqtt://host[:port]/topic (e.g. mqtt://localhost:1883/facetrack/events), "
                         f"got {url!r}")
    try:
        port = parts.port or 1883
    except ValueError:
        raise ValueError(f"MQTT URL has a bad port: {url!r}") from None
    return parts.hostname, port, topic, parts.username, parts.password


class MqttSink(RetryingSender):
    """Publish each event as JSON to one MQTT topic with QoS 1 (``paho-mqtt``); reconnects by itself.

    Parameters
    ----------
    url : str
        ``mqtt://[user:password@]host[:port]/topic`` (port 1883 by default).
    timeout : float
        Seconds to wait for the broker's acknowledgement of one event (> 0).
    client_id : str
        MQTT client id ("" lets the broker choose).
    **retry
        :class:`RetryingSender` keywords.
    """

    def __init__(self, url: str, *, timeout: float = 5.0, client_id: str = "", **retry) -> None:
        import paho.mqtt.client as mqtt

        super().__init__(**retry)
        host, port, self.topic, user, password = parse_mqtt_url(url)
        self.timeout = check_number("timeout", timeout, 0, low_open=True)
        self.target = f"MQTT broker {host}:{port} (topic {self.topic})"
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=str(client_id))
        if user:
            self._client.username_pw_set(urllib.parse.unquote(user), urllib.parse.unquote(password or ""))
        self._client.reconnect_delay_set(min_delay=1, max_delay=int(max(1, self.max_delay)))
        self._client.connect_async(host, port)
        self._client.loop_start()
        self.start()

    def deliver(self, payload: bytes) -> None:
        if not self._client.is_connected():
            raise ConnectionError("not connected")
        info = self._client.publish(self.topic, payload, qos=1)
        info.wait_for_publish(timeout=self.timeout)
        if not info.is_published():
            raise TimeoutError(f"no acknowledgement within {self.timeout:g} s")

    def disconnect(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
