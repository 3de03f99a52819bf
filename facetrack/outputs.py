"""The command line's outputs besides the video: events with snapshots, MQTT, webhooks, the FPS readout.

:func:`add_output_arguments` adds ``--mqtt``, ``--webhook``,
``--snapshots/--no-snapshots`` and ``--burn-fps`` to a parser;
:func:`apply_output_arguments` folds them into the configuration (a flag
given wins over the ``events`` / ``overlay`` sections);
:func:`build_event_writer` builds the :class:`pipeline.events.EventWriter`
and its event sinks (:mod:`pipeline.event_sinks`) from the ``events``
section. The flags' defaults are the configuration's, so each default has
one home: the constructor keyword that ``configs/default.yaml`` repeats.
"""
from __future__ import annotations

import argparse
from typing import List, Mapping, Optional

from facetrack.build import section


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the event and FPS-readout flags to ``parser`` (``--events`` stays the caller's)."""
    group = parser.add_argument_group("events and overlay")
    group.add_argument("--mqtt", metavar="URL",
                       help="publish every event as JSON to an MQTT broker with QoS 1: mqtt://host[:port]/topic "
                            "(kept and retried while the broker is down) [default: events.mqtt of the config]")
    group.add_argument("--webhook", metavar="URL",
                       help="POST every event as JSON to an http(s):// URL (kept and retried while it is down) "
                            "[default: events.webhook of the config]")
    group.add_argument("--snapshots", action=argparse.BooleanOptionalAction, default=None,
                       help="save the best face crop of each appearance as a JPEG beside the --events file "
                            "[default: events.snapshots of the config, on]")
    group.add_argument("--burn-fps", action="store_true", default=None,
                       help="draw the FPS readout into the saved video and re-streams too, not only the window")


def apply_output_arguments(args: argparse.Namespace, config: dict) -> dict:
    """Fold the flags of :func:`add_output_arguments` into ``config`` (in place; also returned)."""
    events = config.setdefault("events", {})
    for key in ("mqtt", "webhook", "snapshots"):
        if getattr(args, key) is not None:
            events[key] = getattr(args, key)
    if args.burn_fps:
        config.setdefault("overlay", {})["burn_fps"] = True
    return config


def build_event_sinks(*, mqtt: Optional[str] = None, webhook: Optional[str] = None, **retry) -> List:
    """The event sinks named by an MQTT URL and a webhook URL (none for None).

    Parameters
    ----------
    mqtt : str or None
        ``mqtt://host[:port]/topic`` for :class:`pipeline.event_sinks.MqttSink`.
    webhook : str or None
        ``http(s)://`` URL for :class:`pipeline.event_sinks.WebhookSink`.
    **retry
        :class:`pipeline.event_sinks.RetryingSender` keywords for both.
    """
    from pipeline.event_sinks import MqttSink, WebhookSink
    from pipeline.events import close_all

    sinks: List = []
    try:
        if webhook:
            sinks.append(WebhookSink(webhook, **retry))
        if mqtt:
            sinks.append(MqttSink(mqtt, **retry))
    except BaseException:
        close_all(sinks)
        raise
    return sinks


def build_event_writer(path, config: Mapping, *, source: str = ""):
    """The :class:`pipeline.events.EventWriter` of ``--events`` (``path``, may be None) and the ``events``
    section, with its event sinks; None when there is neither a file nor a sink."""
    from facetrack.config import keywords_for
    from pipeline.event_sinks import RetryingSender
    from pipeline.events import EventWriter, close_all

    kw = section(config, "events")
    sinks = build_event_sinks(mqtt=kw.get("mqtt"), webhook=kw.get("webhook"), **keywords_for(RetryingSender, kw))
    if path is None and not sinks:
        return None
    try:
        return EventWriter(path, source=source, sinks=sinks, **keywords_for(EventWriter, kw))
    except BaseException:
        close_all(sinks)
        raise
