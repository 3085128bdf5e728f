"""The os-ken app: L2 learning in table 1, the runner's policy in table 0, statistics on stdout.

Tables: table 0 holds policy rules (drop, meter) installed on request, and a default rule that goes to
table 1; table 1 is a learning switch (table-miss -> controller). Rules carry a cookie so that `restore`
removes exactly them; `seconds` becomes the rules' hard_timeout, so OVS restores forwarding by itself.

Requests arrive on the control channel (channel.py: a Unix socket only the owning run may use), already
checked against protocol.py's models, so the handlers here only act. Events (stdout, JSON Lines) are
declared with their fields in events.py.
"""
import json
import sys
import threading
import time

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib.packet import ethernet, packet
from os_ken.ofproto import ofproto_v1_3

from . import protocol

POLICY_TABLE, L2_TABLE = 0, 1
RULE_COOKIE = 0x7C1AB000          # cookies of policy rules: RULE_COOKIE + rule number
COOKIE_MASK = 0xFFFFF000
# Set by __main__ before os-ken instantiates the app (os-ken builds apps itself, without arguments of ours).
SETTINGS = {"channel": None, "stats_interval": 0.5}


def emit(event, **fields):
    """Print one event; a field that does not apply (None) is left out, never printed as null."""
    body = {"t": round(time.monotonic(), 6), "prog": "controller", "event": event,
            **{k: v for k, v in fields.items() if v is not None}}
    sys.stdout.write(json.dumps(body) + "\n")
    sys.stdout.flush()


class LabController(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.datapaths = {}
        self.mac_to_port = {}
        self.rules = 0
        self.meters = 0
        self.lock = threading.Lock()
        self.channel = SETTINGS["channel"]
        if self.channel is None:
            raise RuntimeError("start the controller with `python -m lab.controller` (it opens the control channel)")
        self.channel.handler = self.handle
        threading.Thread(target=self.channel.serve_forever, daemon=True).start()
        threading.Thread(target=self._poll_stats, daemon=True).start()
        emit("control", path=str(self.channel.path))

    # -- OpenFlow ---------------------------------------------------------------------------------
    def _flow(self, dp, table, priority, match, instructions, cookie=0, hard_timeout=0):
        p = dp.ofproto_parser
        dp.send_msg(p.OFPFlowMod(datapath=dp, table_id=table, priority=priority, match=match, cookie=cookie,
                                 hard_timeout=hard_timeout, instructions=instructions,
                                 flags=dp.ofproto.OFPFF_SEND_FLOW_REM))

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features(self, ev):
        dp = ev.msg.datapath
        p, o = dp.ofproto_parser, dp.ofproto
        self._flow(dp, POLICY_TABLE, 0, p.OFPMatch(), [p.OFPInstructionGotoTable(L2_TABLE)])
        self._flow(dp, L2_TABLE, 0, p.OFPMatch(),
                   [p.OFPInstructionActions(o.OFPIT_APPLY_ACTIONS, [p.OFPActionOutput(o.OFPP_CONTROLLER, o.OFPCML_NO_BUFFER)])])
        with self.lock:
            self.datapaths[dp.id] = dp
        emit("switch", dpid=dp.id)

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in(self, ev):
        msg = ev.msg
        dp = msg.datapath
        p, o = dp.ofproto_parser, dp.ofproto
        in_port = msg.match["in_port"]
        eth = packet.Packet(msg.data).get_protocols(ethernet.ethernet)[0]
        table = self.mac_to_port.setdefault(dp.id, {})
        table[eth.src] = in_port
        out = table.get(eth.dst, o.OFPP_FLOOD)
        actions = [p.OFPActionOutput(out)]
        if out != o.OFPP_FLOOD:
            self._flow(dp, L2_TABLE, 1, p.OFPMatch(in_port=in_port, eth_dst=eth.dst),
                       [p.OFPInstructionActions(o.OFPIT_APPLY_ACTIONS, actions)])
        data = msg.data if msg.buffer_id == o.OFP_NO_BUFFER else None
        dp.send_msg(p.OFPPacketOut(datapath=dp, buffer_id=msg.buffer_id, in_port=in_port, actions=actions, data=data))

    @set_ev_cls(ofp_event.EventOFPPortStatsReply, MAIN_DISPATCHER)
    def port_stats(self, ev):
        for s in ev.msg.body:
            if s.port_no < 0xFFFFFF00:
                emit("port-stats", dpid=ev.msg.datapath.id, port=s.port_no, rx_bytes=s.rx_bytes, tx_bytes=s.tx_bytes,
                     rx_packets=s.rx_packets, tx_packets=s.tx_packets, rx_dropped=s.rx_dropped, tx_dropped=s.tx_dropped)

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def flow_stats(self, ev):
        for s in ev.msg.body:
            if s.cookie & COOKIE_MASK == RULE_COOKIE:
                emit("flow-stats", dpid=ev.msg.datapath.id, rule=s.cookie - RULE_COOKIE,
                     packets=s.packet_count, bytes=s.byte_count)

    @set_ev_cls(ofp_event.EventOFPFlowRemoved, MAIN_DISPATCHER)
    def flow_removed(self, ev):
        """A policy rule left a switch: its hard_timeout ran out, or a restore request deleted it."""
        msg, o = ev.msg, ev.msg.datapath.ofproto
        if msg.cookie & COOKIE_MASK == RULE_COOKIE:
            timeout = msg.reason in (o.OFPRR_HARD_TIMEOUT, o.OFPRR_IDLE_TIMEOUT)
            emit("restore", dpid=msg.datapath.id, rule=msg.cookie - RULE_COOKIE,
                 reason="timeout" if timeout else "asked", packets=msg.packet_count)

    def _poll_stats(self):
        while True:
            time.sleep(SETTINGS["stats_interval"])
            with self.lock:
                dps = list(self.datapaths.values())
            for dp in dps:
                p = dp.ofproto_parser
                dp.send_msg(p.OFPPortStatsRequest(dp, 0, dp.ofproto.OFPP_ANY))
                dp.send_msg(p.OFPFlowStatsRequest(dp, table_id=POLICY_TABLE))

    # -- policy (requests are protocol models, already checked) -------------------------------------
    def _match(self, p, req):
        fields = {"eth_type": 0x0800}
        if req.src:
            fields["ipv4_src"] = req.src
        if req.dst:
            fields["ipv4_dst"] = req.dst
        if req.flags:
            fields.update(ip_proto=6, tcp_flags=protocol.TCP_FLAGS[req.flags])
        return p.OFPMatch(**fields)

    def drop(self, req):
        with self.lock:
            self.rules += 1
            rule = self.rules
            for dp in list(self.datapaths.values()):
                p = dp.ofproto_parser
                self._flow(dp, POLICY_TABLE, 100, self._match(p, req), [], cookie=RULE_COOKIE + rule,
                           hard_timeout=req.seconds or 0)
        emit("rule", rule=rule, kind="drop", src=req.src, dst=req.dst, flags=req.flags, seconds=req.seconds)
        return {"rule": rule}

    def meter(self, req):
        with self.lock:
            self.rules += 1
            self.meters += 1
            rule, meter = self.rules, self.meters
            for dp in list(self.datapaths.values()):
                p, o = dp.ofproto_parser, dp.ofproto
                dp.send_msg(p.OFPMeterMod(dp, command=o.OFPMC_ADD, flags=o.OFPMF_KBPS, meter_id=meter,
                                          bands=[p.OFPMeterBandDrop(rate=req.kbps, burst_size=max(64, req.kbps // 50))]))
                self._flow(dp, POLICY_TABLE, 90, self._match(p, req),
                           [p.OFPInstructionMeter(meter), p.OFPInstructionGotoTable(L2_TABLE)],
                           cookie=RULE_COOKIE + rule, hard_timeout=req.seconds or 0)
        emit("rule", rule=rule, kind="meter", kbps=req.kbps, meter=meter, src=req.src, dst=req.dst,
             flags=req.flags, seconds=req.seconds)
        return {"rule": rule, "meter": meter}

    def restore(self, req):
        with self.lock:
            for dp in list(self.datapaths.values()):
                p, o = dp.ofproto_parser, dp.ofproto
                dp.send_msg(p.OFPFlowMod(datapath=dp, table_id=POLICY_TABLE, command=o.OFPFC_DELETE,
                                         cookie=RULE_COOKIE, cookie_mask=COOKIE_MASK, out_port=o.OFPP_ANY,
                                         out_group=o.OFPG_ANY))
                for meter_id in range(1, self.meters + 1):
                    dp.send_msg(p.OFPMeterMod(dp, command=o.OFPMC_DELETE, meter_id=meter_id))
        emit("restore", reason="asked")
        return {}

    def switches(self, req):
        with self.lock:
            return {"switches": sorted(self.datapaths)}

    def handle(self, req):
        """Serve one checked request (called on the channel's connection threads)."""
        return {"drop": self.drop, "meter": self.meter, "restore": self.restore,
                "switches": self.switches}[req.cmd](req)
