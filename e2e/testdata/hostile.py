#!/usr/bin/python3
"""Forged frames for e2e/hostile_test.go, built with scapy.

Run as root from the machine's own namespace: every socket is opened inside
the lab namespace it names (setns on the opening thread), so one process can
watch one host's link and forge from another host at the same moment. Frames
go out through plain AF_PACKET sockets, fully built here (Ethernet included):
scapy's own routing and interface caches know only the namespace the process
started in.

    hostile.py rst JSON       sniff one segment of a live TCP flow in
                              sniff_ns, then send RSTs whose sequence is the
                              flow's next one plus each of offsets from
                              send_ns
    hostile.py send JSON      send frames from send_ns; with sniff_ns, also
                              report what reached sniff_ns within wait
                              seconds: the UDP payloads to sniff_dport, or
                              with sniff_arp every ARP frame
    hostile.py idle JSON      open a TCP connection from client_ns to
                              server_ip:port (listening in server_ns), print
                              its local port, leave it idle for hold
                              seconds, then report whether a byte still
                              crosses each way

JSON in on argv, one JSON object out on stdout (idle: two lines).
"""

import ctypes
import json
import os
import select
import socket
import sys
import time

from scapy.all import (ARP, IP, TCP, UDP, Ether, IPOption_LSRR, IPOption_RR,
                       IPOption_Router_Alert, IPOption_Timestamp, Raw)

CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003
SO_RCVBUFFORCE = 33

_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def enter(ns):
    """Switch this thread into the named network namespace."""
    fd = os.open("/run/netns/" + ns, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, "setns %s: %s" % (ns, os.strerror(err)))
    finally:
        os.close(fd)


def packet_socket(ns, iface="eth0"):
    """An AF_PACKET socket on iface inside ns, receiving every frame."""
    enter(ns)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
    s.bind((iface, ETH_P_ALL))
    return s


def frames(spec):
    """Yield the frames one spec entry describes (count copies)."""
    eth = Ether(src=spec["smac"], dst=spec["dmac"])
    kind = spec["kind"]
    if kind == "arp":
        pkt = eth / ARP(op=spec["op"], hwsrc=spec["hwsrc"], psrc=spec["psrc"],
                        hwdst=spec.get("hwdst", "00:00:00:00:00:00"), pdst=spec["pdst"])
    elif kind == "udp":
        opts = {
            "none": [],
            "lsrr": [IPOption_LSRR(routers=[spec["dst"]])],
            "rr": [IPOption_RR(routers=["0.0.0.0"] * 4)],
            "ts": [IPOption_Timestamp(flg=0, timestamp=0)],
            "ra": [IPOption_Router_Alert()],
        }[spec.get("options", "none")]
        pkt = eth / IP(src=spec["src"], dst=spec["dst"], ttl=64, options=opts) / \
            UDP(sport=spec["sport"], dport=spec["dport"]) / Raw(spec["payload"].encode())
    elif kind == "tcp":
        pkt = eth / IP(src=spec["src"], dst=spec["dst"], ttl=64) / \
            TCP(sport=spec["sport"], dport=spec["dport"], flags=spec["flags"],
                seq=spec.get("seq", 0) % (1 << 32), ack=spec.get("ack", 0) % (1 << 32), window=502)
    else:
        raise ValueError("unknown frame kind %r" % kind)
    raw = bytes(pkt)
    for _ in range(spec.get("count", 1)):
        yield raw


def sniff_tcp(s, src, sport, dst, dport, timeout):
    """The first TCP segment src:sport -> dst:dport read from s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        data = s.recv(65535)
        p = Ether(data)
        if IP in p and TCP in p and p[IP].src == src and p[IP].dst == dst \
                and p[TCP].sport == sport and p[TCP].dport == dport:
            return p
    raise SystemExit("no segment %s:%d -> %s:%d seen in %ss" % (src, sport, dst, dport, timeout))


def cmd_rst(a):
    sn = packet_socket(a["sniff_ns"])
    p = sniff_tcp(sn, a["src"], a["sport"], a["dst"], a["dport"], 5)
    t = p[TCP]
    nxt = t.seq + len(t.payload) + (1 if t.flags.S else 0) + (1 if t.flags.F else 0)
    tx = packet_socket(a["send_ns"])
    sent = []
    for off in a["offsets"]:
        seq = (nxt + off) % (1 << 32)
        for f in frames({"kind": "tcp", "smac": a["smac"], "dmac": a["dmac"], "src": a["src"],
                         "dst": a["dst"], "sport": a["sport"], "dport": a["dport"],
                         "flags": a.get("flags", "R"), "seq": seq, "ack": t.ack}):
            tx.send(f)
        sent.append(seq)
    return {"seen_seq": t.seq, "seen_len": len(t.payload), "next": nxt % (1 << 32), "sent": sent}


def cmd_send(a):
    sn = packet_socket(a["sniff_ns"]) if a.get("sniff_ns") else None
    tx = packet_socket(a["send_ns"])
    n = 0
    for spec in a["frames"]:
        for f in frames(spec):
            tx.send(f)
            n += 1
            if a.get("gap"):
                time.sleep(a["gap"])
    out = {"sent": n}
    if sn is not None:
        seen = []
        deadline = time.monotonic() + a.get("wait", 1.0)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([sn], [], [], left)
            if not r:
                continue
            p = Ether(sn.recv(65535))
            if a.get("sniff_arp") and ARP in p:
                seen.append({"op": p[ARP].op, "hwsrc": p[ARP].hwsrc, "psrc": p[ARP].psrc,
                             "pdst": p[ARP].pdst, "eth_src": p[Ether].src})
            elif IP in p and UDP in p and p[UDP].dport == a.get("sniff_dport"):
                seen.append({"src": p[IP].src, "payload": bytes(p[UDP].payload).decode(errors="replace"),
                             "options": len(p[IP].options)})
        out["seen"] = seen
    return out


def cmd_idle(a):
    enter(a["server_ns"])
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", a["port"]))
    ls.listen(1)
    enter(a["client_ns"])
    c = socket.create_connection((a["server_ip"], a["port"]), timeout=5)
    s, _ = ls.accept()
    c.sendall(b"a")
    s.settimeout(5)
    s.recv(1)
    json.dump({"local_port": c.getsockname()[1]}, sys.stdout)
    print(flush=True)
    time.sleep(a["hold"])
    out = {"ok": False}
    try:
        c.settimeout(3)
        c.sendall(b"x")
        if s.recv(1) != b"x":
            raise OSError("server read nothing")
        s.sendall(b"y")
        if c.recv(1) != b"y":
            raise OSError("client read nothing")
        out["ok"] = True
    except OSError as e:
        out["error"] = "%s: %s" % (type(e).__name__, e)
    return out


def main():
    cmd, arg = sys.argv[1], json.loads(sys.argv[2])
    out = {"rst": cmd_rst, "send": cmd_send, "idle": cmd_idle}[cmd](arg)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
