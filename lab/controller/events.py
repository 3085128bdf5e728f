"""The controller's events and their fields, as plain data. Pure: no os-ken, no I/O.

The controller prints one JSON object per line on stdout; in results they are the events of a guest named
`controller`, so scenario checks name them (`controller: last restore.packets >= 1`). Scenario validation
reads this table to catch a misspelled event or field before anything runs; app.py emits only what is
declared here (a test checks the events of a real run against it).

Shape: EVENTS = {event: {"doc": one line, "modes": None, "fields": {field: [type, doc]}}} with type one of
int, float, bool, str; COMMON_FIELDS = {field: [type, doc]} are in every event. A field that does not apply
to an event (a drop rule has no kbps) is absent, never null.
"""

TYPES = {"int", "float", "bool", "str"}

COMMON_FIELDS = {
    "t": ["float", "CLOCK_MONOTONIC seconds when the controller printed the event"],
    "prog": ["str", "always controller"],
    "event": ["str", "the event's kind, a key of EVENTS"],
}

EVENTS = {
    "control": {
        "doc": "the control channel is listening: the controller is ready",
        "modes": None,
        "fields": {"path": ["str", "the channel's Unix socket, RUN_DIR/RUNID.ctl"]},
    },
    "switch": {
        "doc": "a switch connected and got its default rules (table 0 -> table 1, table-miss -> controller)",
        "modes": None,
        "fields": {"dpid": ["int", "the switch's datapath id (s1 -> 1)"]},
    },
    "rule": {
        "doc": "a drop or meter rule was installed on every switch",
        "modes": None,
        "fields": {
            "kind": ["str", "drop or meter"],
            "rule": ["int", "the rule's number in this run, from 1"],
            "src": ["str", "IPv4 source it matches (absent: any)"],
            "dst": ["str", "IPv4 destination it matches (absent: any)"],
            "flags": ["str", "TCP flags it matches exactly: syn, syn-ack, ack, rst, fin (absent: any packet)"],
            "seconds": ["int", "its lifetime, then the switch removes it (absent: until restore)"],
            "kbps": ["int", "the meter's rate in kbit/s (meter only)"],
            "meter": ["int", "the OpenFlow meter id (meter only)"],
        },
    },
    "restore": {
        "doc": "rules removed: once per restore request (no dpid), then once per rule and switch as it goes",
        "modes": None,
        "fields": {
            "reason": ["str", "asked (a restore request) or timeout (the rule's seconds ran out)"],
            "dpid": ["int", "the switch the rule left (absent on the request's own event)"],
            "rule": ["int", "the rule that left (absent on the request's own event)"],
            "packets": ["int", "packets the rule matched on that switch over its life (absent likewise)"],
        },
    },
    "port-stats": {
        "doc": "one switch port's counters, every stats interval (0.5 s)",
        "modes": None,
        "fields": {
            "dpid": ["int", "the switch"],
            "port": ["int", "the OpenFlow port number"],
            "rx_bytes": ["int", "bytes received by the switch on this port"],
            "tx_bytes": ["int", "bytes sent by the switch on this port"],
            "rx_packets": ["int", "packets received on this port"],
            "tx_packets": ["int", "packets sent on this port"],
            "rx_dropped": ["int", "received packets dropped"],
            "tx_dropped": ["int", "packets to send dropped"],
        },
    },
    "flow-stats": {
        "doc": "one policy rule's counters on one switch, every stats interval (0.5 s), while the rule exists",
        "modes": None,
        "fields": {
            "dpid": ["int", "the switch"],
            "rule": ["int", "the rule's number (as in its rule event)"],
            "packets": ["int", "packets the rule matched so far"],
            "bytes": ["int", "bytes the rule matched so far"],
        },
    },
}


def _has_type(value, kind):
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, {"bool": bool, "str": str}[kind])


def problems(event):
    """What in EVENT (a parsed line) is not declared above: a list of sentences, empty when it conforms."""
    kind = event.get("event")
    if kind not in EVENTS:
        return [f"unknown event {kind!r}"]
    declared = {**COMMON_FIELDS, **EVENTS[kind]["fields"]}
    found = [f"{kind}: missing {f}" for f in COMMON_FIELDS if f not in event]
    for field, value in event.items():
        if field not in declared:
            found.append(f"{kind}: undeclared field {field!r}")
        elif not _has_type(value, declared[field][0]):
            found.append(f"{kind}.{field}: {value!r} is not {declared[field][0]}")
    return found
