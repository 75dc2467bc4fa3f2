#!/usr/bin/env python3
"""Writes assets/sample.wav: 4 s of a plucked melody, mono 48 kHz s16 (about 384 KB).

Made here so the repository holds no third-party audio. Deterministic: the same bytes each run.
"""
import math
import struct
import sys
import wave

RATE = 48_000
NOTES = [  # (MIDI note, beats); 120 bpm, 8 beats = 4 s
    (60, 0.5), (64, 0.5), (67, 0.5), (72, 0.5),
    (71, 0.5), (67, 0.5), (64, 0.5), (62, 0.5),
    (65, 0.5), (69, 0.5), (72, 0.5), (74, 0.5),
    (72, 1.0), (67, 1.0),
]


def pluck(freq, seconds):
    n = int(RATE * seconds)
    out = []
    for i in range(n):
        t = i / RATE
        env = math.exp(-4.0 * t) * min(1.0, i / 240) * min(1.0, (n - i) / 480)
        v = sum(math.sin(2 * math.pi * freq * k * t) / k**1.5 for k in (1, 2, 3, 4))
        out.append(0.35 * env * v)
    return out


def main(path):
    samples = []
    for note, beats in NOTES:
        samples += pluck(440.0 * 2 ** ((note - 69) / 12), beats * 0.5)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(b"".join(struct.pack("<h", int(max(-1, min(1, s)) * 32767)) for s in samples))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "assets/sample.wav")
