// Short ASCII strings decoded without TextDecoder, for StructReader.

const fcc = String.fromCharCode;

/**
 * Decodes `size` bytes at `start` when they are all ASCII, else returns
 * `undefined`. One `fromCharCode` call with a fixed argument count is the
 * fastest way V8 offers to build a short string (msgpackr does the same), and
 * unrolling the ASCII check per length measured 10% faster than a loop;
 * `TextDecoder` costs about 100 ns per call in Deno, a loop of `+=` 30 ns
 * per string.
 */
export function shortAscii(b: Uint8Array, s: number, size: number): string | undefined {
  if (size > 16) {
    const head = shortAscii(b, s, 16);
    const tail = head === undefined ? undefined : shortAscii(b, s + 16, size - 16);
    return tail === undefined ? undefined : head + tail;
  }
  switch (size) {
    case 0:
      return "";
    case 1: {
      const c0 = b[s];
      return c0 < 0x80 ? fcc(c0) : undefined;
    }
    case 2: {
      const c0 = b[s], c1 = b[s + 1];
      return (c0 | c1) < 0x80 ? fcc(c0, c1) : undefined;
    }
    case 3: {
      const c0 = b[s], c1 = b[s + 1], c2 = b[s + 2];
      return (c0 | c1 | c2) < 0x80 ? fcc(c0, c1, c2) : undefined;
    }
    case 4: {
      const c0 = b[s], c1 = b[s + 1], c2 = b[s + 2], c3 = b[s + 3];
      return (c0 | c1 | c2 | c3) < 0x80 ? fcc(c0, c1, c2, c3) : undefined;
    }
    case 5: {
      const c0 = b[s], c1 = b[s + 1], c2 = b[s + 2], c3 = b[s + 3], c4 = b[s + 4];
      return (c0 | c1 | c2 | c3 | c4) < 0x80 ? fcc(c0, c1, c2, c3, c4) : undefined;
    }
    case 6: {
      const c0 = b[s], c1 = b[s + 1], c2 = b[s + 2], c3 = b[s + 3], c4 = b[s + 4], c5 = b[s + 5];
      return (c0 | c1 | c2 | c3 | c4 | c5) < 0x80 ? fcc(c0, c1, c2, c3, c4, c5) : undefined;
    }
    case 7: {
      const c0 = b[s],
        c1 = b[s + 1],
        c2 = b[s + 2],
        c3 = b[s + 3],
        c4 = b[s + 4],
        c5 = b[s + 5],
        c6 = b[s + 6];
      return (c0 | c1 | c2 | c3 | c4 | c5 | c6) < 0x80
        ? fcc(c0, c1, c2, c3, c4, c5, c6)
        : undefined;
    }
    case 8: {
      const c0 = b[s],
        c1 = b[s + 1],
        c2 = b[s + 2],
        c3 = b[s + 3],
        c4 = b[s + 4],
        c5 = b[s + 5],
        c6 = b[s + 6],
        c7 = b[s + 7];
      return (c0 | c1 | c2 | c3 | c4 | c5 | c6 | c7) < 0x80
        ? fcc(c0, c1, c2, c3, c4, c5, c6, c7)
        : undefined;
    }
    case 9: {
      const c0 = b[s],
        c1 = b[s + 1],
        c2 = b[s + 2],
        c3 = b[s + 3],
        c4 = b[s + 4],
        c5 = b[s + 5],
        c6 = b[s + 6],
        c7 = b[s + 7],
        c8 = b[s + 8];
      return (c0 | c1 | c2 | c3 | c4 | c5 | c6 | c7 | c8) < 0x80
        ? fcc(c0, c1, c2, c3, c4, c5, c6, c7, c8)
        : undefined;
    }
    case 10: {
      const c0 = b[s],
        c1 = b[s + 1],
        c2 = b[s + 2],
        c3 = b[s + 3],
        c4 = b[s + 4],
        c5 = b[s + 5],
        c6 = b[s + 6],
        c7 = b[s + 7],
        c8 = b[s + 8],
        c9 = b[s + 9];
      return (c0 | c1 | c2 | c3 | c4 | c5 | c6 | c7 | c8 | c9) < 0x80
        ? fcc(c0, c1, c2, c3, c4, c5, c6, c7, c8, c9)
        : undefined;
    }
    case 11: {
      const c0 = b[s],
        c1 = b[s + 1],
        c2 = b[s + 2],
        c3 = b[s + 3],
        c4 = b[s + 4],
        c5 = b[s + 5],
        c6 = b[s + 6],
        c7 = b[s + 7],
        c8 = b[s + 8],
        c9 = b[s + 9],
        c10 = b[s + 10];
      return (c0 | c1 | c2 | c3 | c4 | c5 | c6 | c7 | c8 | c9 | c10) < 0x80
        ? fcc(c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10)
        : undefined;
    }
    case 12: {
      const c0 = b[s],
        c1 = b[s + 1],
        c2 = b[s + 2],
        c3 = b[s + 3],
        c4 = b[s + 4],
        c5 = b[s + 5],
        c6 = b[s + 6],
        c7 = b[s + 7],
        c8 = b[s + 8],
        c9 = b[s + 9],
        c10 = b[s + 10],
        c11 = b[s + 11];
      return (c0 | c1 | c2 | c3 | c4 | c5 | c6 | c7 | c8 | c9 | c10 | c11) < 0x80
        ? fcc(c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11)
        : undefined;
    }
    case 13: {
      const c0 = b[s],
        c1 = b[s + 1],
        c2 = b[s + 2],
        c3 = b[s + 3],
        c4 = b[s + 4],
        c5 = b[s + 5],
        c6 = b[s + 6],
        c7 = b[s + 7],
        c8 = b[s + 8],
        c9 = b[s + 9],
        c10 = b[s + 10],
        c11 = b[s + 11],
        c12 = b[s + 12];
      return (c0 | c1 | c2 | c3 | c4 | c5 | c6 | c7 | c8 | c9 | c10 | c11 | c12) < 0x80
        ? fcc(c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12)
        : undefined;
    }
    case 14: {
      const c0 = b[s],
        c1 = b[s + 1],
        c2 = b[s + 2],
        c3 = b[s + 3],
        c4 = b[s + 4],
        c5 = b[s + 5],
        c6 = b[s + 6],
        c7 = b[s + 7],
        c8 = b[s + 8],
        c9 = b[s + 9],
        c10 = b[s + 10],
        c11 = b[s + 11],
        c12 = b[s + 12],
        c13 = b[s + 13];
      return (c0 | c1 | c2 | c3 | c4 | c5 | c6 | c7 | c8 | c9 | c10 | c11 | c12 | c13) < 0x80
        ? fcc(c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13)
        : undefined;
    }
    case 15: {
      const c0 = b[s],
        c1 = b[s + 1],
        c2 = b[s + 2],
        c3 = b[s + 3],
        c4 = b[s + 4],
        c5 = b[s + 5],
        c6 = b[s + 6],
        c7 = b[s + 7],
        c8 = b[s + 8],
        c9 = b[s + 9],
        c10 = b[s + 10],
        c11 = b[s + 11],
        c12 = b[s + 12],
        c13 = b[s + 13],
        c14 = b[s + 14];
      return (c0 | c1 | c2 | c3 | c4 | c5 | c6 | c7 | c8 | c9 | c10 | c11 | c12 | c13 | c14) < 0x80
        ? fcc(c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14)
        : undefined;
    }
    case 16: {
      const c0 = b[s],
        c1 = b[s + 1],
        c2 = b[s + 2],
        c3 = b[s + 3],
        c4 = b[s + 4],
        c5 = b[s + 5],
        c6 = b[s + 6],
        c7 = b[s + 7],
        c8 = b[s + 8],
        c9 = b[s + 9],
        c10 = b[s + 10],
        c11 = b[s + 11],
        c12 = b[s + 12],
        c13 = b[s + 13],
        c14 = b[s + 14],
        c15 = b[s + 15];
      return (c0 | c1 | c2 | c3 | c4 | c5 | c6 | c7 | c8 | c9 | c10 | c11 | c12 | c13 | c14 | c15) <
          0x80
        ? fcc(c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15)
        : undefined;
    }
  }
  return undefined;
}
