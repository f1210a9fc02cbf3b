#!/usr/bin/env python3
"""Seeds the fuzz corpora from the spec: every ```hex block of
docs/protocol.md (a whole frame) becomes an input of each target, in the
target's own layout, and every ```json block of a Redis request a seed of
redis_json. Writes fuzz/corpus/<target>/seed-<name> (and
fuzz/session/corpus/session/); run from anywhere."""

import pathlib
import re
import struct

ROOT = pathlib.Path(__file__).resolve().parent
SPEC = ROOT.parent / "docs" / "protocol.md"


def examples(text, kind):
    """(name, body) of every ```<kind> NAME block."""
    return re.findall(r"```" + kind + r" ([^\n]+)\n(.*?)```", text, re.S)


def frame_bytes(body):
    hexes = []
    for line in body.splitlines():
        hexes.append(line.split("#")[0])
    return bytes.fromhex("".join(hexes).replace(" ", ""))


def main():
    text = SPEC.read_text()
    frames = {name.strip(): frame_bytes(body) for name, body in examples(text, "hex")}
    corpus = {t: {} for t in ("frame", "message", "transport", "setup", "redis_json", "session")}
    setup_records = b"\x01\x02"
    for name, frame in frames.items():
        ext, msg_type = struct.unpack_from("<HB", frame)
        payload = frame[6:]
        corpus["frame"][name] = frame
        corpus["message"][name] = struct.pack("<HBB", ext & 0x7FFF, ext >> 15, msg_type) + payload
        corpus["transport"][name] = b"\x00\x40" + b"\x00" + frame[:6] + struct.pack("<H", len(payload)) + payload + b"\x01"
        corpus["setup"][name] = b"\x01\x02\x00" + struct.pack("<HBH", ext & 0x7FFF, msg_type, len(payload)) + payload
        setup_records += b"\x00" + struct.pack("<HBH", ext & 0x7FFF, msg_type, len(payload)) + payload
        # session: a frame (extension, type, channel bit, length, payload),
        # then a well-formed request (id 7, amount 32, share 1).
        corpus["session"][name] = (
            b"\x00" + struct.pack("<HBBH", ext & 0x7FFF, msg_type, ext >> 15, len(payload)) + payload
            + b"\x01" + struct.pack("<IHB", 7, 32, 1)
        )
    corpus["setup"]["all"] = setup_records
    for name, body in examples(text, "json"):
        corpus["redis_json"][name.strip()] = body.strip().encode()
    for target, seeds in corpus.items():
        # The session target lives in a cargo-fuzz project of its own.
        base = ROOT / "session" if target == "session" else ROOT
        folder = base / "corpus" / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (folder / ("seed-" + re.sub(r"[^A-Za-z0-9.]+", "-", name))).write_bytes(data)
        print(f"{target}: {len(seeds)} seeds")


if __name__ == "__main__":
    main()
