"""An MQTT peer that accepts connections and never acknowledges a publish (issue 10): it answers
CONNECT with CONNACK, SUBSCRIBE with SUBACK, UNSUBSCRIBE with UNSUBACK and PINGREQ with PINGRESP,
and reads every PUBLISH without a PUBACK. Since no QoS 1 PUBLISH is ever acknowledged, its packet
identifier stays in use for the whole connection: a SUBSCRIBE, UNSUBSCRIBE or PUBLISH that reuses
one breaks MQTT-2.3.1-2 and is recorded in `reused_ids`. Written from the MQTT 3.1.1 and 5 specifications, independently of mosquitto;
loopback only. Runs in a thread of the test."""

import socket
import struct
import threading


def _remaining_length(data, pos):
    """(value, next position) of the variable byte integer at pos, or (None, pos) if incomplete."""
    mult, value = 1, 0
    for i in range(4):
        if pos + i >= len(data):
            return None, pos
        b = data[pos + i]
        value += (b & 0x7F) * mult
        if not b & 0x80:
            return value, pos + i + 1
        mult *= 128
    raise ValueError("malformed remaining length")


class MuteBroker:
    # FragmentingBroker: acknowledge every QoS 1 PUBLISH, written in pieces of this many bytes
    ack_fragment = None
    # ScriptBroker: acknowledge every QoS 1 PUBLISH at once
    ack_all = False

    def connack(self, n, version):
        """The CONNACK for connection n (bytes)."""
        return b"\x20\x03\x00\x00\x00" if version == 5 else b"\x20\x02\x00\x00"

    def suback_code(self, version):
        """The return code granted to every filter of a SUBSCRIBE."""
        return 0

    def acks(self, n):
        """Whether connection n acknowledges QoS 1 PUBLISHes at once."""
        return self.ack_all

    def after_connack(self, c, n, version):
        """Hook: connection n was accepted. Return False to close it."""
        return True

    def after_publish(self, c, n, version, count):
        """Hook: the count-th PUBLISH of connection n was read. Return False to close it."""
        return True

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.connections = 0
        self.publishes = []  # (connection number, topic)
        self.reused_ids = []  # (connection number, packet type, packet id)
        self.versions = []  # the protocol level of each CONNECT
        # QoS 1 PUBLISHes read from one recv() at most: with acknowledgements sent at once, more
        # than one means the client sent the next before the last one's PUBACK could arrive
        self.max_qos1_per_read = 0
        self.connects = []  # the body of each CONNECT
        self.stopping = False
        self.clients = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "tcp://127.0.0.1:%d" % self.port

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                return
            with self.lock:
                self.connections += 1
                n = self.connections
                self.clients.append(c)
            threading.Thread(target=self._serve, args=(c, n), daemon=True).start()

    def _serve(self, c, n):
        buf = b""
        version = 4
        in_use = set()  # packet ids of unacknowledged QoS 1 PUBLISHes

        def take(ptype, pid):
            if pid in in_use:
                with self.lock:
                    self.reused_ids.append((n, ptype, pid))
        try:
            while not self.stopping:
                chunk = c.recv(65536)
                if not chunk:
                    return
                buf += chunk
                acks = b""
                qos1_in_chunk = 0
                while len(buf) >= 2:
                    rl, pos = _remaining_length(buf, 1)
                    if rl is None or len(buf) < pos + rl:
                        break
                    ptype, flags, body = buf[0] >> 4, buf[0] & 0x0F, buf[pos:pos + rl]
                    buf = buf[pos + rl:]
                    if ptype == 1:  # CONNECT: protocol name, then the level
                        nl = struct.unpack(">H", body[:2])[0]
                        version = body[2 + nl]
                        with self.lock:
                            self.versions.append(version)
                            self.connects.append(body)
                        c.sendall(self.connack(n, version))
                        if not self.after_connack(c, n, version):
                            return
                    elif ptype == 3:  # PUBLISH: counted, never acknowledged
                        tl = struct.unpack(">H", body[:2])[0]
                        if flags & 0x06:  # QoS 1: its id is in use from now on
                            pid = struct.unpack(">H", body[2 + tl:4 + tl])[0]
                            take(ptype, pid)
                            qos1_in_chunk += 1
                            with self.lock:
                                self.max_qos1_per_read = max(self.max_qos1_per_read,
                                                             qos1_in_chunk)
                            if self.ack_fragment:
                                acks += b"\x40\x02" + struct.pack(">H", pid)
                            elif self.acks(n):
                                c.sendall(b"\x40\x02" + struct.pack(">H", pid))
                            else:
                                in_use.add(pid)
                        with self.lock:
                            self.publishes.append((n, body[2:2 + tl].decode("utf-8", "replace")))
                            count = len([1 for k, _ in self.publishes if k == n])
                        if not self.after_publish(c, n, version, count):
                            return
                    elif ptype == 8:  # SUBSCRIBE: grant QoS 0 to each filter
                        pid, rest = body[:2], body[2:]
                        take(ptype, struct.unpack(">H", pid)[0])
                        if version == 5:
                            pl, p = _remaining_length(rest, 0)
                            rest = rest[p + pl:]
                        codes = b""
                        while len(rest) >= 3:
                            fl = struct.unpack(">H", rest[:2])[0]
                            rest = rest[2 + fl + 1:]
                            codes += bytes([self.suback_code(version)])
                        props = b"\x00" if version == 5 else b""
                        payload = pid + props + codes
                        c.sendall(bytes([0x90, len(payload)]) + payload)
                    elif ptype == 10:  # UNSUBSCRIBE: success for each filter (MQTT 5)
                        take(ptype, struct.unpack(">H", body[:2])[0])
                        if version == 5:
                            rest = body[2:]
                            pl, p = _remaining_length(rest, 0)
                            rest = rest[p + pl:]
                            codes = b""
                            while len(rest) >= 2:
                                rest = rest[2 + struct.unpack(">H", rest[:2])[0]:]
                                codes += b"\x00"
                            payload = body[:2] + b"\x00" + codes
                        else:
                            payload = body[:2]
                        c.sendall(bytes([0xB0, len(payload)]) + payload)
                    elif ptype == 12:  # PINGREQ
                        c.sendall(b"\xd0\x00")
                    elif ptype == 14:  # DISCONNECT
                        return
                for i in range(0, len(acks), self.ack_fragment or 1):
                    c.sendall(acks[i:i + self.ack_fragment])
        except (OSError, ValueError, IndexError, struct.error):
            return
        finally:
            c.close()

    def publishes_on(self, n):
        with self.lock:
            return [t for k, t in self.publishes if k == n]

    def stop(self):
        self.stopping = True
        self.sock.close()
        with self.lock:
            for c in self.clients:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class FragmentingBroker(MuteBroker):
    """Acknowledges every QoS 1 PUBLISH after reading what came with it, and writes the PUBACKs 3
    bytes per send() (no Nagle): a PUBACK (4 bytes) straddles every piece, so the bridge's reads
    end inside one. The lws backend reads PUBACKs in bulk under load (SO_RCVLOWAT): a count of
    the bytes the broker still owes that forgot a PUBACK read in part would wait for ever."""

    ack_fragment = 3


class ScriptBroker(MuteBroker):
    """Acknowledges every QoS 1 PUBLISH at once; a test overrides connack, after_connack and
    after_publish to misbehave at a chosen point (issue 19)."""

    ack_all = True
