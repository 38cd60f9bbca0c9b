#!/usr/bin/env python3
"""An OSDP peripheral (PD) from LibOSDP's Python binding on a pseudo-terminal, driven by
lintel's tests: the independent peer for lintel's control panel.

It opens a pty pair, prints {"ready": "<slave path>"} and then takes one JSON request a
line on stdin, answering each with one JSON line on stdout (commands the CP sent are
printed as {"command": {...}} lines as they arrive):

  {"op": "card", "bits": "0101..."}     osdp_RAW, Wiegand format, with its bit count
  {"op": "keys", "keys": "12*#"}        osdp_KEYPAD
  {"op": "tamper", "on": true}          osdp_LSTATR with the tamper bit
  {"op": "silent", "on": true}          stop answering (a cut cable), or answer again
  {"op": "corrupt", "count": 1}         flip a byte in the next N packets the PD sends
  {"op": "bad_mac", "count": 1}         wrong MAC (valid CRC) on the next N SC packets
  {"op": "status"}                      {"sc_active": .., "online": ..}
  {"op": "quit"}

Exit status 77 with a message on stderr when libosdp cannot be imported.
"""
import argparse
import json
import os
import sys
import threading
import time
import tty

try:
    import osdp
except ImportError as e:  # the Rust test turns this into a clear skip
    print(f"libosdp is not importable: {e} (pip install libosdp)", file=sys.stderr)
    sys.exit(77)

out_lock = threading.Lock()


def emit(obj):
    with out_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def crc16(data):
    """OSDP's CRC-16 (CRC-16/AUG-CCITT), to re-seal a packet whose MAC was changed."""
    crc = 0x1D0F
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


class PtyChannel(osdp.Channel):
    """The master side of a pty, with faults applied to what the PD writes."""

    def __init__(self):
        super().__init__()
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.silent = False
        self.corrupt = 0
        self.bad_mac = 0
        self.lock = threading.Lock()

    def read(self, max_bytes):
        try:
            data = os.read(self.master, max_bytes)
        except (BlockingIOError, OSError):
            return b""
        with self.lock:
            if self.silent:
                return b""
        return data

    def write(self, buf):
        buf = bytearray(buf)
        with self.lock:
            if self.silent:
                return len(buf)
            som = buf.find(0x53)
            if self.bad_mac > 0 and som >= 0 and len(buf) > som + 12:
                ctrl = buf[som + 4]
                if ctrl & 0x08 and buf[som + 6] in (0x16, 0x18):
                    self.bad_mac -= 1
                    end = len(buf) - 2
                    buf[end - 4] ^= 0x5A
                    crc = crc16(buf[som:end])
                    buf[end] = crc & 0xFF
                    buf[end + 1] = crc >> 8
            elif self.corrupt > 0 and som >= 0 and len(buf) > som + 6:
                self.corrupt -= 1
                buf[som + 5] ^= 0x01
        try:
            return os.write(self.master, bytes(buf))
        except OSError:
            return len(buf)

    def flush(self):
        pass


def describe(cmd):
    return {k: (v.hex() if isinstance(v, (bytes, bytearray)) else v) for k, v in cmd.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", type=int, default=101)
    ap.add_argument("--scbk", help="32 hex digits; without it the PD is in install mode")
    ap.add_argument("--enforce-secure", action="store_true")
    args = ap.parse_args()

    channel = PtyChannel()
    flags = [osdp.LibFlag.EnforceSecure] if args.enforce_secure else []
    scbk = bytes.fromhex(args.scbk) if args.scbk else None
    info = osdp.PDInfo(args.address, channel, scbk=scbk, name="lintel-test-pd", flags=flags)
    caps = osdp.PDCapabilities([
        (osdp.Capability.LEDControl, 1, 1),
        (osdp.Capability.AudibleControl, 1, 1),
        (osdp.Capability.CardDataFormat, 1, 1),
    ])
    state = {"tamper": 0}

    def on_command(cmd):
        emit({"command": describe(cmd)})
        if cmd.get("command") == osdp.Command.Status:
            cmd["nr_entries"] = 2
            cmd["report"] = bytes([state["tamper"], 0])
            return 0, cmd
        return 0, None

    pd = osdp.PeripheralDevice(info, caps, log_level=osdp.LogLevel.Warning,
                               command_handler=on_command)
    pd.start()
    emit({"ready": channel.path})

    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        op = req.get("op")
        if op == "card":
            bits = req["bits"]
            data = bytearray((len(bits) + 7) // 8)
            for i, b in enumerate(bits):
                if b == "1":
                    data[i // 8] |= 0x80 >> (i % 8)
            pd.submit_event({
                "event": osdp.Event.CardRead, "reader_no": 0, "direction": 0,
                "format": osdp.CardFormat.Wiegand, "length": len(bits), "data": bytes(data),
            })
            emit({"ok": True})
        elif op == "keys":
            codes = {"*": 0x7F, "#": 0x0D}
            data = bytes(codes.get(k, ord(k)) for k in req["keys"])
            pd.submit_event({"event": osdp.Event.KeyPress, "reader_no": 0, "data": data})
            emit({"ok": True})
        elif op == "tamper":
            state["tamper"] = 1 if req["on"] else 0
            pd.submit_event({
                "event": osdp.Event.Status, "type": osdp.StatusReportType.Local,
                "nr_entries": 2, "report": bytes([state["tamper"], 0]),
            })
            emit({"ok": True})
        elif op == "silent":
            with channel.lock:
                channel.silent = bool(req["on"])
            emit({"ok": True})
        elif op == "corrupt":
            with channel.lock:
                channel.corrupt = int(req["count"])
            emit({"ok": True})
        elif op == "bad_mac":
            with channel.lock:
                channel.bad_mac = int(req["count"])
            emit({"ok": True})
        elif op == "status":
            emit({"sc_active": bool(pd.is_sc_active()), "online": bool(pd.is_online())})
        elif op == "quit":
            break
        else:
            emit({"ok": False, "error": f"unknown op {op}"})
    pd.stop()
    emit({"bye": True})


if __name__ == "__main__":
    main()
