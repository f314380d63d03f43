#!/usr/bin/env python3
"""A protocol v1 client written from PROTOCOL.md alone, in another language.

It shares no code with the TypeScript implementation: frames, CRC-32 (zlib's
IEEE CRC), the handshake, unary calls, a batch, a server stream with credit,
and three kinds of bad input, each on its own connection. Prints one JSON
line per check and exits 0 when every check passed.

Usage: foreign_client.py HOST PORT
"""

import json
import socket
import struct
import sys
import zlib

MAGIC = 0xCAFE
HEADER = 17
T = {
    "HELLO": 0x01, "HELLO_ACK": 0x02, "PING": 0x03, "PONG": 0x04, "GOAWAY": 0x05,
    "REQUEST": 0x10, "RESPONSE": 0x11, "NOTIFY": 0x12, "BROADCAST": 0x13,
    "BATCH": 0x14, "BATCH_RESULT": 0x15, "OPEN": 0x20, "DATA": 0x21, "END": 0x22,
    "CANCEL": 0x23, "CREDIT": 0x24, "ERROR": 0xFF,
}
NAME = {v: k for k, v in T.items()}


def frame(ftype, seq, body=b"", flags=0):
    head = struct.pack(">HBBBII", MAGIC, 1, flags, ftype, len(body), seq)
    crc = zlib.crc32(body, zlib.crc32(head)) & 0xFFFFFFFF
    return head + struct.pack(">I", crc) + body


def call_entry(method, params):
    m = method.encode()
    return struct.pack(">H", len(m)) + m + struct.pack(">I", len(params)) + params


def js(value):
    return json.dumps(value).encode()


class Conn:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def next(self):
        """The next frame as (type, flags, seq, body), or None at EOF."""
        while True:
            if len(self.buf) >= HEADER:
                magic, version, flags, ftype, length, seq, crc = struct.unpack(
                    ">HBBBIII", self.buf[:HEADER])
                if magic != MAGIC or version != 1:
                    raise ValueError("bad header from server")
                if len(self.buf) >= HEADER + length:
                    body = self.buf[HEADER:HEADER + length]
                    want = zlib.crc32(body, zlib.crc32(self.buf[:13])) & 0xFFFFFFFF
                    if want != crc:
                        raise ValueError("bad checksum from server")
                    self.buf = self.buf[HEADER + length:]
                    return ftype, flags, seq, body
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk

    def handshake(self):
        hello = {"version": 1, "codecs": ["json"], "compression": [], "heartbeatMs": 30000,
                 "maxFrame": 1048576, "window": 4, "agent": "foreign-python/1"}
        self.send(frame(T["HELLO"], 0, js(hello)))
        ftype, _, _, body = self.next()
        assert ftype == T["HELLO_ACK"], NAME.get(ftype)
        ack = json.loads(body)
        assert ack["codec"] == "json", ack
        return ack

    def close(self):
        self.sock.close()


def status(body):
    (code,) = struct.unpack(">H", body[:2])
    return code, body[2:].decode()


def check_calls(host, port):
    c = Conn(host, port)
    ack = c.handshake()
    window = ack["window"]
    # Unary, two pipelined in one write.
    c.send(frame(T["REQUEST"], 1, call_entry("echo", js({"hello": "world"})))
           + frame(T["REQUEST"], 3, call_entry("add", js([2, 40]))))
    got = {}
    while len(got) < 2:
        ftype, _, seq, body = c.next()
        if ftype == T["RESPONSE"]:
            got[seq] = json.loads(body)
    assert got == {1: {"hello": "world"}, 3: 42}, got
    report("unary", True)
    # An unknown method: ERROR 12 on that call id.
    c.send(frame(T["REQUEST"], 5, call_entry("no.such", b"")))
    ftype, _, seq, body = c.next()
    assert ftype == T["ERROR"] and seq == 5 and status(body)[0] == 12, (ftype, seq, body)
    report("unknown method", True)
    # A batch of three, one failing.
    entries = [("echo", js(1)), ("no.such", b""), ("add", js([1, 2]))]
    body = struct.pack(">I", len(entries)) + b"".join(call_entry(m, p) for m, p in entries)
    c.send(frame(T["BATCH"], 7, body))
    ftype, _, seq, body = c.next()
    assert ftype == T["BATCH_RESULT"] and seq == 7, (ftype, seq)
    (count,) = struct.unpack(">I", body[:4])
    results, o = [], 4
    for _ in range(count):
        code, length = struct.unpack(">HI", body[o:o + 6])
        data = body[o + 6:o + 6 + length]
        results.append((code, json.loads(data) if code == 0 else data.decode()))
        o += 6 + length
    assert [r[0] for r in results] == [0, 12, 0] and results[0][1] == 1 and results[2][1] == 3, \
        results
    report("batch", True)
    # A server stream of 20 values with the negotiated window: DATA stops at
    # the window until CREDIT is granted.
    c.send(frame(T["OPEN"], 9, call_entry("count", js(20))))
    values, outstanding, ended = [], 0, False
    while not ended:
        ftype, _, seq, body = c.next()
        assert seq == 9, (NAME.get(ftype), seq)
        if ftype == T["DATA"]:
            values.append(json.loads(body))
            outstanding += 1
            assert outstanding <= window, "DATA beyond the granted credit"
            if outstanding == window:
                c.send(frame(T["CREDIT"], 9, struct.pack(">I", window)))
                outstanding = 0
        elif ftype == T["END"]:
            ended = True
        else:
            raise AssertionError(NAME.get(ftype))
    assert values == list(range(1, 21)), values
    report("server stream with credit", True)
    # PING is answered with PONG carrying the same payload.
    c.send(frame(T["PING"], 11, b"abc"))
    ftype, _, seq, body = c.next()
    assert ftype == T["PONG"] and seq == 11 and body == b"abc"
    report("ping", True)
    c.close()


def expect_error(host, port, data, code, name):
    c = Conn(host, port)
    c.handshake()
    c.send(data)
    seen = None
    while True:
        f = c.next()
        if f is None:
            break
        ftype, _, seq, body = f
        if ftype == T["ERROR"] and seq == 0:
            seen = status(body)
    c.close()
    assert seen is not None and seen[0] == code, (name, seen)
    report(name, True, seen[1])


def report(name, ok, detail=""):
    print(json.dumps({"check": name, "ok": ok, "detail": detail}), flush=True)


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    check_calls(host, port)
    expect_error(host, port, b"\x00" * 40, 3, "garbage gets ERROR 3")
    huge = struct.pack(">HBBBII", MAGIC, 1, 0, T["REQUEST"], 0xFFFFFFF0, 1) + b"\x00" * 4
    expect_error(host, port, huge, 8, "huge length gets ERROR 8")
    bad = bytearray(frame(T["REQUEST"], 1, call_entry("echo", js(1))))
    bad[-1] ^= 0xFF
    expect_error(host, port, bytes(bad), 15, "bad checksum gets ERROR 15")


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # one line, then a failing exit code
        report("failure", False, repr(error))
        sys.exit(1)
