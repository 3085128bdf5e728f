"""The os-ken app: L2 learning in table 1, the runner's policy in table 0, statistics on stdout.

Tables: table 0 holds policy rules (drop, meter) installed on request, and a default rule that goes to
table 1; table 1 is a learning switch (table-miss -> controller). Rules carry a cookie so that `restore`
removes exactly them; `seconds` becomes the rules' hard_timeout, so OVS restores forwarding by itself.

Control protocol: one JSON object per line on 127.0.0.1:CTL_PORT, one JSON answer per line:
  {"cmd": "drop", "src": "10.0.0.2", "dst": "10.0.0.1", "flags": "syn-ack", "seconds": 2}
  {"cmd": "meter", "src": "10.0.0.2", "dst": "10.0.0.1", "kbps": 5000}
  {"cmd": "restore"}         {"cmd": "switches"}
Events (stdout, JSON Lines): switch, rule, restore, port-stats, flow-stats.
"""
import json
import os
import socket
import sys
import threading
import time

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib.packet import ethernet, packet
from os_ken.ofproto import ofproto_v1_3

POLICY_TABLE, L2_TABLE = 0, 1
RULE_COOKIE = 0x7C1AB000          # cookies of policy rules: RULE_COOKIE + rule number
COOKIE_MASK = 0xFFFFF000
TCP_FLAGS = {"syn": 0x002, "syn-ack": 0x012, "ack": 0x010, "rst": 0x004, "fin": 0x001}
STATS_INTERVAL = float(os.environ.get("TCPLAB_STATS_INTERVAL", "0.5"))
CTL_PORT = int(os.environ.get("TCPLAB_CTL_PORT", "0"))


def emit(event, **fields):
    sys.stdout.write(json.dumps({"t": round(time.monotonic(), 6), "prog": "controller", "event": event, **fields}) + "\n")
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
        threading.Thread(target=self._serve_control, daemon=True).start()
        threading.Thread(target=self._poll_stats, daemon=True).start()

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
        if ev.msg.cookie & COOKIE_MASK == RULE_COOKIE:
            emit("restore", dpid=ev.msg.datapath.id, rule=ev.msg.cookie - RULE_COOKIE, reason="timeout",
                 packets=ev.msg.packet_count)

    def _poll_stats(self):
        while True:
            time.sleep(STATS_INTERVAL)
            with self.lock:
                dps = list(self.datapaths.values())
            for dp in dps:
                p = dp.ofproto_parser
                dp.send_msg(p.OFPPortStatsRequest(dp, 0, dp.ofproto.OFPP_ANY))
                dp.send_msg(p.OFPFlowStatsRequest(dp, table_id=POLICY_TABLE))

    # -- policy -------------------------------------------------------------------------------------
    def _match(self, p, req):
        fields = {"eth_type": 0x0800}
        if req.get("src"):
            fields["ipv4_src"] = req["src"]
        if req.get("dst"):
            fields["ipv4_dst"] = req["dst"]
        if req.get("flags"):
            if req["flags"] not in TCP_FLAGS:
                raise ValueError(f"flags {req['flags']!r}: expected one of {', '.join(TCP_FLAGS)}")
            fields.update(ip_proto=6, tcp_flags=TCP_FLAGS[req["flags"]])
        return p.OFPMatch(**fields)

    def drop(self, req):
        self.rules += 1
        for dp in list(self.datapaths.values()):
            p = dp.ofproto_parser
            self._flow(dp, POLICY_TABLE, 100, self._match(p, req), [], cookie=RULE_COOKIE + self.rules,
                       hard_timeout=int(req.get("seconds") or 0))
        emit("rule", rule=self.rules, kind="drop", **{k: req.get(k) for k in ("src", "dst", "flags", "seconds")})
        return {"rule": self.rules}

    def meter(self, req):
        self.rules += 1
        self.meters += 1
        kbps = int(req["kbps"])
        for dp in list(self.datapaths.values()):
            p, o = dp.ofproto_parser, dp.ofproto
            dp.send_msg(p.OFPMeterMod(dp, command=o.OFPMC_ADD, flags=o.OFPMF_KBPS, meter_id=self.meters,
                                      bands=[p.OFPMeterBandDrop(rate=kbps, burst_size=max(64, kbps // 50))]))
            self._flow(dp, POLICY_TABLE, 90, self._match(p, req),
                       [p.OFPInstructionMeter(self.meters), p.OFPInstructionGotoTable(L2_TABLE)],
                       cookie=RULE_COOKIE + self.rules, hard_timeout=int(req.get("seconds") or 0))
        emit("rule", rule=self.rules, kind="meter", kbps=kbps, src=req.get("src"), dst=req.get("dst"))
        return {"rule": self.rules, "meter": self.meters}

    def restore(self, req):
        for dp in list(self.datapaths.values()):
            p, o = dp.ofproto_parser, dp.ofproto
            dp.send_msg(p.OFPFlowMod(datapath=dp, table_id=POLICY_TABLE, command=o.OFPFC_DELETE, cookie=RULE_COOKIE,
                                     cookie_mask=COOKIE_MASK, out_port=o.OFPP_ANY, out_group=o.OFPG_ANY))
            for meter_id in range(1, self.meters + 1):
                dp.send_msg(p.OFPMeterMod(dp, command=o.OFPMC_DELETE, meter_id=meter_id))
        emit("restore", reason="asked")
        return {}

    def handle(self, req):
        cmd = req.get("cmd")
        if cmd == "switches":
            return {"switches": sorted(self.datapaths)}
        actions = {"drop": self.drop, "meter": self.meter, "restore": self.restore}
        if cmd not in actions:
            raise ValueError(f"unknown command {cmd!r} (commands: switches, {', '.join(actions)})")
        return actions[cmd](req)

    def _serve_control(self):
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", CTL_PORT))     # loopback only: the runner is the only client
        server.listen(4)
        emit("control", port=server.getsockname()[1])
        while True:
            conn, _ = server.accept()
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn):
        with conn, conn.makefile("rw") as f:
            for line in f:
                try:
                    answer = {"ok": True, **self.handle(json.loads(line))}
                except (ValueError, KeyError, TypeError) as e:
                    answer = {"ok": False, "error": str(e)}
                f.write(json.dumps(answer) + "\n")
                f.flush()
