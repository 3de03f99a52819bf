"""Event sinks against real receivers: a local HTTP server that goes down and comes back, and a real
mosquitto broker (started here on 127.0.0.1) restarted mid-run. No event may be lost or reordered."""
from __future__ import annotations

import getpass
import json
import logging
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.event_sinks import MqttSink, RetryingSender, WebhookSink, parse_mqtt_url
from test_demo import wait_for

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if shutil.os.path.exists("/usr/sbin/mosquitto")
                                          else None)
FAST = dict(initial_delay=0.05, max_delay=0.2, close_timeout=20.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout=30.0, what="condition"):
    wait_for(condition, timeout, what)


class Receiver:
    """A real HTTP server on 127.0.0.1 that keeps the JSON bodies POSTed to it; ``stop``/``start`` it."""

    def __init__(self, refuse=()):
        self.port, self.bodies, self.refuse, self._server = free_port(), [], set(refuse), None

    def start(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                refused = body["seq"] in receiver.refuse
                if not refused:
                    receiver.bodies.append(body)
                self.send_response(400 if refused else 204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    @property
    def seqs(self):
        return [b["seq"] for b in self.bodies]


def test_a_webhook_down_for_part_of_the_run_gets_every_event_in_order():
    server = Receiver().start()
    sink = WebhookSink(f"http://127.0.0.1:{server.port}/hook", **FAST)
    try:
        for i in range(20):
            sink.send({"seq": i})
        wait_until(lambda: len(server.bodies) == 20, what="the first events")
        server.stop()                                   # down: connection refused
        for i in range(20, 60):
            sink.send({"seq": i})
        time.sleep(0.8)                                 # several failed retries
        assert sink.pending > 0 and len(server.bodies) == 20
        server.start()                                  # back on the same port
        for i in range(60, 80):
            sink.send({"seq": i})
    finally:
        sink.close()
    assert server.seqs == list(range(80))
    assert sink.delivered == 80 and sink.dropped == 0 and sink.pending == 0
    server.stop()


def test_the_queue_bound_drops_the_oldest_with_a_clear_log_line(caplog):
    server = Receiver()                                 # not started: down from the start
    sink = WebhookSink(f"http://127.0.0.1:{server.port}/hook", queue_size=5, **FAST)
    with caplog.at_level(logging.WARNING, logger="pipeline.event_sinks"):
        for i in range(8):
            sink.send({"seq": i})
        wait_until(lambda: "unreachable" in caplog.text, what="a failed delivery")
        server.start()
        sink.close()
    server.stop()
    assert sink.dropped == 3 and "dropped the oldest" in caplog.text and "unreachable" in caplog.text
    assert server.seqs[-5:] == [3, 4, 5, 6, 7] and set(server.seqs) <= set(range(8))


def test_an_event_the_webhook_refuses_for_good_is_skipped_not_retried_forever(caplog):
    server = Receiver(refuse={2}).start()
    sink = WebhookSink(f"http://127.0.0.1:{server.port}/hook", **FAST)
    with caplog.at_level(logging.ERROR, logger="pipeline.event_sinks"):
        for i in range(5):
            sink.send({"seq": i})
        sink.close()
    server.stop()
    assert server.seqs == [0, 1, 3, 4] and "HTTP 400" in caplog.text


def test_close_gives_up_after_its_timeout_and_says_how_many_were_not_delivered(caplog):
    port = free_port()
    sink = WebhookSink(f"http://127.0.0.1:{port}/hook", initial_delay=0.05, max_delay=0.1, close_timeout=0.3)
    for i in range(3):
        sink.send({"seq": i})
    start = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="pipeline.event_sinks"):
        sink.close()
    assert time.monotonic() - start < 3.0
    assert "3 events not delivered within 0.3 s" in caplog.text
    with pytest.raises(RuntimeError, match="after close"):
        sink.send({"seq": 9})


@pytest.mark.parametrize("make, message", [
    (lambda: WebhookSink("ftp://host/x"), "webhook URL"),
    (lambda: MqttSink("mqtt://host"), "MQTT URL"),
    (lambda: MqttSink("http://host:1883/t"), "MQTT URL"),
    (lambda: RetryingSender(queue_size=0), "queue_size"),
    (lambda: RetryingSender(initial_delay=2.0, max_delay=1.0), "max_delay"),
])
def test_bad_settings_are_refused_clearly(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_mqtt_urls():
    assert parse_mqtt_url("mqtt://u:p%40ss@broker:1884/home/faces") == ("broker", 1884, "home/faces", "u", "p%40ss")
    assert parse_mqtt_url("mqtt://localhost/facetrack/events")[:3] == ("localhost", 1883, "facetrack/events")


class Broker:
    """mosquitto on 127.0.0.1:``port`` with a temp config and persistence (it keeps sessions over a restart)."""

    def __init__(self, folder):
        self.port, self.folder, self.proc = free_port(), folder, None
        (folder / "data").mkdir()
        self.config = folder / "mosquitto.conf"
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                               f"persistence_location {folder / 'data'}/\nuser {getpass.getuser()}\n")

    def start(self):
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)

        def listening():
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0
        wait_until(listening, 10, "mosquitto to listen")
        return self

    def stop(self):
        self.proc.terminate()                          # SIGTERM: it saves its persistence file
        self.proc.wait(timeout=10)


@pytest.fixture
def broker(tmp_path):
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (Debian: apt-get install mosquitto)")
    b = Broker(tmp_path).start()
    yield b
    if b.proc.poll() is None:
        b.proc.kill()
        b.proc.wait()


def subscriber(port, topic, received):
    """A paho client with a persistent session (QoS 1), so messages wait for it over a broker restart."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="facetrack-test-sub", clean_session=False)
    client.on_connect = lambda c, userdata, flags, rc, props: c.subscribe(topic, qos=1)
    client.on_message = lambda c, userdata, msg: received.append(json.loads(msg.payload))
    client.reconnect_delay_set(min_delay=1, max_delay=1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def test_mqtt_events_survive_a_broker_restart_mid_run(broker):
    received = []
    sub = subscriber(broker.port, "facetrack/events", received)
    wait_until(sub.is_connected, 10, "the subscriber")
    time.sleep(0.3)                                                   # its subscription is in place
    sink = MqttSink(f"mqtt://127.0.0.1:{broker.port}/facetrack/events", client_id="facetrack-test-pub", **FAST)
    try:
        for i in range(30):
            sink.send({"seq": i})
        wait_until(lambda: len(received) >= 30, 20, "the first events")
        broker.stop()
        for i in range(30, 60):
            sink.send({"seq": i})                                     # the broker is down: kept and retried
        time.sleep(1.0)
        assert sink.pending > 0
        broker.start()
        for i in range(60, 90):
            sink.send({"seq": i})
    finally:
        sink.close()
    wait_until(lambda: len({e["seq"] for e in received}) == 90, 30, "every event at the subscriber")
    sub.disconnect()
    sub.loop_stop()
    first_seen = list(dict.fromkeys(e["seq"] for e in received))     # QoS 1 may repeat one; none is lost
    assert first_seen == list(range(90))
    assert sink.delivered == 90 and sink.dropped == 0 and sink.pending == 0


def test_the_command_line_flags_build_the_event_writer_with_its_sinks(tmp_path):
    from facetrack.config import load_config
    from facetrack.demo_cli import build_parser
    from facetrack.outputs import apply_output_arguments, build_event_writer
    from pipeline.overlay import Overlay

    server = Receiver().start()
    args = build_parser().parse_args(["--webhook", f"http://127.0.0.1:{server.port}/h", "--no-snapshots",
                                      "--burn-fps", "--events", str(tmp_path / "e.jsonl")])
    config = apply_output_arguments(args, load_config(None))
    assert Overlay(**config["overlay"]).burn_fps is True
    writer = build_event_writer(args.events, config, source="clip.mp4")
    assert writer._keeper is None and [type(s).__name__ for s in writer.sinks] == ["WebhookSink"]
    writer._emit({"seq": 0})
    writer.close()
    server.stop()
    assert server.seqs == [0] and json.loads((tmp_path / "e.jsonl").read_text()) == {"seq": 0}

    defaults = apply_output_arguments(build_parser().parse_args([]), load_config(None))
    assert build_event_writer(None, defaults) is None                 # no file, no sink: no writer
    assert Overlay(**defaults["overlay"]).burn_fps is False
    with pytest.raises(ValueError, match="MQTT URL"):
        build_event_writer(None, apply_output_arguments(build_parser().parse_args(["--mqtt", "tcp://x"]),
                                                        load_config(None)))
